package gitops

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestQuietStatus(t *testing.T) {
	// An Application of n resources as the engine last wrote it, and the
	// status a poll that found nothing new would write now: the same but
	// reconciledAt, the resources left out (their hash did not move).
	app := func(n int) *unstructured.Unstructured {
		resources := make([]any, n)
		for i := range resources {
			resources[i] = map[string]any{"version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": fmt.Sprintf("cm-%d", i), "status": "Synced"}
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": "shop", "namespace": "argocd"},
			"status": map[string]any{
				"sync":         map[string]any{"status": "Synced", "revision": "abc", "comparedTo": map[string]any{"source": map[string]any{"path": "shop"}}},
				"health":       map[string]any{"status": "Healthy", "message": ""},
				"reconciledAt": "2026-12-02T10:00:00Z",
				"resources":    resources,
			},
		}}
	}
	next := func() map[string]any {
		return map[string]any{
			"sync":         map[string]any{"status": "Synced", "revision": "abc", "comparedTo": map[string]any{"source": map[string]any{"path": "shop"}}},
			"health":       map[string]any{"status": Healthy, "message": ""},
			"reconciledAt": "2026-12-02T10:00:30Z",
			"conditions":   nil,
		}
	}
	written := func(ago time.Duration) *appState {
		return &appState{statusAt: time.Now().Add(-ago)}
	}
	e := &Engine{}
	cases := []struct {
		name   string
		app    *unstructured.Unstructured
		st     *appState
		status func(map[string]any)
		quiet  bool
	}{
		{"only reconciledAt moved, 30 s after the last write", app(releaseAfter), written(30 * time.Second), nil, true},
		{"a small Application is written on every poll", app(releaseAfter - 1), written(30 * time.Second), nil, false},
		{"statusEvery after the last write", app(1000), written(statusEvery), nil, false},
		{"never written by this engine", app(1000), &appState{}, nil, false},
		{"health moved", app(1000), written(time.Second), func(s map[string]any) { s["health"] = map[string]any{"status": Degraded, "message": "Replicas: 0/1"} }, false},
		{"revision moved", app(1000), written(time.Second), func(s map[string]any) { s["sync"].(map[string]any)["revision"] = "def" }, false},
		{"the resources moved", app(1000), written(time.Second), func(s map[string]any) { s["resources"] = []resourceStatus{} }, false},
		{"a condition appeared", app(1000), written(time.Second), func(s map[string]any) {
			s["conditions"] = []map[string]any{{"type": "ComparisonError", "message": "x"}}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status := next()
			if c.status != nil {
				c.status(status)
			}
			if got := e.quietStatus(c.app, c.st, status); got != c.quiet {
				t.Errorf("quietStatus = %v, want %v", got, c.quiet)
			}
		})
	}
	t.Run("a condition someone left on the live status is cleared", func(t *testing.T) {
		u := app(1000)
		u.Object["status"].(map[string]any)["conditions"] = []any{map[string]any{"type": "SyncError"}}
		if e.quietStatus(u, written(time.Second), next()) {
			t.Error("quiet with a stale condition on the Application")
		}
	})
	t.Run("a refresh asked with the annotation is written", func(t *testing.T) {
		u := app(1000)
		u.SetAnnotations(map[string]string{refreshAnnotation: "normal"})
		if e.quietStatus(u, written(time.Second), next()) {
			t.Error("quiet although a refresh was asked since the last write")
		}
		st := written(time.Second)
		st.refreshAsked = "normal"
		if !e.quietStatus(u, st, next()) {
			t.Error("the refresh written already is asked again")
		}
	})
}

func TestSettledResources(t *testing.T) {
	dep := func(name string, h Health, msg string) resourceStatus {
		return resourceStatus{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: name, Status: "Synced", Health: &healthStatus{Status: h, Message: msg}}
	}
	written := []resourceStatus{dep("a", Progressing, "Replicas: 0/1"), dep("b", Progressing, "Replicas: 0/1")}
	last := listHash(withoutHealthMessages(written))
	cases := []struct {
		name    string
		now     []resourceStatus
		settled bool
	}{
		{"only a message moved", []resourceStatus{dep("a", Progressing, "Available: 0/1"), dep("b", Progressing, "Replicas: 0/1")}, true},
		{"a health status moved", []resourceStatus{dep("a", Healthy, ""), dep("b", Progressing, "Replicas: 0/1")}, false},
		{"an object is gone", []resourceStatus{dep("a", Progressing, "Replicas: 0/1")}, false},
		{"an object went out of sync", []resourceStatus{dep("a", Progressing, "Replicas: 0/1"), func() resourceStatus {
			r := dep("b", Progressing, "Replicas: 0/1")
			r.Status = "OutOfSync"
			return r
		}()}, false},
	}
	for _, c := range cases {
		if got := listHash(withoutHealthMessages(c.now)) == last; got != c.settled {
			t.Errorf("%s: same as written but for messages = %v, want %v", c.name, got, c.settled)
		}
	}
	if written[0].Health.Message != "Replicas: 0/1" {
		t.Error("withoutHealthMessages changed the list it was given")
	}

	// Whether such a list waits: only on a large Application whose list
	// and status were written recently, with no operation or refresh.
	app := func(n int) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"resources": make([]any, n)}}}
	}
	state := func(listAgo, statusAgo time.Duration) *appState {
		return &appState{resourcesStates: last, resourcesAt: time.Now().Add(-listAgo), statusAt: time.Now().Add(-statusAgo)}
	}
	e := &Engine{}
	refreshed := app(1000)
	refreshed.SetAnnotations(map[string]string{refreshAnnotation: "normal"})
	waits := []struct {
		name      string
		app       *unstructured.Unstructured
		st        *appState
		states    string
		operation bool
		wait      bool
	}{
		{"messages moved, list written 30 s ago", app(1000), state(30*time.Second, 10*time.Second), last, false, true},
		{"a health status moved", app(1000), state(30*time.Second, 10*time.Second), "other", false, false},
		{"list written statusEvery ago, status since", app(1000), state(statusEvery, 10*time.Second), last, false, false},
		{"list never written", app(1000), &appState{resourcesStates: last, statusAt: time.Now()}, last, false, false},
		{"an operation's write", app(1000), state(30*time.Second, 10*time.Second), last, true, false},
		{"a small Application", app(releaseAfter - 1), state(30*time.Second, 10*time.Second), last, false, false},
		{"a refresh asked since", refreshed, state(30*time.Second, 10*time.Second), last, false, false},
	}
	for _, c := range waits {
		if got := e.messagesOnly(c.app, c.st, c.states, c.operation); got != c.wait {
			t.Errorf("%s: messagesOnly = %v, want %v", c.name, got, c.wait)
		}
	}
}
