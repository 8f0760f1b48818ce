package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/appliance/gitops/build"
)

// source is one thing to render: a path of the repository, alone or as an
// Application names it.
type source struct {
	// name identifies the source in the report: the Application's name, or
	// the path.
	name string
	// path is relative to the repository root, with forward slashes.
	path string
	// app is the Application, nil for a bare path.
	app *gitops.Application
	// file is the --app file the Application came from.
	file string
	// notes say what of the Application verify (like the engine) ignores.
	notes []string
}

// namespace is where the source's namespaced objects without a namespace
// go: the Application's destination, or "default" as kubectl would.
func (s *source) namespace() string {
	if s.app != nil {
		return s.app.Spec.Destination.Namespace
	}
	return "default"
}

// createNamespace reports whether the Application asks for its destination
// namespace to be made (syncOptions CreateNamespace=true).
func (s *source) createNamespace() bool {
	return s.app != nil && s.app.SyncOption("CreateNamespace") && s.app.Spec.Destination.Namespace != ""
}

// repoRoot returns the top of the Git work tree holding dir (the nearest
// ancestor with a .git entry), or dir itself outside any work tree, and
// dir relative to it. Git itself is not run: files are read as they are on
// disk, uncommitted changes included.
func repoRoot(dir string) (root, rel string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", "", err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", "", err
	}
	if !info.IsDir() {
		return "", "", fmt.Errorf("%s is not a directory", dir)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			rel, _ := filepath.Rel(d, abs)
			return d, filepath.ToSlash(rel), nil
		}
		if filepath.Dir(d) == d {
			return abs, ".", nil
		}
	}
}

// readApplications reads the Applications of an --app file (YAML or JSON,
// one or more documents; other kinds are an error) as sources.
func readApplications(file string) ([]*source, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var srcs []*source
	for i := 1; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		if gvk.Group != gitops.ApplicationGVR.Group || gvk.Kind != "Application" {
			return nil, fmt.Errorf("document %d is a %s %q, not an argoproj.io Application", i, u.GetKind(), u.GetName())
		}
		app, err := gitops.ParseApplication(u)
		if err != nil {
			return nil, fmt.Errorf("Application %q: %w", app.Name, err)
		}
		// What the engine would refuse to sync, verify refuses too.
		if err := app.Validate(); err != nil {
			return nil, fmt.Errorf("Application %q: %w", app.Name, err)
		}
		if app.Spec.Source == nil {
			return nil, fmt.Errorf("Application %q: spec.sources: verify renders an Application with one source (the working tree); sync it to render several", app.Name)
		}
		s := &source{name: app.Name, path: app.Spec.Source.Path, app: app, file: file}
		if t := app.Spec.Source.TargetRevision; t != "" && t != "HEAD" {
			s.notes = append(s.notes, fmt.Sprintf("targetRevision %q is not checked out: the working tree is verified", t))
		}
		srcs = append(srcs, s)
	}
	if len(srcs) == 0 {
		return nil, errors.New("no Application in the file")
	}
	return srcs, nil
}

// render builds a source from the working tree with the engine's build
// stage and the engine's options (directory.recurse).
func render(root string, s *source) (*build.Result, error) {
	if s.app == nil {
		return build.Build(root, s.path, build.Options{})
	}
	return build.Build(root, s.path, s.app.BuildOptions())
}
