package gitops

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func withAnnotations(t *testing.T, kind, name string, ann map[string]string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	if kind == "Job" {
		u.SetAPIVersion("batch/v1")
	}
	u.SetKind(kind)
	if strings.HasSuffix(name, "-") {
		u.SetGenerateName(name)
	} else {
		u.SetName(name)
	}
	u.SetAnnotations(ann)
	return u
}

func TestHookPhases(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ann    map[string]string
		phases []string
		isHook bool
	}{
		{"an object without hook annotations is an ordinary resource", nil, nil, false},
		// Argo CD's documented schema migration example.
		{"the documented PreSync migration Job", map[string]string{annotationHook: "PreSync", annotationHookDeletePolicy: "HookSucceeded"}, []string{phasePreSync}, true},
		{"several types make one hook per phase", map[string]string{annotationHook: "PreSync, PostSync"}, []string{phasePreSync, phasePostSync}, true},
		{"Skip alone is applied nowhere", map[string]string{annotationHook: "Skip"}, nil, true},
		{"Skip beside a type is ignored", map[string]string{annotationHook: "Skip,Sync"}, []string{phaseSync}, true},
		{"an unknown type is a hook of no phase", map[string]string{annotationHook: "Later"}, nil, true},
		{"Helm pre-install and pre-upgrade are PreSync", map[string]string{annotationHelmHook: "pre-install,pre-upgrade"}, []string{phasePreSync}, true},
		{"Helm post-install and post-upgrade are PostSync", map[string]string{annotationHelmHook: "post-install,post-upgrade"}, []string{phasePostSync}, true},
		{"a Helm test hook is not run", map[string]string{annotationHelmHook: "test"}, nil, true},
		{"a Helm crd-install hook is an ordinary resource", map[string]string{annotationHelmHook: "crd-install"}, nil, false},
		{"Argo CD's annotation wins over Helm's", map[string]string{annotationHook: "Sync", annotationHelmHook: "pre-install"}, []string{phaseSync}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			phases, isHook, err := hookPhases(withAnnotations(t, "Job", "migrate", tt.ann))
			if err != nil {
				t.Fatal(err)
			}
			if isHook != tt.isHook || !reflect.DeepEqual(phases, tt.phases) {
				t.Errorf("hookPhases = %v, %v; want %v, %v", phases, isHook, tt.phases, tt.isHook)
			}
		})
	}
	t.Run("PostDelete is refused by name", func(t *testing.T) {
		_, _, err := hookPhases(withAnnotations(t, "Job", "cleanup", map[string]string{annotationHook: "PostDelete"}))
		if err == nil || !strings.Contains(err.Error(), "PostDelete is not supported") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDeletePolicies(t *testing.T) {
	for _, tt := range []struct {
		name string
		ann  map[string]string
		want []string
	}{
		{"BeforeHookCreation when none is set", nil, []string{deleteBeforeHookCreation}},
		{"Argo CD's policies", map[string]string{annotationHookDeletePolicy: "HookSucceeded,HookFailed"}, []string{deleteHookSucceeded, deleteHookFailed}},
		{"Helm's policies mapped", map[string]string{annotationHelmHookDelete: "hook-succeeded,before-hook-creation"}, []string{deleteHookSucceeded, deleteBeforeHookCreation}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := deletePolicies(withAnnotations(t, "Job", "x", tt.ann))
			want := map[string]bool{}
			for _, p := range tt.want {
				want[p] = true
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("deletePolicies = %v, want %v", got, want)
			}
		})
	}
}

func TestSplitHooksAndWaves(t *testing.T) {
	objs := []*unstructured.Unstructured{
		withAnnotations(t, "ConfigMap", "app", nil),
		withAnnotations(t, "Job", "migrate-b", map[string]string{annotationHook: "PreSync"}),
		withAnnotations(t, "Job", "migrate-a", map[string]string{annotationHook: "PreSync"}),
		withAnnotations(t, "Job", "first", map[string]string{annotationHook: "PreSync", annotationSyncWave: "-1"}),
		withAnnotations(t, "Job", "helm-weighted", map[string]string{annotationHelmHook: "pre-upgrade", annotationHelmHookWeight: "-5"}),
		withAnnotations(t, "ServiceAccount", "migrate-sa", map[string]string{annotationHook: "PreSync"}),
		withAnnotations(t, "Pod", "notify-", map[string]string{annotationHook: "PostSync"}),
		withAnnotations(t, "ConfigMap", "skipped", map[string]string{annotationHook: "Skip"}),
	}
	resources, hooks, err := splitHooks(objs)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ordinary objects are resources, Skip hooks are neither", func(t *testing.T) {
		if len(resources) != 1 || resources[0].GetName() != "app" || len(hooks) != 6 {
			t.Errorf("resources %d, hooks %d", len(resources), len(hooks))
		}
	})
	t.Run("a phase's hooks run wave by wave, Helm weight as wave, definitions before the rest, then by name", func(t *testing.T) {
		var got [][]string
		for _, w := range hookWaves(hooks, phasePreSync) {
			var names []string
			for _, h := range w {
				names = append(names, h.obj.GetName())
			}
			got = append(got, names)
		}
		want := [][]string{{"helm-weighted"}, {"first"}, {"migrate-a", "migrate-b", "migrate-sa"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PreSync waves = %v, want %v", got, want)
		}
	})
	t.Run("a generateName hook is named as Argo CD names it", func(t *testing.T) {
		post := hookWaves(hooks, phasePostSync)[0][0]
		if got := hookName(post, "0123456789abcdef", 1700000000); got != "notify-0123456-postsync-1700000000" {
			t.Errorf("hookName = %q", got)
		}
	})
	t.Run("generateName on an ordinary object is refused", func(t *testing.T) {
		_, _, err := splitHooks([]*unstructured.Unstructured{withAnnotations(t, "ConfigMap", "cm-", nil)})
		if err == nil || !strings.Contains(err.Error(), "generateName is only for hooks") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestHookPhaseOf(t *testing.T) {
	job := func(cond string) *unstructured.Unstructured {
		u := withAnnotations(t, "Job", "migrate", nil)
		if cond != "" {
			unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": cond, "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}}, "status", "conditions")
		}
		return u
	}
	pod := func(phase string) *unstructured.Unstructured {
		u := withAnnotations(t, "Pod", "migrate", nil)
		unstructured.SetNestedField(u.Object, phase, "status", "phase")
		return u
	}
	for _, tt := range []struct {
		name string
		live *unstructured.Unstructured
		want string
	}{
		{"a Job without a final condition is running", job(""), hookRunning},
		{"a Complete Job succeeded", job("Complete"), hookSucceeded},
		{"a Failed Job failed", job("Failed"), hookFailed},
		{"a Running Pod is running", pod("Running"), hookRunning},
		{"a Succeeded Pod succeeded", pod("Succeeded"), hookSucceeded},
		{"a Failed Pod failed", pod("Failed"), hookFailed},
		{"a ConfigMap succeeds once it exists", withAnnotations(t, "ConfigMap", "x", nil), hookSucceeded},
		{"a hook deleted before it completed failed", nil, hookFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, msg := hookPhaseOf(tt.live); got != tt.want {
				t.Errorf("hookPhaseOf = %s (%s), want %s", got, msg, tt.want)
			}
		})
	}
}
