// Package build is the second stage of the GitOps engine: it renders one path
// of a checked-out repository into Kubernetes objects, the way Argo CD's
// repo-server does. A directory holding a kustomization is built with
// kustomize (as `kubectl kustomize` would, with plugins, exec functions, helm
// and remote bases disabled); a directory holding a Helm chart is rendered as
// `helm template` would (helm as a library, client side only); any other
// directory is read as plain YAML and JSON manifests. Nothing outside the
// repository is ever read.
package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"
)

// Options change how a path is rendered.
type Options struct {
	// Recurse makes a plain directory include the manifests of its
	// subdirectories, like Argo CD's spec.source.directory.recurse. It does
	// not apply to kustomizations.
	Recurse bool
	// Helm renders a chart (a directory with Chart.yaml) with these
	// options; nil renders it as plain `helm template` would (release
	// name "release-name").
	Helm *HelmOptions
	// Kustomize edits a kustomization before it is built, as Argo CD's
	// spec.source.kustomize does; nil or empty changes nothing.
	Kustomize *KustomizeOptions
	// HelmSource says the source is a chart (Argo CD's spec.source.helm is
	// set): the path must hold one, and it is rendered even beside a
	// kustomization, which otherwise wins as in Argo CD's discovery.
	HelmSource bool
	// ObjectsOnly leaves Result.YAML of a kustomization empty: printing the
	// stream is about half of what a build of a thousand objects allocates,
	// and the engine reads only the objects.
	ObjectsOnly bool
}

// SourceType says how a path was rendered, with Argo CD's names.
type SourceType string

const (
	// SourceTypeKustomize is a directory with a kustomization file.
	SourceTypeKustomize SourceType = "Kustomize"
	// SourceTypeDirectory is a directory of plain manifests.
	SourceTypeDirectory SourceType = "Directory"
)

// Result is a rendered path.
type Result struct {
	// SourceType says how the path was rendered.
	SourceType SourceType
	// Objects are the rendered objects, in order; each has apiVersion and
	// kind.
	Objects []*unstructured.Unstructured
	// YAML is the same objects as a multi-document YAML stream. For a
	// kustomization it is byte for byte what `kubectl kustomize` prints.
	YAML []byte
	// Warnings are kustomize's deprecation notices, such as
	// "apps/overlays/production/kustomization.yaml: 'commonLabels' is
	// deprecated. …", for a status or an event. (kustomize also prints them
	// to the process's stderr itself.)
	Warnings []string
}

// Empty reports whether the render produced no object. It is not an error
// here, but a caller must not prune on it: an empty render is more often a
// mistake (a wrong path, a deleted file) than a wish to delete everything.
func (r *Result) Empty() bool { return len(r.Objects) == 0 }

// PathError means the path to render is unusable: it leaves the repository,
// does not exist or is not a directory.
type PathError struct {
	// Path is the path as given.
	Path string
	// Reason says what is wrong.
	Reason string
}

// Error returns "path <path>: <reason>".
func (e *PathError) Error() string {
	return fmt.Sprintf("path %q: %s", e.Path, e.Reason)
}

// ManifestError means a manifest file is unusable: invalid YAML or JSON, a
// document that is not an object, an object without apiVersion or kind, a
// symlink leaving the repository.
type ManifestError struct {
	// File is the file's path relative to the repository root.
	File string
	// Line is the 1-based line the problem is on, 0 when unknown.
	Line int
	// Reason says what is wrong.
	Reason string
}

// Error returns "<file>: <reason>", the reason naming the line when known,
// such as "apps/base/deployment.yaml: yaml: line 7: mapping values are not
// allowed in this context".
func (e *ManifestError) Error() string {
	if e.Line > 0 && !strings.Contains(e.Reason, "line ") {
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// KustomizeError means kustomize refused to build a kustomization; Reason is
// kustomize's message with the repository root removed from paths.
type KustomizeError struct {
	// Path is the kustomization's directory relative to the repository root.
	Path string
	// Reason is kustomize's message.
	Reason string
}

// Error returns "kustomize build <path>: <reason>".
func (e *KustomizeError) Error() string {
	return fmt.Sprintf("kustomize build %s: %s", e.Path, e.Reason)
}

// Build renders path, a directory relative to repoRoot. A directory holding
// kustomization.yaml, kustomization.yml or Kustomization is built with
// kustomize; any other is read as plain manifests (*.yaml, *.yml, *.json,
// multi-document, empty documents skipped, hidden files and directories
// ignored; subdirectories only with opts.Recurse). Errors are *PathError,
// *ManifestError or *KustomizeError; all mean the repository content must
// change, so retrying does not help. An empty render is not an error (see
// Result.Empty).
func Build(repoRoot, path string, opts Options) (*Result, error) {
	root, dir, rel, err := resolvePath(repoRoot, path)
	if err != nil {
		return nil, err
	}
	helm := HelmOptions{ReleaseName: "release-name"}
	if opts.Helm != nil {
		helm = *opts.Helm
	}
	switch {
	case opts.HelmSource && !isChart(dir):
		return nil, &PathError{Path: path, Reason: "holds no Chart.yaml, but spec.source.helm is set"}
	case opts.HelmSource:
		return buildChart(root, dir, rel, helm)
	case !opts.Kustomize.empty() && kustomizationFile(dir) == "":
		return nil, &PathError{Path: path, Reason: "holds no kustomization, but spec.source.kustomize is set"}
	case kustomizationFile(dir) != "":
		return buildKustomization(root, dir, rel, opts.Kustomize, opts.ObjectsOnly)
	case isChart(dir):
		return buildChart(root, dir, rel, helm)
	}
	return buildDirectory(root, dir, opts.Recurse)
}

// resolvePath returns the repository root and the directory to render, both
// absolute with symlinks resolved, and the directory relative to the root.
func resolvePath(repoRoot, path string) (root, dir, rel string, err error) {
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		return "", "", "", fmt.Errorf("resolving repository root: %w", err)
	}
	if root, err = filepath.EvalSymlinks(abs); err != nil {
		return "", "", "", fmt.Errorf("resolving repository root: %w", err)
	}
	clean := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", "", "", &PathError{Path: path, Reason: "leaves the repository"}
	}
	dir, err = filepath.EvalSymlinks(filepath.Join(root, clean))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", "", &PathError{Path: path, Reason: "does not exist in the repository"}
	}
	if err != nil {
		return "", "", "", &PathError{Path: path, Reason: err.Error()}
	}
	if !within(root, dir) {
		return "", "", "", &PathError{Path: path, Reason: "leaves the repository through a symlink"}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return "", "", "", &PathError{Path: path, Reason: err.Error()}
	}
	if !info.IsDir() {
		return "", "", "", &PathError{Path: path, Reason: "is not a directory"}
	}
	rel, _ = filepath.Rel(root, dir)
	return root, dir, filepath.ToSlash(rel), nil
}

// within reports whether path is root or below it; both must be clean and
// absolute.
func within(root, path string) bool {
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}

// kustomizationFile returns the kustomization file in dir, or "".
func kustomizationFile(dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if info, err := os.Stat(filepath.Join(dir, name)); err == nil && info.Mode().IsRegular() {
			return name
		}
	}
	return ""
}
