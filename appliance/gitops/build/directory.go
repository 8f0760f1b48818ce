package build

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// manifestExts are the file extensions read from a plain directory, as Argo
// CD reads them (jsonnet aside).
var manifestExts = []string{".yaml", ".yml", ".json"}

// buildDirectory reads the manifests of a plain directory in lexical path
// order.
func buildDirectory(root, dir string, recurse bool) (*Result, error) {
	var objs []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := strings.HasPrefix(d.Name(), ".")
		if d.IsDir() {
			if path != dir && (hidden || !recurse) {
				return filepath.SkipDir
			}
			return nil
		}
		if hidden || !isManifest(d.Name()) {
			return nil
		}
		rel := relName(root, path)
		if d.Type()&fs.ModeSymlink != 0 {
			// Like Argo CD: a link may point anywhere inside the
			// repository, never outside it.
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return &ManifestError{File: rel, Reason: fmt.Sprintf("resolving symlink: %v", err)}
			}
			if !within(root, target) {
				return &ManifestError{File: rel, Reason: "symlink leaves the repository"}
			}
			if info, err := os.Stat(target); err != nil || info.IsDir() {
				return nil // a link to a directory is not followed
			}
			path = target
		} else if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		fileObjs, err := parseManifests(rel, data)
		if err != nil {
			return err
		}
		objs = append(objs, fileObjs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	y, err := toYAML(objs)
	if err != nil {
		return nil, err
	}
	return &Result{SourceType: SourceTypeDirectory, Objects: objs, YAML: y}, nil
}

func isManifest(name string) bool {
	for _, ext := range manifestExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// relName is path relative to root with forward slashes, for messages.
func relName(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}
