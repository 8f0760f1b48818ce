//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func scaledLayout(version string, extra bool) map[string]string {
	files := map[string]string{
		"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        env: [{name: VERSION, value: "` + version + `"}]
`,
		"app/replaced.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: replaced
  annotations:
    argocd.argoproj.io/sync-options: Replace=true
data: {version: "` + version + `"}
`,
		"app/extra.yaml": "",
	}
	if extra {
		files["app/extra.yaml"] = `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  annotations:
    argocd.argoproj.io/sync-options: Prune=false
    argocd.argoproj.io/compare-options: IgnoreExtraneous
`
	}
	return files
}

func ignoreDifferencesAndSyncOptions(t *testing.T, s *server) {
	repo := newRepo(t, scaledLayout("v1", true))
	// Argo CD's documented example: an HPA owns replicas.
	app := strings.Replace(argoApp("scaled", repo.url(), "app", automatedFull), "  syncPolicy:\n",
		"  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers: [/spec/replicas]\n  syncPolicy:\n", 1)
	app = strings.Replace(app, "      - PruneLast=true\n", "      - PruneLast=true\n      - RespectIgnoreDifferences=true\n", 1)
	s.kubectlApply(app)
	s.waitApp(t, "scaled", "synced", time.Minute, synced(repo.head()))

	t.Run("replicas an HPA set are left alone by selfHeal and by the next sync, and the app stays Synced", func(t *testing.T) {
		// Stand-in for the HPA: it writes replicas through the scale
		// subresource, as kubectl scale does.
		s.mustKubectl("scale", "deploy", "web", "-n", "payments", "--replicas=5")
		rev := repo.commit("v2", scaledLayout("v2", true))
		s.waitApp(t, "scaled", "synced", time.Minute, synced(rev))
		if got := s.jsonpath("deploy", "payments", "web", "{.spec.replicas} {.spec.template.spec.containers[0].env[0].value}"); got != "5 v2" {
			t.Errorf("replicas and VERSION = %q, want 5 v2", got)
		}
		// A drift check of the scale (the watch saw it) finds nothing.
		eventually(t, 30*time.Second, "the app Synced after the scale", func() error {
			if st := s.app("scaled"); st.Sync.Status != "Synced" {
				return fmt.Errorf("sync status %s", st.Sync.Status)
			}
			return nil
		})
	})

	t.Run("Replace=true replaces the object instead of applying it", func(t *testing.T) {
		if got := s.jsonpath("cm", "payments", "replaced", "{.data.version} {.metadata.managedFields[*].operation}"); got != "v2 Update" {
			t.Errorf("replaced ConfigMap: %q, want v2 written by Update only", got)
		}
	})

	t.Run("an object that left Git marked IgnoreExtraneous does not make the app OutOfSync", func(t *testing.T) {
		rev := repo.commit("drop extra", scaledLayout("v2", false))
		st := s.waitApp(t, "scaled", "synced", time.Minute, synced(rev))
		kept := false
		for _, r := range st.Resources {
			kept = kept || (r.Name == "extra" && r.RequiresPruning)
		}
		if !kept {
			t.Errorf("extra is not listed as requiring pruning: %+v", st.Resources)
		}
	})
}

func skipDryRunOnMissingResource(t *testing.T, s *server) {
	repo := newRepo(t, map[string]string{
		"app/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
	})
	app := strings.Replace(argoApp("widgets", repo.url(), "app", automatedFull+"\n    retry:\n      limit: 20\n      backoff: {duration: 1s, factor: 1}\n"),
		"      - PruneLast=true\n", "      - PruneLast=true\n      - SkipDryRunOnMissingResource=true\n", 1)
	s.kubectlApply(app)
	t.Run("an object whose CRD is not there yet is not refused by the dry run, and syncs once the CRD comes", func(t *testing.T) {
		s.waitApp(t, "widgets", "retrying", time.Minute, func(a appStatus) bool {
			return a.OperationState.Phase == "Running" && strings.Contains(a.OperationState.Message, "Retrying attempt")
		})
		s.kubectlApply(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`)
		s.waitApp(t, "widgets", "synced", time.Minute, synced(repo.head()))
		if got := s.jsonpath("widget", "payments", "w1", "{.spec.size}"); got != "3" {
			t.Errorf("widget size = %q", got)
		}
	})
}
