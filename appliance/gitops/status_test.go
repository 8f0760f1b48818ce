package gitops

import (
	"reflect"
	"testing"
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
