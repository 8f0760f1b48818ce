//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hookResult is one entry of operationState.syncResult.resources.
type hookResult struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	SyncPhase string `json:"syncPhase"`
	HookType  string `json:"hookType"`
	HookPhase string `json:"hookPhase"`
}

func (s *server) syncResults(app string) []hookResult {
	s.t.Helper()
	out := s.jsonpath("application", "argocd", app, "{.status.operationState.syncResult.resources}")
	var rs []hookResult
	json.Unmarshal([]byte(out), &rs)
	return rs
}

// result finds the result of the object whose name starts with name.
func result(rs []hookResult, kind, name string) (hookResult, bool) {
	for _, r := range rs {
		if r.Kind == kind && strings.HasPrefix(r.Name, name) {
			return r, true
		}
	}
	return hookResult{}, false
}

// configMapsNamed lists the ConfigMaps of ns whose names start with prefix.
func (s *server) configMapsNamed(ns, prefix string) []string {
	var out []string
	names, _ := s.kubectl("get", "cm", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}")
	for _, n := range strings.Fields(names) {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// hookLayout is an app with a PreSync Pod, a PostSync and a SyncFail
// ConfigMap with generateName, and a Skip hook. Without a node the Pod
// never runs: the test stands in for the kubelet and sets its phase
// through the status subresource.
func hookLayout(version string) map[string]string {
	return map[string]string{
		"hooks/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  version: " + version + "\n",
		"hooks/migrate.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
    migration: "` + version + `"
spec:
  restartPolicy: Never
  containers:
  - name: migrate
    image: registry.example/migrate:1
`,
		"hooks/notify.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  generateName: notify-
  annotations:
    argocd.argoproj.io/hook: PostSync
data:
  synced: "` + version + `"
`,
		"hooks/on-fail.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  generateName: sync-failed-
  annotations:
    argocd.argoproj.io/hook: SyncFail
`,
		"hooks/skipped.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
  annotations:
    argocd.argoproj.io/hook: Skip
`,
	}
}

func hooksRunInTheirPhases(t *testing.T, s *server) {
	repo := newRepo(t, hookLayout("v1"))
	s.kubectlApply(argoApp("hooks", repo.url(), "hooks", automatedFull))

	markPod := func(t *testing.T, uid, phase string) {
		t.Helper()
		s.mustKubectl("patch", "pod", "migrate", "-n", "payments", "--subresource=status", "--type=merge",
			"-p", fmt.Sprintf(`{"metadata":{"uid":%q},"status":{"phase":%q}}`, uid, phase))
	}
	waitPod := func(t *testing.T, notUID string) string {
		t.Helper()
		var uid string
		eventually(t, time.Minute, "the PreSync hook pod", func() error {
			out, err := s.kubectl("get", "pod", "migrate", "-n", "payments", "-o", "jsonpath={.metadata.uid}")
			uid = strings.TrimSpace(out)
			if err != nil || uid == "" || uid == notUID {
				return fmt.Errorf("pod uid %q", uid)
			}
			return nil
		})
		return uid
	}

	t.Run("the sync waits for the PreSync hook before applying anything of the Sync phase", func(t *testing.T) {
		uid := waitPod(t, "")
		st := s.waitApp(t, "hooks", "waiting for the hook", time.Minute, func(a appStatus) bool {
			return a.OperationState.Phase == "Running" && strings.Contains(a.OperationState.Message, "waiting for completion of hook Pod/payments/migrate")
		})
		if out, err := s.kubectl("get", "cm", "app-config", "-n", "payments"); err == nil {
			t.Fatalf("app-config exists while the PreSync hook runs (%s): %s", st.OperationState.Message, out)
		}
		// Stand-in for the kubelet: the pod completed.
		markPod(t, uid, "Succeeded")
		s.waitApp(t, "hooks", "synced", time.Minute, synced(repo.head()))
		if got := s.jsonpath("cm", "payments", "app-config", "{.data.version}"); got != "v1" {
			t.Errorf("app-config version = %q", got)
		}
	})

	t.Run("PostSync runs after the sync, generateName hooks are named as Argo CD names them, Skip is not applied", func(t *testing.T) {
		notify := s.configMapsNamed("payments", "notify-")
		if len(notify) != 1 || !strings.HasPrefix(notify[0], "notify-"+repo.head()[:7]+"-postsync-") {
			t.Errorf("PostSync ConfigMaps: %v", notify)
		}
		if failed := s.configMapsNamed("payments", "sync-failed-"); len(failed) != 0 {
			t.Errorf("SyncFail hook ran on a successful sync: %v", failed)
		}
		if out, err := s.kubectl("get", "cm", "skipped", "-n", "payments"); err == nil {
			t.Errorf("the Skip hook was applied: %s", out)
		}
	})

	t.Run("hooks are reported with hookType and hookPhase, and are not in the inventory", func(t *testing.T) {
		rs := s.syncResults("hooks")
		pre, ok := result(rs, "Pod", "migrate")
		if !ok || pre.HookType != "PreSync" || pre.HookPhase != "Succeeded" || pre.SyncPhase != "PreSync" || pre.Status != "Synced" {
			t.Errorf("PreSync result %+v in %+v", pre, rs)
		}
		post, ok := result(rs, "ConfigMap", "notify-")
		if !ok || post.HookType != "PostSync" || post.HookPhase != "Succeeded" || post.SyncPhase != "PostSync" {
			t.Errorf("PostSync result %+v in %+v", post, rs)
		}
		if cm, ok := result(rs, "ConfigMap", "app-config"); !ok || cm.SyncPhase != "Sync" || cm.HookPhase != "" {
			t.Errorf("resource result %+v", cm)
		}
		for _, r := range s.app("hooks").Resources {
			if r.Name != "app-config" {
				t.Errorf("status.resources holds %s/%s", r.Kind, r.Name)
			}
		}
	})

	t.Run("a failed PreSync hook stops the sync: nothing of the Sync phase is applied, SyncFail runs", func(t *testing.T) {
		old := s.jsonpath("pod", "payments", "migrate", "{.metadata.uid}")
		rev := repo.commit("v2", hookLayout("v2"))
		// BeforeHookCreation: the pod of the last sync is replaced.
		uid := waitPod(t, old)
		markPod(t, uid, "Failed")
		st := s.waitApp(t, "hooks", "failed", time.Minute, func(a appStatus) bool {
			return a.OperationState.Phase == "Failed" && strings.Contains(a.OperationState.Message, rev[:10])
		})
		if !strings.Contains(st.OperationState.Message, "PreSync") || !strings.Contains(st.OperationState.Message, "nothing of the Sync phase was applied") {
			t.Errorf("operation message: %s", st.OperationState.Message)
		}
		if got := s.jsonpath("cm", "payments", "app-config", "{.data.version}"); got != "v1" {
			t.Errorf("app-config version = %q, want v1 kept", got)
		}
		if failed := s.configMapsNamed("payments", "sync-failed-"); len(failed) != 1 {
			t.Errorf("SyncFail ConfigMaps: %v", failed)
		}
		if pre, _ := result(s.syncResults("hooks"), "Pod", "migrate"); pre.HookPhase != "Failed" {
			t.Errorf("PreSync result %+v", pre)
		}
	})
}

// TestGitOpsArgoCDSyncMachinery runs the scenarios of Argo CD's sync
// machinery (issue 11) on one server, to keep the suite's time down: each
// uses Applications and objects of its own.
func TestGitOpsArgoCDSyncMachinery(t *testing.T) {
	s := startGitOpsServer(t)
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *server)
	}{
		{"hooks run in their phases", hooksRunInTheirPhases},
		{"retries are counted", retryCountsFailedSyncs},
		{"ignoreDifferences and sync options", ignoreDifferencesAndSyncOptions},
		{"SkipDryRunOnMissingResource", skipDryRunOnMissingResource},
		{"deleting an Application", deletingAnApplication},
		{"AppProjects", appProjects},
		{"multiple sources with a values ref", multipleSourcesWithAValuesRef},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}
}

// startNodeGitOpsServer starts a server with the node and the busybox
// image, and waits for the node to be Ready.
func startNodeGitOpsServer(t *testing.T, archive string) *server {
	t.Helper()
	restoreSysctls(t)
	s := newNodeServer(t)
	t.Cleanup(s.killall)
	images := filepath.Join(s.dataDir, "agent", "images")
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "busybox.tar"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s.args = append(s.args, "--gitops.poll-interval", "1s", "--gitops.wave-timeout", "90s")
	s.start()
	s.waitReady(3 * time.Minute)
	eventually(t, 2*time.Minute, "the node Ready", func() error {
		if out := s.nodeJSONPath(`{.items[0].status.conditions[?(@.type=="Ready")].status}`); out != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
	eventually(t, time.Minute, "the Application CRD", func() error {
		_, err := s.kubectl("get", "crd", "applications.argoproj.io")
		return err
	})
	return s
}

// migrationLayout is Argo CD's documented schema migration: a PreSync Job
// (exit code exit), a Deployment, and a PostSync Job that checks it.
func migrationLayout(image, exit, version string) map[string]string {
	job := func(name, hook, cmd string) string {
		return `apiVersion: batch/v1
kind: Job
metadata:
  ` + name + `
  annotations:
    argocd.argoproj.io/hook: ` + hook + `
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: run
        image: ` + image + `
        command: ["sh", "-c", "` + cmd + `"]
`
	}
	return map[string]string{
		"app/migrate.yaml":    job("name: migrate", "PreSync", "echo migrating to "+version+"; exit "+exit),
		"app/smoke-test.yaml": job("generateName: smoke-", "PostSync", "echo smoke test"),
		"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ` + image + `
        command: ["sleep", "100000"]
        env: [{name: VERSION, value: "` + version + `"}]
`,
	}
}

func TestNodeRunsSyncHooks(t *testing.T) {
	archive, image := testImage(t)
	s := startNodeGitOpsServer(t, archive)
	repo := newRepo(t, migrationLayout(image, "0", "v1"))
	s.kubectlApply(argoApp("shop", repo.url(), "app", automatedFull))

	t.Run("a PreSync migration Job that succeeds, then the app syncs, then PostSync runs once it is healthy", func(t *testing.T) {
		st := s.waitApp(t, "shop", "synced", 4*time.Minute, func(a appStatus) bool {
			return synced(repo.head())(a) || a.OperationState.Phase == "Failed"
		})
		if st.OperationState.Phase != "Succeeded" {
			t.Fatalf("operation: %s %s", st.OperationState.Phase, st.OperationState.Message)
		}
		if got := s.jsonpath("job", "payments", "migrate", "{.status.succeeded}"); got != "1" {
			t.Errorf("migrate job succeeded = %q", got)
		}
		available := s.jsonpath("deploy", "payments", "web", `{.status.conditions[?(@.type=="Available")].lastTransitionTime}`)
		smoke, _ := s.kubectl("get", "job", "-n", "payments", "-o", `jsonpath={.items[?(@.metadata.annotations.argocd\.argoproj\.io/hook=="PostSync")].metadata.creationTimestamp}`)
		if available == "" || smoke == "" || smoke < available {
			t.Errorf("PostSync job created at %q, the Deployment Available at %q", smoke, available)
		}
		rs := s.syncResults("shop")
		if r, _ := result(rs, "Job", "smoke-"); r.HookPhase != "Succeeded" || r.HookType != "PostSync" {
			t.Errorf("PostSync result %+v", r)
		}
	})

	t.Run("a PreSync Job that fails stops the sync and nothing else is applied", func(t *testing.T) {
		rev := repo.commit("v2 with a failing migration", migrationLayout(image, "3", "v2"))
		st := s.waitApp(t, "shop", "failed", 3*time.Minute, func(a appStatus) bool {
			return a.OperationState.Phase == "Failed" && strings.Contains(a.OperationState.Message, rev[:10])
		})
		if !strings.Contains(st.OperationState.Message, "Job.batch/payments/migrate") {
			t.Errorf("operation message: %s", st.OperationState.Message)
		}
		if got := s.jsonpath("deploy", "payments", "web", "{.spec.template.spec.containers[0].env[0].value}"); got != "v1" {
			t.Errorf("web VERSION = %q, want v1 kept", got)
		}
	})
}
