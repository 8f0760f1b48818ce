package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizeMu serialises builds: kustomize keeps its OpenAPI schema in
// package state and concurrent builds race on it
// (kubernetes-sigs/kustomize#3659; Flux's kustomize-controller holds a
// mutex for the same reason).
var kustomizeMu sync.Mutex

// buildKustomization runs kustomize on dir the way `kubectl kustomize dir`
// does, on a filesystem confined to the repository.
func buildKustomization(root, dir, rel string, edit *KustomizeOptions, objectsOnly bool) (*Result, error) {
	kerr := func(err error) error {
		return &KustomizeError{Path: rel, Reason: stripRoot(err.Error(), root)}
	}
	// kustomize clones remote bases with the git binary and downloads
	// remote files with a client without timeout; neither may happen here,
	// so remote references are refused before kustomize sees them.
	var warnings []string
	if err := checkLocal(root, dir, map[string]bool{}, &warnings); err != nil {
		return nil, kerr(err)
	}

	if objectsOnly && edit.empty() {
		if files, ok := plainResources(root, dir); ok {
			if objs, ok := buildPlainResources(files); ok {
				return &Result{SourceType: SourceTypeKustomize, Objects: objs, Warnings: warnings}, nil
			}
		}
	}

	opts := krusty.MakeDefaultOptions()
	// kubectl kustomize leaves --reorder unset, which means the legacy
	// order unless the kustomization sets sortOptions.
	opts.Reorder = krusty.ReorderOptionUnspecified
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()

	fsys := rootedFS{root: root, disk: filesys.MakeFsOnDisk()}
	if !edit.empty() {
		file := filepath.Join(dir, kustomizationFile(dir))
		data, err := editKustomization(file, edit)
		if err != nil {
			return nil, kerr(err)
		}
		fsys.edited = map[string][]byte{file: data}
	}
	kustomizeMu.Lock()
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	kustomizeMu.Unlock()
	if err != nil {
		return nil, kerr(err)
	}
	var y []byte
	if !objectsOnly {
		if y, err = m.AsYaml(); err != nil {
			return nil, kerr(err)
		}
	}
	var objs []*unstructured.Unstructured
	for _, res := range m.Resources() {
		j, err := res.MarshalJSON()
		if err != nil {
			return nil, kerr(fmt.Errorf("rendering %s: %w", res.CurId(), err))
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(j, &obj); err != nil {
			return nil, kerr(fmt.Errorf("rendering %s: %w", res.CurId(), err))
		}
		u := &unstructured.Unstructured{Object: obj}
		if err := checkObject(u); err != nil {
			return nil, kerr(err)
		}
		objs = append(objs, u)
	}
	return &Result{SourceType: SourceTypeKustomize, Objects: objs, YAML: y, Warnings: warnings}, nil
}

// stripRoot makes the absolute paths in a kustomize message relative to the
// repository root.
func stripRoot(msg, root string) string {
	msg = strings.ReplaceAll(msg, root+string(filepath.Separator), "")
	return strings.ReplaceAll(msg, root, ".")
}

// remoteRE matches what kustomize would fetch over the network: URLs with a
// scheme (https://, ssh://, file://), go-getter's git:: prefix, scp-like
// user@host:path, and github.com/… shorthands.
var remoteRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.\-]*://|git::|[^/\s]+@[^/\s]+:|(?i:github\.com)[/:])`)

// checkLocal refuses the kustomization in dir if it, or a kustomization it
// references through a local directory, names a remote base or file. It
// appends kustomize's deprecation warnings for each of them to warnings.
func checkLocal(root, dir string, seen map[string]bool, warnings *[]string) error {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	name := kustomizationFile(dir)
	if name == "" {
		return nil
	}
	file := filepath.Join(dir, name)
	real, err := filepath.EvalSymlinks(file)
	if err != nil || !within(root, real) {
		return nil // kustomize reports it, through rootedFS
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return nil
	}
	var k types.Kustomization
	if yaml.Unmarshal(data, &k) != nil {
		return nil // kustomize reports the syntax error itself
	}
	rel := relName(root, file)
	if deprecated := k.CheckDeprecatedFields(); deprecated != nil {
		for _, w := range *deprecated {
			*warnings = append(*warnings, rel+": "+strings.TrimPrefix(w, "# Warning: "))
		}
	}
	var refs, dirs []string
	add := func(paths ...string) { refs = append(refs, paths...) }
	add(k.Resources...)
	add(k.Bases...)
	add(k.Components...)
	add(k.Crds...)
	add(k.Configurations...)
	add(k.OpenAPI["path"])
	dirs = append(dirs, k.Resources...)
	dirs = append(dirs, k.Bases...)
	dirs = append(dirs, k.Components...)
	for _, list := range [][]string{k.Generators, k.Transformers, k.Validators} {
		for _, g := range list {
			if !strings.Contains(g, "\n") { // else an inline configuration
				add(g)
				dirs = append(dirs, g)
			}
		}
	}
	for _, p := range k.PatchesStrategicMerge {
		if !strings.Contains(string(p), "\n") {
			add(string(p))
		}
	}
	for _, p := range append(k.Patches, k.PatchesJson6902...) {
		add(p.Path)
	}
	for _, r := range k.Replacements {
		add(r.Path)
	}
	sources := func(s types.KvPairSources) {
		for _, f := range s.FileSources {
			add(f)
			if _, path, ok := strings.Cut(f, "="); ok {
				add(path)
			}
		}
		add(s.EnvSources...)
		add(s.EnvSource)
	}
	for _, g := range k.ConfigMapGenerator {
		sources(g.KvPairSources)
	}
	for _, g := range k.SecretGenerator {
		sources(g.KvPairSources)
	}
	for _, r := range refs {
		if remoteRE.MatchString(strings.TrimSpace(r)) {
			return fmt.Errorf("%s: remote reference %q is not supported: vendor it into the repository", rel, r)
		}
	}
	for _, d := range dirs {
		if filepath.IsAbs(d) {
			continue
		}
		sub, err := filepath.EvalSymlinks(filepath.Join(dir, d))
		if err != nil || !within(root, sub) {
			continue // kustomize reports it, through rootedFS
		}
		if info, err := os.Stat(sub); err == nil && info.IsDir() {
			if err := checkLocal(root, sub, seen, warnings); err != nil {
				return err
			}
		}
	}
	return nil
}

// rootedFS is kustomize's on-disk filesystem confined to a repository: any
// path that leads outside root, directly, through "..", or through a
// symlink, is refused, and nothing can be written. kustomize's own
// LoadRestrictionsRootOnly confines files to each kustomization's directory
// but lets bases live anywhere; this closes that.
type rootedFS struct {
	root string
	disk filesys.FileSystem
	// edited are files read from memory instead of disk: a kustomization
	// with the Application's kustomize options applied.
	edited map[string][]byte
}

var _ filesys.FileSystem = rootedFS{}

// errReadOnly is returned for writes: a build never writes.
var errReadOnly = errors.New("the repository is read-only during a build")

// check returns an error when path resolves to a place outside the root.
func (f rootedFS) check(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := resolveExisting(abs)
	if err != nil {
		return err
	}
	if !within(f.root, real) {
		return fmt.Errorf("security; %q is outside the repository", relName(f.root, real))
	}
	return nil
}

// resolveExisting resolves the symlinks of the longest existing prefix of
// abs and appends the rest.
func resolveExisting(abs string) (string, error) {
	rest := ""
	p := filepath.Clean(abs)
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest), nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

func (f rootedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (f rootedFS) Mkdir(string) error                  { return errReadOnly }
func (f rootedFS) MkdirAll(string) error               { return errReadOnly }
func (f rootedFS) RemoveAll(string) error              { return errReadOnly }
func (f rootedFS) WriteFile(string, []byte) error      { return errReadOnly }

func (f rootedFS) Open(path string) (filesys.File, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f.disk.Open(path)
}

func (f rootedFS) IsDir(path string) bool {
	return f.check(path) == nil && f.disk.IsDir(path)
}

func (f rootedFS) ReadDir(path string) ([]string, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f.disk.ReadDir(path)
}

func (f rootedFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if err := f.check(path); err != nil {
		return "", "", err
	}
	return f.disk.CleanedAbs(path)
}

func (f rootedFS) Exists(path string) bool {
	return f.check(path) == nil && f.disk.Exists(path)
}

func (f rootedFS) Glob(pattern string) ([]string, error) {
	matches, err := f.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var inside []string
	for _, m := range matches {
		if f.check(m) == nil {
			inside = append(inside, m)
		}
	}
	return inside, nil
}

func (f rootedFS) ReadFile(path string) ([]byte, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	if data, ok := f.edited[filepath.Clean(path)]; ok {
		return data, nil
	}
	return f.disk.ReadFile(path)
}

func (f rootedFS) Walk(path string, walkFn filepath.WalkFunc) error {
	if err := f.check(path); err != nil {
		return err
	}
	return f.disk.Walk(path, func(p string, info fs.FileInfo, err error) error {
		if err == nil {
			err = f.check(p)
		}
		return walkFn(p, info, err)
	})
}
