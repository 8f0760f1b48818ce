package gitops

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func mustUnstructured(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

const guideApp = `
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: payment-gateway-oslo, namespace: argocd}
spec:
  project: default
  source: {repoURL: 'git@gitlab.com:your-org/infra-manifests.git', targetRevision: HEAD, path: apps/overlays/production}
  destination: {server: 'https://kubernetes.default.svc', namespace: payments}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, PruneLast=true]
`

func TestParseApplication(t *testing.T) {
	app, err := ParseApplication(mustUnstructured(t, guideApp))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Validate(); err != nil {
		t.Fatalf("the guide's Application is invalid: %v", err)
	}
	if !app.Automated() || !app.Prune() || !app.SelfHeal() || app.AllowEmpty() {
		t.Fatalf("policy read wrong: %+v", app.Spec.SyncPolicy)
	}
	if !app.SyncOption("CreateNamespace") || !app.SyncOption("prunelast") || app.SyncOption("ServerSideApply") {
		t.Fatal("sync options read wrong")
	}
	if app.Spec.Source.Path != "apps/overlays/production" || app.Spec.Destination.Namespace != "payments" {
		t.Fatalf("spec read wrong: %+v", app.Spec)
	}
}

func TestValidateRefusesWhatFjordCannotSync(t *testing.T) {
	for _, tc := range []struct {
		name, patch, want string
	}{
		{"a remote cluster", `{"destination":{"server":"https://10.0.0.1:6443"}}`, "only to the local cluster"},
		{"a named remote cluster", `{"destination":{"server":"","name":"prod"}}`, "only to the local cluster"},
		{"no source", `{"source":null}`, "repoURL: required"},
		{"a field of one of several sources, by index", `{"sources":[{"repoURL":"x","chart":"nginx"},{"repoURL":"y","ref":"values"}]}`, "spec.sources[0].chart: charts from a Helm repository cannot be fetched"},
		{"two sources with one ref", `{"sources":[{"repoURL":"x","ref":"v"},{"repoURL":"y","ref":"v"}]}`, `spec.sources[1].ref "v": another source has this ref`},
		{"a chart from a Helm repository, by name", `{"source":{"chart":"nginx"}}`, "spec.source.chart: charts from a Helm repository cannot be fetched"},
		{"a kustomize option Fjord does not know, by name", `{"source":{"kustomize":{"components":["../c"]}}}`, "spec.source.kustomize.components: Fjord does not support"},
		{"replicas that are not a number", `{"source":{"kustomize":{"replicas":[{"name":"app","count":"many"}]}}}`, `spec.source.kustomize.replicas: app: count "many" is not a number`},
		{"Jsonnet, by name", `{"source":{"directory":{"jsonnet":{"tlas":[{"name":"a","value":"b"}]}}}}`, "spec.source.directory.jsonnet: Jsonnet is not supported"},
		{"a Helm field Fjord does not know, by its path", `{"source":{"helm":{"fileParameters":[{"name":"a","path":"b"}]}}}`, "spec.source.helm.fileParameters: Fjord does not support this field"},
		{"an ignoreDifferences pointer that is not one, by its index", `{"ignoreDifferences":[{"kind":"Deployment","jsonPointers":["spec/replicas"]}]}`, `spec.ignoreDifferences[0].jsonPointers[0] "spec/replicas": a JSON pointer starts with /`},
		{"a jq path expression that does not parse", `{"ignoreDifferences":[{"kind":"Deployment","jqPathExpressions":[".spec.["]}]}`, `spec.ignoreDifferences[0].jqPathExpressions[0] ".spec.["`},
		{"a sync option Fjord does not act on, by name", `{"syncPolicy":{"syncOptions":["FailOnSharedResource=true"]}}`, `spec.syncPolicy.syncOptions: FailOnSharedResource=true: Fjord does not act on this sync option`},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			u := mustUnstructured(t, guideApp)
			var patch map[string]any
			if err := yaml.Unmarshal([]byte(tc.patch), &patch); err != nil {
				t.Fatal(err)
			}
			spec := u.Object["spec"].(map[string]any)
			for k, v := range patch {
				if m, ok := v.(map[string]any); ok {
					for k2, v2 := range m {
						spec[k].(map[string]any)[k2] = v2
					}
					continue
				}
				spec[k] = v
			}
			app, err := ParseApplication(u)
			if err != nil {
				t.Fatal(err)
			}
			if err := app.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("accepts empty unsupported fields, retry and info", func(t *testing.T) {
		u := mustUnstructured(t, guideApp)
		spec := u.Object["spec"].(map[string]any)
		spec["ignoreDifferences"] = []any{}
		spec["info"] = []any{map[string]any{"name": "owner", "value": "payments"}}
		spec["source"].(map[string]any)["kustomize"] = map[string]any{}
		spec["syncPolicy"].(map[string]any)["retry"] = map[string]any{"limit": int64(5)}
		app, _ := ParseApplication(u)
		if err := app.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a Helm source renders with the Application's name and namespace unless it names a release", func(t *testing.T) {
		u := mustUnstructured(t, guideApp)
		u.Object["spec"].(map[string]any)["source"].(map[string]any)["helm"] = map[string]any{
			"valueFiles": []any{"values-prod.yaml"}, "parameters": []any{map[string]any{"name": "a", "value": "1", "forceString": true}}}
		app, _ := ParseApplication(u)
		if err := app.Validate(); err != nil {
			t.Fatal(err)
		}
		o := app.BuildOptions()
		if !o.HelmSource || o.Helm.ReleaseName != app.Name || o.Helm.Namespace != "payments" || o.Helm.ValueFiles[0] != "values-prod.yaml" || !o.Helm.Parameters[0].ForceString {
			t.Fatalf("got %+v %+v", o, o.Helm)
		}
	})
	t.Run("accepts name: in-cluster", func(t *testing.T) {
		u := mustUnstructured(t, guideApp)
		u.Object["spec"].(map[string]any)["destination"] = map[string]any{"name": "in-cluster", "namespace": "x"}
		app, _ := ParseApplication(u)
		if err := app.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestObjectAnnotations(t *testing.T) {
	cm := func(ann string) *unstructured.Unstructured {
		return mustUnstructured(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: prod\n  annotations: "+ann+"\n")
	}
	t.Run("sync waves sort numerically, unset is 0", func(t *testing.T) {
		waves := byWave([]*unstructured.Unstructured{
			cm(`{argocd.argoproj.io/sync-wave: "10"}`), cm(`{}`), cm(`{argocd.argoproj.io/sync-wave: "-2"}`), cm(`{argocd.argoproj.io/sync-wave: "2"}`),
		})
		var got []int
		for _, w := range waves {
			got = append(got, syncWave(w[0]))
		}
		if len(got) != 4 || got[0] != -2 || got[1] != 0 || got[2] != 2 || got[3] != 10 {
			t.Fatalf("waves %v", got)
		}
	})
	t.Run("Prune=false is read from sync-options", func(t *testing.T) {
		if !hasSyncOption(cm(`{argocd.argoproj.io/sync-options: "Replace=true, Prune=false"}`), "Prune=false") {
			t.Fatal("not found")
		}
		if hasSyncOption(cm(`{}`), "Prune=false") {
			t.Fatal("found on an object without it")
		}
	})
	t.Run("the tracking id names the application", func(t *testing.T) {
		app := &Application{Name: "shop"}
		o := cm(`{}`)
		o.SetAnnotations(map[string]string{annotationTrackingID: trackingID(app, o)})
		if id := o.GetAnnotations()[annotationTrackingID]; id != "shop:/ConfigMap:prod/c" {
			t.Fatalf("tracking id %q", id)
		}
		if trackedBy(o) != "shop" {
			t.Fatalf("trackedBy %q", trackedBy(o))
		}
	})
}

func TestHealth(t *testing.T) {
	ss := "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: s, generation: 2}\nspec: {encryptedData: {a: b}}\n"
	for _, tc := range []struct {
		name string
		doc  string
		want Health
	}{
		{"a ConfigMap is healthy", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", Healthy},
		{"a Deployment without available replicas progresses", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 0}\n", Progressing},
		{"a Deployment with every replica available is healthy", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: 'True'}]}\n", Healthy},
		{"a SealedSecret not yet seen by the controller progresses", ss, Progressing},
		{"an unsealed SealedSecret is healthy", ss + "status: {observedGeneration: 2, conditions: [{type: Synced, status: 'True'}]}\n", Healthy},
		{"a SealedSecret that cannot be unsealed is degraded", ss + "status: {observedGeneration: 2, conditions: [{type: Synced, status: 'False', message: 'no key could decrypt secret'}]}\n", Degraded},
		{"a SealedSecret synced for an older generation progresses", ss + "status: {observedGeneration: 1, conditions: [{type: Synced, status: 'False'}]}\n", Progressing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, msg := healthOf(mustUnstructured(t, tc.doc)); got != tc.want {
				t.Fatalf("got %s (%s), want %s", got, msg, tc.want)
			}
		})
	}
	if got, _ := healthOf(nil); got != Missing {
		t.Fatalf("a missing object is %s", got)
	}
	if worse(Healthy, Degraded) != Degraded || worse(Missing, Progressing) != Missing {
		t.Fatal("aggregation order wrong")
	}
}

func TestRetryAfter(t *testing.T) {
	parse := func(t *testing.T, retry string) *RetryPolicy {
		t.Helper()
		app, err := ParseApplication(mustUnstructured(t, guideApp+"    retry:\n"+retry))
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Validate(); err != nil {
			t.Fatal(err)
		}
		return app.Spec.SyncPolicy.Retry
	}
	t.Run("Argo CD's documented example backs off 5s, 10s, 20s, 40s, 80s and stops after 5", func(t *testing.T) {
		p := parse(t, "      limit: 5\n      backoff: {duration: 5s, factor: 2, maxDuration: 3m}\n")
		var got []time.Duration
		for n := int64(0); ; n++ {
			d, ok := p.retryAfter(n)
			if !ok {
				break
			}
			got = append(got, d)
		}
		want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("backoff = %v, want %v", got, want)
		}
	})
	t.Run("a negative limit retries for ever, capped at maxDuration; plain numbers are seconds", func(t *testing.T) {
		p := parse(t, "      limit: -1\n      backoff: {duration: \"2\", maxDuration: \"60\"}\n")
		if d, ok := p.retryAfter(100); !ok || d != time.Minute {
			t.Errorf("retry 100: %v %v", d, ok)
		}
	})
	t.Run("without a backoff the defaults apply; limit 0 never retries", func(t *testing.T) {
		if d, ok := parse(t, "      limit: 2\n").retryAfter(1); !ok || d != 10*time.Second {
			t.Errorf("retry 1: %v %v", d, ok)
		}
		if _, ok := (&RetryPolicy{}).retryAfter(0); ok {
			t.Error("limit 0 retried")
		}
	})
	t.Run("a backoff that is not a duration is refused by name", func(t *testing.T) {
		app, _ := ParseApplication(mustUnstructured(t, guideApp+"    retry:\n      limit: 1\n      backoff: {duration: soon}\n"))
		if err := app.Validate(); err == nil || !strings.Contains(err.Error(), "spec.syncPolicy.retry.backoff.duration") {
			t.Errorf("Validate = %v", err)
		}
	})
}
