//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func configMap(name string, annotations ...string) string {
	meta := "metadata:\n  name: " + name + "\n"
	if len(annotations) > 0 {
		meta += "  annotations:\n"
		for _, a := range annotations {
			meta += "    " + a + "\n"
		}
	}
	return "apiVersion: v1\nkind: ConfigMap\n" + meta + "data: {k: v}\n"
}

// applied is synced without the Synced status: what left Git with
// Prune=false keeps an Application OutOfSync.
func applied(rev string) func(appStatus) bool {
	return func(a appStatus) bool {
		return a.Sync.Revision == rev && a.OperationState.Phase == "Succeeded" && a.condition() == ""
	}
}

func TestGitOpsPruneRulesWavesEventsAndMetrics(t *testing.T) {
	s := startGitOpsServer(t)
	files := map[string]string{}
	for i := range 6 {
		files[fmt.Sprintf("cms/cm%d.yaml", i)] = configMap(fmt.Sprintf("cm%d", i))
	}
	files["cms/keep.yaml"] = configMap("keep", `argocd.argoproj.io/sync-options: Prune=false`)
	files["cms/late.yaml"] = configMap("late", `argocd.argoproj.io/sync-wave: "5"`)
	files["cms/early.yaml"] = configMap("early", `argocd.argoproj.io/sync-wave: "-1"`)
	repo := newRepo(t, files)
	s.kubectlApply(argoApp("rules", repo.url(), "cms", automatedFull))
	s.waitApp(t, "rules", "synced", time.Minute, synced(repo.head()))

	t.Run("sync waves apply in order", func(t *testing.T) {
		early := s.jsonpath("cm", "payments", "early", "{.metadata.creationTimestamp}")
		late := s.jsonpath("cm", "payments", "late", "{.metadata.creationTimestamp}")
		mid := s.jsonpath("cm", "payments", "cm0", "{.metadata.creationTimestamp}")
		if !(early <= mid && mid <= late) {
			t.Fatalf("creation order early %s, wave 0 %s, late %s", early, mid, late)
		}
	})
	t.Run("Prune=false keeps an object that left Git", func(t *testing.T) {
		rev := repo.commit("drop keep and cm5", map[string]string{"cms/keep.yaml": "", "cms/cm5.yaml": ""})
		s.waitApp(t, "rules", "synced", 30*time.Second, func(a appStatus) bool { return a.Sync.Revision == rev && a.OperationState.Phase == "Succeeded" })
		eventually(t, 30*time.Second, "cm5 pruned", func() error {
			if _, err := s.kubectl("get", "cm", "cm5", "-n", "payments"); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		s.mustKubectl("get", "cm", "keep", "-n", "payments")
	})
	t.Run("pruning most objects at once is refused", func(t *testing.T) {
		rev := repo.commit("drop most", map[string]string{"cms/cm0.yaml": "", "cms/cm1.yaml": "", "cms/cm2.yaml": "", "cms/cm3.yaml": "", "cms/late.yaml": ""})
		st := s.waitApp(t, "rules", "refusing", 30*time.Second, func(a appStatus) bool {
			return strings.Contains(a.OperationState.Message, "refusing") && strings.Contains(a.OperationState.Message, rev[:10])
		})
		t.Logf("reported: %s", st.OperationState.Message)
		s.mustKubectl("get", "cm", "cm0", "-n", "payments")
		repo.git("revert", "--no-edit", "HEAD")
		// OutOfSync stays: "keep" left Git but Prune=false keeps it (as Argo CD shows it).
		s.waitApp(t, "rules", "synced again", 30*time.Second, applied(repo.head()))
	})
	t.Run("a force-push is followed", func(t *testing.T) {
		repo.git("reset", "-q", "--hard", "HEAD~2")
		rev := repo.commit("rewritten history", map[string]string{"cms/forced.yaml": configMap("forced")})
		s.waitApp(t, "rules", "at the force-pushed commit", 30*time.Second, applied(rev))
		s.mustKubectl("get", "cm", "forced", "-n", "payments")
	})
	t.Run("automated.prune false only marks what left Git", func(t *testing.T) {
		s.mustKubectl("patch", "application", "rules", "-n", "argocd", "--type=merge", "-p", `{"spec":{"syncPolicy":{"automated":{"prune":false,"selfHeal":true}}}}`)
		rev := repo.commit("drop cm4", map[string]string{"cms/cm4.yaml": ""})
		st := s.waitApp(t, "rules", "marking cm4", 30*time.Second, func(a appStatus) bool {
			if a.Sync.Revision != rev {
				return false
			}
			for _, r := range a.Resources {
				if r.Name == "cm4" && r.RequiresPruning {
					return true
				}
			}
			return false
		})
		if st.Sync.Status != "OutOfSync" {
			t.Fatalf("sync status %s, want OutOfSync", st.Sync.Status)
		}
		s.mustKubectl("get", "cm", "cm4", "-n", "payments")
	})
	t.Run("syncs are recorded as events and metrics", func(t *testing.T) {
		events := s.mustKubectl("get", "events", "-n", "argocd", "--field-selector", "involvedObject.name=rules")
		for _, reason := range []string{"Synced", "Pruned", "SyncFailed"} {
			if !strings.Contains(events, reason) {
				t.Errorf("no %s event:\n%s", reason, events)
			}
		}
		metrics := s.mustKubectl("get", "--raw", "/metrics")
		for _, m := range []string{`fjord_gitops_syncs_total{application="rules",result="succeeded"}`, "fjord_gitops_sync_duration_seconds_bucket", "fjord_gitops_last_synced_revision_info"} {
			if !strings.Contains(metrics, m) {
				t.Errorf("metric %s missing", m)
			}
		}
	})
}
