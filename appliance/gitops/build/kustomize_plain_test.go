package build

import (
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A kustomization that only lists resource files is rendered without
// kustomize's accumulation; these cases hold it to what kustomize itself
// makes of the same files (ObjectsOnly false always runs kustomize).
func TestPlainResourcesRenderAsKustomizeDoes(t *testing.T) {
	files := map[string]string{
		"configmaps.yaml": `# a comment before the first document
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: yaml-1-2
  namespace: shop
data:
  enabled: yes
  switch: on
  version: 1.0
  octal: 0755
  empty: ""
---
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: anchors
  namespace: shop
  labels: &labels
    app: shop
  annotations: *labels
data:
  multi: |
    line one
    line two
`,
		"list.yaml": `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {ports: [{port: 80, targetPort: 8080}], selector: {app: shop}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
  spec:
    replicas: 2
    selector: {matchLabels: {app: shop}}
    template:
      metadata: {labels: {app: shop}}
      spec:
        containers: [{name: web, image: "nginx:1.27", resources: {limits: {cpu: 100m, memory: null}}}]
`,
		"cluster.json": `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}`,
		"local.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: local
  annotations:
    config.kubernetes.io/local-config: "true"
`,
	}
	cases := map[string]struct {
		kustomization string
		plain         bool // whether the fast path applies
	}{
		"resource files":                 {"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [configmaps.yaml, list.yaml, cluster.json, local.yaml]\n", true},
		"without apiVersion and kind":    {"resources:\n- configmaps.yaml\n- ./list.yaml\n", true},
		"with a namespace":               {"namespace: other\nresources: [configmaps.yaml, list.yaml]\n", false},
		"with commonLabels":              {"commonLabels: {team: a}\nresources: [configmaps.yaml]\n", false},
		"with a base directory":          {"resources: [configmaps.yaml, base]\n", false},
		"with sortOptions":               {"sortOptions: {order: fifo}\nresources: [configmaps.yaml, list.yaml]\n", false},
		"the same file twice":            {"resources: [configmaps.yaml, configmaps.yaml]\n", true},
		"a file that is not in the repo": {"resources: [configmaps.yaml, missing.yaml]\n", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "app")
			writeFiles(t, dir, files)
			writeFiles(t, dir, map[string]string{
				"base/kustomization.yaml": "resources: [cm.yaml]\n",
				"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
				"kustomization.yaml":      tc.kustomization,
			})

			list, plain := plainResources(root, dir)
			if plain != tc.plain {
				t.Fatalf("plainResources says %v; want %v", plain, tc.plain)
			}
			_, rendered := buildPlainResources(list)
			fast, ferr := Build(root, "app", Options{ObjectsOnly: true})
			full, kerr := Build(root, "app", Options{})
			if (ferr == nil) != (kerr == nil) {
				t.Fatalf("errors differ: fast path %v; kustomize %v", ferr, kerr)
			}
			if kerr != nil {
				if ferr.Error() != kerr.Error() {
					t.Errorf("error %q; kustomize says %q", ferr, kerr)
				}
				return
			}
			if tc.plain && !rendered {
				t.Fatal("the fast path gave up on files kustomize renders")
			}
			got, want := byID(fast.Objects), byID(full.Objects)
			if len(got) != len(want) {
				t.Fatalf("%d objects; kustomize renders %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i].Object, want[i].Object) {
					t.Errorf("object %d differs:\nfast path %v\nkustomize %v", i, got[i].Object, want[i].Object)
				}
			}
		})
	}
}

func byID(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	key := func(u *unstructured.Unstructured) string {
		return strings.Join([]string{u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName()}, "/")
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}
