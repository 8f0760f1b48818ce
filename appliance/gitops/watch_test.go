package gitops

import (
	"log/slog"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
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

// TestCatchUp: after a sync's writes, health is read from a cache that holds
// each written object at least at the version its write answered with.
func TestCatchUp(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(gvk, meta.RESTScopeNamespace)
	w := newWatcher(nil, nil, mapper, nil, slog.Default())
	// An informer that is never run: the test fills its store as watch
	// events would.
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	w.informers[gvr] = inf
	put := func(name, rv string) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace("shop")
		u.SetName(name)
		u.SetResourceVersion(rv)
		if err := inf.GetStore().Update(u); err != nil {
			t.Fatal(err)
		}
	}
	written := func(name, rv string) writtenObj {
		return writtenObj{gvk: gvk, namespace: "shop", name: name, resourceVersion: rv}
	}
	put("web", "9")
	put("api", "12")
	for _, c := range []struct {
		name  string
		o     writtenObj
		holds bool
	}{
		{"the cache is behind the write", written("web", "10"), false},
		{"the cache is at a later version", written("api", "11"), true},
		{"not in the cache yet", written("db", "5"), false},
		{"a version that is not a number: held once there", written("web", "x1"), true},
		{"a kind the mapper does not know", writtenObj{gvk: schema.GroupVersionKind{Group: "x.dev", Version: "v1", Kind: "Thing"}, name: "t", resourceVersion: "1"}, true},
	} {
		if got := w.holds(c.o); got != c.holds {
			t.Errorf("%s: holds = %v, want %v", c.name, got, c.holds)
		}
	}

	all := []writtenObj{written("web", "10"), written("api", "12")}
	go func() {
		time.Sleep(50 * time.Millisecond)
		put("web", "10") // the watch event arrives
	}()
	start := time.Now()
	if late := w.catchUp(all, 5*time.Second); late != 0 {
		t.Fatalf("catchUp: %d objects late after the event arrived", late)
	}
	if took := time.Since(start); took < 50*time.Millisecond || took > time.Second {
		t.Errorf("catchUp returned after %s; want it to wait for the event (50 ms) and no longer", took)
	}
	all = append(all, written("db", "3"))
	if late := w.catchUp(all, 100*time.Millisecond); late != 1 {
		t.Errorf("catchUp with an object never seen: %d late, want 1", late)
	}
}
