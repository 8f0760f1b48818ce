package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// KustomizeOptions are an Application's spec.source.kustomize. Argo CD
// applies them by editing the kustomization in its working copy (`kustomize
// edit set image`, `set nameprefix`, `add label`, …) before the build; Fjord
// edits the same file in memory, so the checkout stays as Git has it.
type KustomizeOptions struct {
	// Images are `kustomize edit set image` arguments: "nginx:1.27",
	// "nginx=registry.example/nginx:1.27", "nginx@sha256:…".
	Images     []string
	NamePrefix string
	NameSuffix string
	// CommonLabels and CommonAnnotations are added; a key the
	// kustomization already has is an error unless the Force flag is set.
	CommonLabels           map[string]string
	ForceCommonLabels      bool
	CommonAnnotations      map[string]string
	ForceCommonAnnotations bool
	// Namespace replaces the kustomization's namespace.
	Namespace string
	// Replicas set the count of the named workloads.
	Replicas []types.Replica
	// Patches are appended to the kustomization's patches.
	Patches []types.Patch
}

// empty reports whether the options change nothing.
func (o *KustomizeOptions) empty() bool {
	return o == nil || (len(o.Images) == 0 && o.NamePrefix == "" && o.NameSuffix == "" && len(o.CommonLabels) == 0 &&
		len(o.CommonAnnotations) == 0 && o.Namespace == "" && len(o.Replicas) == 0 && len(o.Patches) == 0)
}

// editKustomization returns the kustomization file at path with the
// options applied, as `kustomize edit` would leave it.
func editKustomization(path string, o *KustomizeOptions) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if o.NamePrefix != "" {
		k.NamePrefix = o.NamePrefix
	}
	if o.NameSuffix != "" {
		k.NameSuffix = o.NameSuffix
	}
	if o.Namespace != "" {
		k.Namespace = o.Namespace
	}
	for _, s := range o.Images {
		img, err := parseImage(s)
		if err != nil {
			return nil, err
		}
		replaced := false
		for i := range k.Images {
			if k.Images[i].Name == img.Name {
				k.Images[i], replaced = img, true
			}
		}
		if !replaced {
			k.Images = append(k.Images, img)
		}
	}
	if k.CommonLabels, err = addPairs("commonLabels", k.CommonLabels, o.CommonLabels, o.ForceCommonLabels); err != nil {
		return nil, err
	}
	if k.CommonAnnotations, err = addPairs("commonAnnotations", k.CommonAnnotations, o.CommonAnnotations, o.ForceCommonAnnotations); err != nil {
		return nil, err
	}
	for _, r := range o.Replicas {
		replaced := false
		for i := range k.Replicas {
			if k.Replicas[i].Name == r.Name {
				k.Replicas[i], replaced = r, true
			}
		}
		if !replaced {
			k.Replicas = append(k.Replicas, r)
		}
	}
	k.Patches = append(k.Patches, o.Patches...)
	return yaml.Marshal(k)
}

// addPairs adds add to have, refusing a key have already holds unless force.
func addPairs(field string, have, add map[string]string, force bool) (map[string]string, error) {
	if len(add) == 0 {
		return have, nil
	}
	out := make(map[string]string, len(have)+len(add))
	for k, v := range have {
		out[k] = v
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := have[k]; ok && !force {
			return nil, fmt.Errorf("spec.source.kustomize.%s: %q is already in the kustomization; set force%s to override it",
				field, k, strings.ToUpper(field[:1])+field[1:])
		}
		out[k] = add[k]
	}
	return out, nil
}

// parseImage reads a `kustomize edit set image` argument: NAME[=NEWNAME]
// followed by :TAG or @DIGEST.
func parseImage(s string) (types.Image, error) {
	name, ref, renamed := strings.Cut(s, "=")
	if !renamed {
		ref = s
	}
	base, tag, digest := splitImageRef(ref)
	if base == "" {
		return types.Image{}, fmt.Errorf("spec.source.kustomize.images: %q is not an image (NAME[=NEWNAME][:TAG|@DIGEST])", s)
	}
	img := types.Image{Name: base, NewTag: tag, Digest: digest}
	if renamed {
		if name == "" {
			return types.Image{}, errors.New("spec.source.kustomize.images: " + s + ": the name before = is empty")
		}
		img.Name, img.NewName = name, base
	}
	return img, nil
}

// splitImageRef splits "registry:5000/app:1.2@sha256:…" into name, tag and
// digest; the tag's colon is the last one after the last slash.
func splitImageRef(ref string) (name, tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		ref, tag = ref[:i], ref[i+1:]
	}
	return ref, tag, digest
}
