package build

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// HelmOptions are an Application's spec.source.helm, rendered the way Argo
// CD's repo-server does: `helm template` of the chart at the path, client
// side only (no release state, no cluster lookups).
type HelmOptions struct {
	// ReleaseName is .Release.Name; Argo CD's default is the Application's
	// name.
	ReleaseName string
	// Namespace is .Release.Namespace: the destination namespace.
	Namespace string
	// ValueFiles are values files relative to the chart's directory (they
	// may not leave the repository), merged in order.
	ValueFiles []string
	// Refs maps the ref names of an Application's sources to their
	// checkouts: a value file $name/path is read from there.
	Refs map[string]string
	// IgnoreMissingValueFiles skips value files that do not exist.
	IgnoreMissingValueFiles bool
	// Values is a YAML document of values, merged after the files; when
	// ValuesObject is set it wins, as in Argo CD.
	Values       string
	ValuesObject map[string]any
	// Parameters are --set (or --set-string with ForceString) values,
	// applied last.
	Parameters []HelmParameter
	// SkipCrds leaves out the charts' crds/ directories (helm template
	// --include-crds otherwise, as Argo CD passes).
	SkipCrds bool
	// KubeVersion is .Capabilities.KubeVersion ("v1.37.2"); empty: helm's
	// default.
	KubeVersion string
	// APIVersions are added to .Capabilities.APIVersions.
	APIVersions []string
}

// HelmParameter is one of spec.source.helm.parameters.
type HelmParameter struct {
	Name        string
	Value       string
	ForceString bool
}

// SourceTypeHelm is a directory with a Chart.yaml.
const SourceTypeHelm SourceType = "Helm"

// HelmError means helm refused to render the chart; Reason is helm's
// message with the repository root removed from paths.
type HelmError struct {
	// Path is the chart's directory relative to the repository root.
	Path string
	// Reason is helm's message.
	Reason string
}

// Error returns "helm template <path>: <reason>".
func (e *HelmError) Error() string {
	return fmt.Sprintf("helm template %s: %s", e.Path, e.Reason)
}

// isChart reports whether dir holds a Helm chart.
func isChart(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName))
	return err == nil && info.Mode().IsRegular()
}

// buildChart renders the chart in dir as `helm template --include-crds`
// (unless SkipCrds) of the same helm version prints it; Result.YAML is that
// output byte for byte.
func buildChart(root, dir, rel string, o HelmOptions) (*Result, error) {
	herr := func(err error) error {
		return &HelmError{Path: rel, Reason: stripRoot(err.Error(), root)}
	}
	if err := checkConfined(root, dir); err != nil {
		return nil, herr(err)
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, herr(err)
	}
	if err := loadFileDependencies(root, dir, ch); err != nil {
		return nil, herr(err)
	}
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return nil, herr(fmt.Errorf("chart %s is of type %q and cannot be rendered on its own", ch.Name(), t))
	}
	vals, err := helmValues(root, dir, o)
	if err != nil {
		return nil, herr(err)
	}
	name := o.ReleaseName
	if err := chartutil.ValidateReleaseName(name); err != nil {
		return nil, herr(fmt.Errorf("release name %q: %w", name, err))
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, herr(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if o.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, herr(err)
		}
		caps.KubeVersion = *kv
	}
	caps.APIVersions = append(caps.APIVersions, o.APIVersions...)
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, herr(fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", ch.Metadata.KubeVersion, caps.KubeVersion.String()))
	}
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals,
		chartutil.ReleaseOptions{Name: name, Namespace: o.Namespace, Revision: 1, IsInstall: true}, caps, false)
	if err != nil {
		return nil, herr(err)
	}
	files, err := engine.Engine{}.Render(ch, rv)
	if err != nil {
		return nil, herr(err)
	}
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, herr(err)
	}

	// The stream `helm template` prints: CRDs, the manifests in install
	// order, then the hooks.
	var body bytes.Buffer
	if !o.SkipCrds {
		for _, crd := range ch.CRDObjects() {
			fmt.Fprintf(&body, "---\n# Source: %s\n%s\n", crd.Filename, crd.File.Data)
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(&body, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var out bytes.Buffer
	fmt.Fprintln(&out, strings.TrimSpace(body.String()))
	var warnings []string
	for _, h := range hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
		// The sync maps pre-/post-install and -upgrade onto Argo CD's
		// PreSync and PostSync hooks (its helm.sh annotations); any other
		// event is not run, by Argo CD either.
		if !runsAsArgoHook(h.Events) {
			warnings = append(warnings, fmt.Sprintf("%s: %s is a Helm hook (%s) that is not run: Argo CD (and Fjord) run only pre-/post-install and -upgrade hooks",
				path.Join(rel, strings.TrimPrefix(h.Path, ch.Name()+"/")), h.Kind+"/"+h.Name, hookEvents(h.Events)))
		}
	}
	objs, err := parseManifests(rel+" (rendered)", out.Bytes())
	if err != nil {
		return nil, herr(err)
	}
	return &Result{SourceType: SourceTypeHelm, Objects: objs, YAML: out.Bytes(), Warnings: warnings}, nil
}

// runsAsArgoHook reports whether a Helm hook has an event Argo CD runs.
func runsAsArgoHook[E ~string](events []E) bool {
	for _, e := range events {
		switch e {
		case "pre-install", "pre-upgrade", "post-install", "post-upgrade":
			return true
		}
	}
	return false
}

func hookEvents[E ~string](events []E) string {
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = string(e)
	}
	return strings.Join(s, ",")
}

// helmValues merges the values as `helm template -f F… --values V --set P…`
// does (Argo CD writes values and valuesObject to a file passed after the
// value files).
func helmValues(root, dir string, o HelmOptions) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range o.ValueFiles {
		if strings.Contains(f, "://") {
			return nil, fmt.Errorf("value file %s: only files in the repository can be read (no registry or web server is reachable)", f)
		}
		p := filepath.Join(dir, filepath.FromSlash(f))
		if filepath.IsAbs(f) {
			p = filepath.Join(root, filepath.FromSlash(f))
		}
		base := root
		if ref, rest, ok := strings.Cut(f, "/"); ok && strings.HasPrefix(ref, "$") {
			// Another source's file (Argo CD's multiple sources).
			refRoot, ok := o.Refs[ref[1:]]
			if !ok {
				return nil, fmt.Errorf("value file %s: no source has ref %s", f, ref[1:])
			}
			if r, err := filepath.EvalSymlinks(refRoot); err == nil {
				refRoot = r
			}
			p, base = filepath.Join(refRoot, filepath.FromSlash(rest)), refRoot
		}
		resolved, err := filepath.EvalSymlinks(p)
		if errors.Is(err, fs.ErrNotExist) {
			if o.IgnoreMissingValueFiles {
				continue
			}
			return nil, fmt.Errorf("value file %s does not exist in the repository (set ignoreMissingValueFiles to skip it)", f)
		}
		if err != nil {
			return nil, fmt.Errorf("value file %s: %w", f, err)
		}
		if !within(base, resolved) {
			return nil, fmt.Errorf("value file %s leaves the repository", f)
		}
		data, err := os.ReadFile(resolved)
		if err != nil {
			return nil, fmt.Errorf("value file %s: %w", f, err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("value file %s: %w", f, err)
		}
		vals = mergeValues(vals, m)
	}
	switch {
	case o.ValuesObject != nil:
		vals = mergeValues(vals, o.ValuesObject)
	case strings.TrimSpace(o.Values) != "":
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(o.Values), &m); err != nil {
			return nil, fmt.Errorf("spec.source.helm.values: %w", err)
		}
		vals = mergeValues(vals, m)
	}
	for _, p := range o.Parameters {
		parse := strvals.ParseInto
		if p.ForceString {
			parse = strvals.ParseIntoString
		}
		if err := parse(p.Name+"="+p.Value, vals); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
	}
	return vals, nil
}

// mergeValues merges b into a copy of a, tables recursively and anything
// else replaced, as helm merges its -f files.
func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bt, ok := v.(map[string]any); ok {
			if at, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(at, bt)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// loadFileDependencies adds to ch the dependencies its Chart.yaml takes
// from file:// paths and that charts/ does not vendor, as `helm dependency
// build` would have; any other missing dependency is an error, since no
// chart repository can be reached.
func loadFileDependencies(root, dir string, ch *chart.Chart) error {
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if hasDependency(ch, d.Name) {
			continue
		}
		if !strings.HasPrefix(d.Repository, "file://") {
			missing = append(missing, fmt.Sprintf("%s (from %s)", d.Name, orNone(d.Repository)))
			continue
		}
		sub, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(d.Repository, "file://"))))
		if err != nil {
			return fmt.Errorf("dependency %s from %s: %w", d.Name, d.Repository, err)
		}
		if !within(root, sub) {
			return fmt.Errorf("dependency %s from %s leaves the repository", d.Name, d.Repository)
		}
		if err := checkConfined(root, sub); err != nil {
			return err
		}
		c, err := loader.LoadDir(sub)
		if err != nil {
			return fmt.Errorf("dependency %s from %s: %w", d.Name, d.Repository, err)
		}
		if err := loadFileDependencies(root, sub, c); err != nil {
			return err
		}
		ch.AddDependency(c)
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s: no chart repository can be reached from here; "+
			"vendor them (helm dependency build) and commit charts/", strings.Join(missing, ", "))
	}
	return nil
}

func hasDependency(ch *chart.Chart, name string) bool {
	for _, c := range ch.Dependencies() {
		if c.Name() == name {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "no repository"
	}
	return s
}

// checkConfined refuses a chart directory holding a symlink that leads out
// of the repository: helm's loader follows symlinks, and a chart's files
// are readable by its templates (.Files.Get).
func checkConfined(root, dir string) error {
	return confined(root, dir, map[string]bool{})
}

func confined(root, dir string, seen map[string]bool) error {
	if seen[dir] {
		return nil // a symlink cycle inside the repository: loader's problem, reported by it
	}
	seen[dir] = true
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("%s: %w", relName(root, p), err)
		}
		if !within(root, target) {
			return fmt.Errorf("%s is a symlink that leaves the repository", relName(root, p))
		}
		if info, err := os.Stat(target); err == nil && info.IsDir() {
			return confined(root, target, seen)
		}
		return nil
	})
}
