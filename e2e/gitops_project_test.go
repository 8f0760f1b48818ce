//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func appProjects(t *testing.T, s *server) {
	repo := newRepo(t, map[string]string{
		"team/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {v: \"1\"}\n",
	})
	t.Run("the default project exists and allows everything", func(t *testing.T) {
		eventually(t, 30*time.Second, "the default AppProject", func() error {
			if got := s.jsonpath("appproject", "argocd", "default", "{.spec.sourceRepos[0]} {.spec.destinations[0].namespace} {.spec.clusterResourceWhitelist[0].kind}"); got != "* * *" {
				return fmt.Errorf("default project: %q", got)
			}
			return nil
		})
	})
	s.kubectlApply(`apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-a, namespace: argocd}
spec:
  sourceRepos: ['` + repo.url() + `']
  destinations:
  - {server: https://kubernetes.default.svc, namespace: team-a}
  namespaceResourceBlacklist:
  - {group: "", kind: ResourceQuota}
`)
	teamApp := func(name, ns string) string {
		a := strings.Replace(argoApp(name, repo.url(), "team", automatedFull), "project: default", "project: team-a", 1)
		return strings.Replace(a, "namespace: payments", "namespace: "+ns, 1)
	}
	s.kubectlApply(teamApp("team-app", "team-a"))
	s.waitApp(t, "team-app", "synced", time.Minute, synced(repo.head()))

	t.Run("a cluster-scoped kind outside the project's whitelist is refused by object and rule, nothing applied", func(t *testing.T) {
		repo.commit("a ClusterRole and v2", map[string]string{
			"team/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {v: \"2\"}\n",
			"team/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: team-reader\nrules: []\n",
		})
		st := s.waitApp(t, "team-app", "refused", time.Minute, func(a appStatus) bool {
			return strings.Contains(a.condition(), "ComparisonError")
		})
		if want := "ClusterRole.rbac.authorization.k8s.io/team-reader: resource rbac.authorization.k8s.io:ClusterRole is not permitted in project team-a (clusterResourceWhitelist/Blacklist)"; !strings.Contains(st.condition(), want) {
			t.Errorf("conditions: %s", st.condition())
		}
		if got := s.jsonpath("cm", "team-a", "settings", "{.data.v}"); got != "1" {
			t.Errorf("settings v = %q, want 1 kept", got)
		}
	})

	t.Run("a blacklisted namespaced kind and a namespace outside the destinations are refused by name", func(t *testing.T) {
		repo.commit("a quota and an object elsewhere", map[string]string{
			"team/role.yaml":  "",
			"team/quota.yaml": "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\nspec: {hard: {pods: \"4\"}}\n",
			"team/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: payments\n",
		})
		st := s.waitApp(t, "team-app", "refused", time.Minute, func(a appStatus) bool {
			return strings.Contains(a.condition(), "ResourceQuota")
		})
		for _, want := range []string{
			"ResourceQuota/team-a/q: resource :ResourceQuota is not permitted in project team-a (namespaceResourceWhitelist/Blacklist)",
			"ConfigMap/payments/other: namespace payments is not permitted in project 'team-a'",
		} {
			if !strings.Contains(st.condition(), want) {
				t.Errorf("conditions lack %q: %s", want, st.condition())
			}
		}
	})

	t.Run("a destination the project does not permit is an InvalidSpecError", func(t *testing.T) {
		s.kubectlApply(teamApp("team-elsewhere", "payments"))
		st := s.waitApp(t, "team-elsewhere", "refused", time.Minute, func(a appStatus) bool { return len(a.Conditions) > 0 })
		if want := "InvalidSpecError: application destination {https://kubernetes.default.svc payments} is not permitted in project 'team-a'"; !strings.Contains(st.condition(), want) {
			t.Errorf("conditions: %s", st.condition())
		}
	})
}
