//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// chartLayout is a chart in Git with a values file per environment, as
// Argo CD users keep one.
func chartLayout(replicas string) map[string]string {
	return map[string]string{
		"charts/web/Chart.yaml":        "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.4\"\n",
		"charts/web/values.yaml":       "replicas: 1\ngreeting: hello\n",
		"charts/web/values-prod.yaml":  "replicas: " + replicas + "\ngreeting: hei\n",
		"charts/web/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n  namespace: {{ .Release.Namespace }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  chart: {{ .Chart.Name }}-{{ .Chart.AppVersion }}\n",
		"charts/web/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - name: web
        image: registry.example/web:{{ .Chart.AppVersion }}
`,
	}
}

func helmApp(name, repoURL, helm string) string {
	return strings.Replace(argoApp(name, repoURL, "charts/web", automatedFull), "    path: charts/web\n", "    path: charts/web\n"+helm, 1)
}

func TestGitOpsHelmChartWithValuesFile(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, chartLayout("2"))
	s.kubectlApply(helmApp("web-prod", repo.url(), "    helm:\n      valueFiles: [values-prod.yaml]\n      parameters:\n      - {name: greeting, value: hallo}\n"))
	s.waitApp(t, "web-prod", "synced", 2*time.Minute, synced(repo.head()))
	t.Run("the chart renders with the release named after the Application, in its namespace, with the values file and parameters", func(t *testing.T) {
		if got := s.jsonpath("deploy", "payments", "web-prod", "{.spec.replicas}"); got != "2" {
			t.Errorf("replicas = %q, want 2 from values-prod.yaml", got)
		}
		if got := s.jsonpath("cm", "payments", "web-prod-greeting", "{.data.greeting} {.data.chart}"); got != "hallo web-1.4" {
			t.Errorf("greeting = %q, want the parameter over the values file", got)
		}
	})
	t.Run("a change to the values file in Git is synced", func(t *testing.T) {
		rev := repo.commit("scale to 3", map[string]string{"charts/web/values-prod.yaml": "replicas: 3\ngreeting: hei\n"})
		s.waitApp(t, "web-prod", "synced", 2*time.Minute, synced(rev))
		if got := s.jsonpath("deploy", "payments", "web-prod", "{.spec.replicas}"); got != "3" {
			t.Errorf("replicas = %q, want 3", got)
		}
	})
	t.Run("a missing values file is a ComparisonError naming it, and the last good state stays", func(t *testing.T) {
		s.kubectlApply(helmApp("web-prod", repo.url(), "    helm:\n      valueFiles: [values-nowhere.yaml]\n"))
		st := s.waitApp(t, "web-prod", "failing", time.Minute, func(a appStatus) bool {
			return strings.Contains(a.condition(), "value file values-nowhere.yaml does not exist")
		})
		if !strings.Contains(st.condition(), "ComparisonError") {
			t.Errorf("conditions: %s", st.condition())
		}
		if got := s.jsonpath("deploy", "payments", "web-prod", "{.spec.replicas}"); got != "3" {
			t.Errorf("replicas = %q: the last good state was changed", got)
		}
	})
	t.Run("a field Fjord does not act on is refused by name, nothing applied", func(t *testing.T) {
		app := strings.Replace(argoApp("web-kz", repo.url(), "charts/web", automatedFull), "    path: charts/web\n",
			"    path: charts/web\n    plugin:\n      name: cmp-jsonnet\n", 1)
		s.kubectlApply(app)
		st := s.waitApp(t, "web-kz", "refused", time.Minute, func(a appStatus) bool {
			return strings.Contains(a.condition(), "spec.source.plugin: config management plugins are not supported")
		})
		if !strings.Contains(st.condition(), "InvalidSpecError") {
			t.Errorf("conditions: %s", st.condition())
		}
		if out, err := s.kubectl("get", "deploy", "web-kz", "-n", "payments"); err == nil {
			t.Errorf("the refused Application was applied: %s", out)
		}
	})
}

func TestGitOpsKustomizeOptionsOnTheApplication(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, argoLayout())
	app := strings.Replace(argoApp("oslo", repo.url(), "apps/overlays/staging", automatedFull), "    path: apps/overlays/staging\n",
		"    path: apps/overlays/staging\n    kustomize:\n      namePrefix: oslo-\n      commonLabels: {region: oslo}\n      images: [app=registry.example/app:9.9]\n      replicas: [{name: app, count: 2}]\n", 1)
	s.kubectlApply(app)
	s.waitApp(t, "oslo", "synced", 2*time.Minute, synced(repo.head()))
	got := s.jsonpath("deploy", "payments", "oslo-app", "{.spec.replicas} {.metadata.labels.region} {.spec.template.spec.containers[0].image}")
	if got != "2 oslo registry.example/app:9.9" {
		t.Errorf("deployment oslo-app: %q, want the prefix, label, image and replicas of spec.source.kustomize", got)
	}
}

func multipleSourcesWithAValuesRef(t *testing.T, s *server) {
	charts := newRepo(t, chartLayout("2"))
	values := newRepo(t, map[string]string{"envs/prod/values.yaml": "replicas: 4\ngreeting: moin\n"})
	app := strings.Replace(argoApp("web-multi", charts.url(), "charts/web", automatedFull), `  source:
    repoURL: '`+charts.url()+`'
    targetRevision: HEAD
    path: charts/web
`, `  sources:
  - repoURL: '`+charts.url()+`'
    targetRevision: HEAD
    path: charts/web
    helm:
      valueFiles: [$values/envs/prod/values.yaml]
  - repoURL: '`+values.url()+`'
    targetRevision: HEAD
    ref: values
`, 1)
	s.kubectlApply(app)
	s.waitApp(t, "web-multi", "synced", 2*time.Minute, synced(charts.head()+","+values.head()))
	t.Run("the chart renders with the values file of the ref source", func(t *testing.T) {
		if got := s.jsonpath("deploy", "payments", "web-multi", "{.spec.replicas}"); got != "4" {
			t.Errorf("replicas = %q, want 4 from the values repository", got)
		}
		if got := s.jsonpath("cm", "payments", "web-multi-greeting", "{.data.greeting}"); got != "moin" {
			t.Errorf("greeting = %q", got)
		}
		if got := s.jsonpath("application", "argocd", "web-multi", "{.status.sync.revisions[*]}"); got != charts.head()+" "+values.head() {
			t.Errorf("status.sync.revisions = %q", got)
		}
	})
	t.Run("a commit to the values repository is synced", func(t *testing.T) {
		rev := values.commit("scale", map[string]string{"envs/prod/values.yaml": "replicas: 5\ngreeting: moin\n"})
		s.waitApp(t, "web-multi", "synced", 2*time.Minute, synced(charts.head()+","+rev))
		if got := s.jsonpath("deploy", "payments", "web-multi", "{.spec.replicas}"); got != "5" {
			t.Errorf("replicas = %q, want 5", got)
		}
	})
}
