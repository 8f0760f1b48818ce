//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func deleteLayout() map[string]string {
	cm := func(name, ann string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  annotations:\n    " + ann + "\n"
	}
	return map[string]string{
		"app/a.yaml":    cm("first", "argocd.argoproj.io/sync-wave: \"0\""),
		"app/b.yaml":    cm("second", "argocd.argoproj.io/sync-wave: \"1\""),
		"app/kept.yaml": cm("kept", "argocd.argoproj.io/sync-options: Delete=false"),
	}
}

func (s *server) exists(kind, ns, name string) bool {
	_, err := s.kubectl("get", kind, name, "-n", ns)
	return err == nil
}

func deletingAnApplication(t *testing.T, s *server) {
	repo := newRepo(t, deleteLayout())
	withFinalizer := strings.Replace(argoApp("doomed", repo.url(), "app", automatedFull),
		"  namespace: argocd\n", "  namespace: argocd\n  finalizers: [resources-finalizer.argocd.argoproj.io]\n", 1)
	s.kubectlApply(withFinalizer)
	s.waitApp(t, "doomed", "synced", time.Minute, synced(repo.head()))

	t.Run("with the resources finalizer its objects are deleted in reverse wave order, then the Application", func(t *testing.T) {
		// The second wave cannot go until the test lets it: the first must
		// wait for it.
		s.mustKubectl("patch", "cm", "second", "-n", "payments", "--type=merge", "-p", `{"metadata":{"finalizers":["e2e.fjord.dev/hold"]}}`)
		s.mustKubectl("delete", "application", "doomed", "-n", "argocd", "--wait=false")
		eventually(t, time.Minute, "the second wave terminating", func() error {
			if ts := s.jsonpath("cm", "payments", "second", "{.metadata.deletionTimestamp}"); ts == "" || strings.Contains(ts, "NotFound") {
				return fmt.Errorf("deletionTimestamp %q", ts)
			}
			return nil
		})
		if !s.exists("cm", "payments", "first") || !s.exists("application", "argocd", "doomed") {
			t.Fatal("the first wave or the Application went before the second wave")
		}
		s.mustKubectl("patch", "cm", "second", "-n", "payments", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
		eventually(t, time.Minute, "the Application gone", func() error {
			if s.exists("application", "argocd", "doomed") {
				return fmt.Errorf("still there")
			}
			return nil
		})
		if s.exists("cm", "payments", "first") || s.exists("cm", "payments", "second") {
			t.Error("objects of the Application stayed")
		}
		if !s.exists("cm", "payments", "kept") {
			t.Error("the object marked Delete=false was deleted")
		}
	})

	t.Run("without the finalizer its objects stay", func(t *testing.T) {
		s.kubectlApply(argoApp("kept-app", repo.url(), "app", automatedFull))
		s.waitApp(t, "kept-app", "synced", time.Minute, synced(repo.head()))
		s.mustKubectl("delete", "application", "kept-app", "-n", "argocd")
		if !s.exists("cm", "payments", "first") || !s.exists("cm", "payments", "second") {
			t.Error("objects went with an Application without the finalizer")
		}
	})
}
