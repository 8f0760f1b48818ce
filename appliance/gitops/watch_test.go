package gitops

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestOthersMetadataIsNotDrift(t *testing.T) {
	obj := func(gen int64, labels, annotations map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "shop"}}}
		u.SetGeneration(gen)
		u.SetLabels(labels)
		u.SetAnnotations(annotations)
		return u
	}
	tracking := map[string]string{annotationTrackingID: "shop:apps/Deployment:shop/web"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	desired := obj(0, map[string]string{"app": "web"}, tracking)
	live := obj(1, map[string]string{"app": "web"}, tracking)
	for _, c := range []struct {
		name   string
		cur    *unstructured.Unstructured
		others bool
	}{
		{"the Deployment controller's revision annotation", obj(1, map[string]string{"app": "web"}, with(tracking, "deployment.kubernetes.io/revision", "1")), true},
		{"a label Git does not set", obj(1, map[string]string{"app": "web", "team": "x"}, tracking), true},
		{"a label Git sets, changed", obj(1, map[string]string{"app": "other"}, tracking), false},
		{"a label Git sets, removed", obj(1, nil, tracking), false},
		{"the tracking annotation removed", obj(1, map[string]string{"app": "web"}, nil), false},
		{"the spec changed too (a new generation)", obj(2, map[string]string{"app": "web"}, with(tracking, "deployment.kubernetes.io/revision", "2")), false},
	} {
		if got := othersMetadata(live, c.cur, desired); got != c.others {
			t.Errorf("%s: othersMetadata = %v, want %v", c.name, got, c.others)
		}
	}
	// Objects without a generation (ConfigMaps) and deletions are always checked.
	cm := func(annotations map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}
		u.SetAnnotations(annotations)
		return u
	}
	if othersMetadata(cm(tracking), cm(with(tracking, "x", "y")), cm(tracking)) {
		t.Error("a change to an object without generation was not checked")
	}
	if othersMetadata(nil, live, desired) {
		t.Error("a deletion was not checked")
	}
}
