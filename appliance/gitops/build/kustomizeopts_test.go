package build

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
)

func TestParseImage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want types.Image
	}{
		{"nginx:1.27", types.Image{Name: "nginx", NewTag: "1.27"}},
		{"nginx=registry.example:5000/team/nginx:1.27", types.Image{Name: "nginx", NewName: "registry.example:5000/team/nginx", NewTag: "1.27"}},
		{"app@sha256:abc", types.Image{Name: "app", Digest: "sha256:abc"}},
		{"app=registry.example/app", types.Image{Name: "app", NewName: "registry.example/app"}},
		{"registry.example:5000/app:2", types.Image{Name: "registry.example:5000/app", NewTag: "2"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseImage(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// find returns the rendered object of kind whose name ends with suffix.
func find(t *testing.T, r *Result, kind, suffix string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range r.Objects {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), suffix) {
			return o
		}
	}
	t.Fatalf("no %s *%s in %d objects", kind, suffix, len(r.Objects))
	return nil
}

func TestKustomizeOptionsAsArgoCDApplies(t *testing.T) {
	const path = "apps/overlays/production"
	opts := &KustomizeOptions{
		Images:            []string{"app=registry.example.com/team/app:4b1d2e", "sidecar:2"},
		NamePrefix:        "oslo-",
		NameSuffix:        "-v2",
		CommonLabels:      map[string]string{"team": "payments"},
		CommonAnnotations: map[string]string{"owner": "payments@example.com"},
		Namespace:         "payments",
		Replicas:          []types.Replica{{Name: "app", Count: 5}},
		Patches: []types.Patch{{Target: &types.Selector{ResId: resid.ResId{Gvk: resid.Gvk{Kind: "Service"}}},
			Patch: `[{"op": "add", "path": "/metadata/annotations/lb", "value": "internal"}]`}},
	}
	r, err := Build(testRepo, path, Options{Kustomize: opts})
	if err != nil {
		t.Fatal(err)
	}
	d := find(t, r, "Deployment", "app-v2")
	t.Run("the name prefix replaces the kustomization's, the suffix is added, the namespace replaced", func(t *testing.T) {
		if d.GetName() != "oslo-app-v2" || d.GetNamespace() != "payments" {
			t.Errorf("got %s/%s", d.GetNamespace(), d.GetName())
		}
	})
	t.Run("an image of the kustomization is set anew by name", func(t *testing.T) {
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if img := cs[0].(map[string]any)["image"]; img != "registry.example.com/team/app:4b1d2e" {
			t.Errorf("image %v", img)
		}
	})
	t.Run("labels and annotations are added beside the kustomization's", func(t *testing.T) {
		if l := d.GetLabels(); l["team"] != "payments" || l["env"] != "production" {
			t.Errorf("labels %v", l)
		}
		if a := d.GetAnnotations(); a["owner"] != "payments@example.com" {
			t.Errorf("annotations %v", a)
		}
	})
	t.Run("replicas win over the overlay's patch, patches are applied", func(t *testing.T) {
		if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 5 {
			t.Errorf("replicas %d", n)
		}
		if a := find(t, r, "Service", "app-v2").GetAnnotations(); a["lb"] != "internal" {
			t.Errorf("service annotations %v", a)
		}
	})
	t.Run("the checkout is untouched", func(t *testing.T) {
		data, _ := os.ReadFile(filepath.Join(testRepo, path, "kustomization.yaml"))
		if strings.Contains(string(data), "oslo-") {
			t.Error("the kustomization on disk was edited")
		}
	})
	t.Run("the same as kubectl kustomize of the kustomization edited by hand", func(t *testing.T) {
		kubectl, err := exec.LookPath("/usr/bin/kubectl")
		if err != nil {
			t.Skip("no /usr/bin/kubectl")
		}
		tmp := t.TempDir()
		if out, err := exec.Command("cp", "-r", testRepo+"/.", tmp).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		file := filepath.Join(tmp, path, "kustomization.yaml")
		edited, err := editKustomization(file, opts)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(file, edited, 0o644)
		out, err := exec.Command(kubectl, "kustomize", filepath.Join(tmp, path)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(r.YAML) {
			t.Errorf("differs:\n--- kubectl\n%s\n--- fjord\n%s", out, r.YAML)
		}
	})
	t.Run("a label the kustomization has is refused without forceCommonLabels", func(t *testing.T) {
		_, err := Build(testRepo, path, Options{Kustomize: &KustomizeOptions{CommonLabels: map[string]string{"env": "oslo"}}})
		if err == nil || !strings.Contains(err.Error(), `spec.source.kustomize.commonLabels: "env" is already in the kustomization; set forceCommonLabels`) {
			t.Fatalf("got %v", err)
		}
		r, err := Build(testRepo, path, Options{Kustomize: &KustomizeOptions{CommonLabels: map[string]string{"env": "oslo"}, ForceCommonLabels: true}})
		if err != nil || find(t, r, "Deployment", "app").GetLabels()["env"] != "oslo" {
			t.Fatalf("with force: %v", err)
		}
	})
	t.Run("options on a path without a kustomization are refused", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{"d/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"})
		_, err := Build(repo, "d", Options{Kustomize: &KustomizeOptions{NamePrefix: "x-"}})
		if err == nil || !strings.Contains(err.Error(), "holds no kustomization, but spec.source.kustomize is set") {
			t.Fatalf("got %v", err)
		}
	})
}
