package gitops

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

func TestWrittenListsWhatTheSyncWrote(t *testing.T) {
	cm := func(name, status, msg string) resourceResult {
		return resourceResult{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: name, Status: status, Message: msg, SyncPhase: "Sync"}
	}
	hook := resourceResult{Group: "batch", Version: "v1", Kind: "Job", Namespace: "shop", Name: "migrate", Status: "Synced", Message: "unchanged", SyncPhase: "PreSync", HookType: "PreSync", HookPhase: "Succeeded"}
	in := []resourceResult{
		cm("same", "Synced", "unchanged"),
		cm("new", "Synced", "created"),
		cm("edited", "Synced", "configured"),
		cm("gone", "Pruned", "pruned"),
		cm("bad", "SyncFailed", "the API server refused it"),
		hook,
	}
	want := []resourceResult{in[1], in[2], in[3], in[4], hook}
	if got := written(in); !reflect.DeepEqual(got, want) {
		t.Errorf("written =\n%+v\nwant\n%+v", got, want)
	}
	if got := written([]resourceResult{cm("same", "Synced", "unchanged")}); len(got) != 0 {
		t.Errorf("a no-op lists %+v", got)
	}
}

func TestResourceHealth(t *testing.T) {
	t.Run("a kind without a health check of its own has none, as in Argo CD", func(t *testing.T) {
		if h := resourceHealth(schema.GroupKind{Kind: "ConfigMap"}, Healthy, "Resource is always ready"); h != nil {
			t.Errorf("ConfigMap health = %+v, want none", h)
		}
	})
	t.Run("a missing one still says so", func(t *testing.T) {
		h := resourceHealth(schema.GroupKind{Kind: "Secret"}, Missing, "not found")
		if h == nil || h.Status != Missing || h.Message != "not found" {
			t.Errorf("missing Secret health = %+v", h)
		}
	})
	t.Run("a healthy resource carries no message", func(t *testing.T) {
		h := resourceHealth(schema.GroupKind{Group: "apps", Kind: "Deployment"}, Healthy, "Deployment is available. Replicas: 1")
		if h == nil || h.Status != Healthy || h.Message != "" {
			t.Errorf("healthy Deployment health = %+v", h)
		}
	})
	t.Run("an unhealthy one keeps its message", func(t *testing.T) {
		h := resourceHealth(schema.GroupKind{Group: "apps", Kind: "Deployment"}, Progressing, "Replicas: 0/1")
		if h == nil || h.Status != Progressing || h.Message != "Replicas: 0/1" {
			t.Errorf("progressing Deployment health = %+v", h)
		}
	})
}

func TestSlimApplicationKeepsWhatTheEngineReads(t *testing.T) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(`{"apiVersion":"argoproj.io/v1alpha1","kind":"Application",
	 "metadata":{"name":"shop","namespace":"argocd","managedFields":[{"manager":"fjord"}]},
	 "spec":{"source":{"path":"shop"}},
	 "status":{"sync":{"status":"Synced","revision":"abc"},
	  "resources":[{"version":"v1","kind":"ConfigMap","namespace":"shop","name":"a","status":"Synced"}],
	  "operationState":{"phase":"Succeeded","message":"done","finishedAt":"2026-12-02T03:00:00Z",
	   "syncResult":{"revision":"abc","resources":[{"version":"v1","kind":"ConfigMap","name":"a","status":"Synced","message":"created"}]}}}}`)); err != nil {
		t.Fatal(err)
	}
	out, err := slimApplication(u)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*unstructured.Unstructured)
	if len(s.GetManagedFields()) != 0 {
		t.Error("managedFields kept")
	}
	if _, found, _ := unstructured.NestedSlice(s.Object, "status", "operationState", "syncResult", "resources"); found {
		t.Error("the operation's per-object results kept")
	}
	if inv := inventoryOf(s); len(inv) != 1 || inv[0].Name != "a" {
		t.Errorf("inventory = %+v, want the one ConfigMap", inv)
	}
	if statusString(s, "operationState", "phase") != "Succeeded" || statusString(s, "sync", "revision") != "abc" {
		t.Errorf("operation phase or sync revision lost: %v", s.Object["status"])
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "argocd/shop"}
	if got, err := slimApplication(tomb); err != nil || !reflect.DeepEqual(got, tomb) {
		t.Errorf("a tombstone came back as %#v, %v; want it unchanged", got, err)
	}
}
