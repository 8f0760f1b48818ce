//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

func retryCountsFailedSyncs(t *testing.T, s *server) {
	// The API server refuses a number where a ConfigMap wants a string.
	repo := newRepo(t, map[string]string{
		"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  retries: 3\n",
	})
	retry := "    retry:\n      limit: 2\n      backoff: {duration: 1s, factor: 2, maxDuration: 1m}\n"
	s.kubectlApply(argoApp("retried", repo.url(), "app", automatedFull+"\n"+retry))

	t.Run("a failing sync is retried up to the limit, each retry counted in operationState.retryCount", func(t *testing.T) {
		st := s.waitApp(t, "retried", "failed after its retries", time.Minute, func(a appStatus) bool {
			return a.OperationState.Phase == "Failed"
		})
		if got := s.jsonpath("application", "argocd", "retried", "{.status.operationState.retryCount}"); got != "2" {
			t.Errorf("retryCount = %q, want 2", got)
		}
		if !strings.Contains(st.OperationState.Message, "(retried 2 times)") {
			t.Errorf("message: %s", st.OperationState.Message)
		}
	})
	t.Run("a fix in Git syncs, and the count starts again", func(t *testing.T) {
		rev := repo.commit("quote it", map[string]string{
			"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  retries: \"3\"\n",
		})
		s.waitApp(t, "retried", "synced", time.Minute, synced(rev))
		if got := s.jsonpath("application", "argocd", "retried", "{.status.operationState.retryCount}"); got != "" {
			t.Errorf("retryCount = %q after a sync that succeeded at once", got)
		}
	})
}
