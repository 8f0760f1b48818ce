//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitRepo is a real git repository in a temp dir, committed with the git CLI.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.commit("initial", files)
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@fjord.dev"}, args...)...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content deletes the file) and commits them.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		path := filepath.Join(r.dir, name)
		if content == "" {
			os.Remove(path)
			continue
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.head()
}

func (r *gitRepo) head() string { return r.git("rev-parse", "HEAD") }

func (r *gitRepo) url() string { return "file://" + r.dir }

// argoLayout is the layout of the guide our users follow.
func argoLayout() map[string]string {
	return map[string]string{
		"apps/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: app
`,
		"apps/base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector: {app: app}
  ports:
  - port: 80
`,
		"apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n",
		// No node runs pods under --disable-agent: 0 replicas is what a
		// Deployment can be healthy with here.
		"apps/overlays/production/kustomization.yaml":  "resources:\n- ../../base\npatches:\n- path: patch-replicas.yaml\n",
		"apps/overlays/production/patch-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 0\n",
		"apps/overlays/staging/kustomization.yaml":     "resources:\n- ../../base\nnamePrefix: staging-\n",
	}
}

// argoApp is the manifest from the guide, verbatim but for repoURL (and the
// policy knobs a test changes).
func argoApp(name, repoURL, path string, automated string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: argocd
spec:
  project: default
  source:
    repoURL: '%s'
    targetRevision: HEAD
    path: %s
  destination:
    server: 'https://kubernetes.default.svc'
    namespace: payments
  syncPolicy:
%s
    syncOptions:
      - CreateNamespace=true
      - PruneLast=true
`, name, repoURL, path, automated)
}

const automatedFull = "    automated:\n      prune: true\n      selfHeal: true"

// appStatus is the part of an Application's status the tests read.
type appStatus struct {
	Sync struct {
		Status   string `json:"status"`
		Revision string `json:"revision"`
	} `json:"sync"`
	Health struct {
		Status string `json:"status"`
	} `json:"health"`
	Conditions []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"conditions"`
	OperationState struct {
		Phase   string `json:"phase"`
		Message string `json:"message"`
	} `json:"operationState"`
	Resources []struct {
		Kind            string `json:"kind"`
		Name            string `json:"name"`
		RequiresPruning bool   `json:"requiresPruning"`
	} `json:"resources"`
}

func (a appStatus) condition() string {
	var parts []string
	for _, c := range a.Conditions {
		parts = append(parts, c.Type+": "+c.Message)
	}
	return strings.Join(parts, "; ")
}

func (s *server) app(name string) appStatus {
	s.t.Helper()
	out, err := s.kubectl("get", "application", name, "-n", "argocd", "-o", "jsonpath={.status}")
	var st appStatus
	if err == nil && out != "" {
		json.Unmarshal([]byte(out), &st)
	}
	return st
}

func (s *server) waitApp(t *testing.T, name, what string, timeout time.Duration, ok func(appStatus) bool) appStatus {
	t.Helper()
	var st appStatus
	eventually(t, timeout, "application "+name+" "+what, func() error {
		st = s.app(name)
		if ok(st) {
			return nil
		}
		return fmt.Errorf("status %+v", st)
	})
	return st
}

func startGitOpsServer(t *testing.T) *server {
	t.Helper()
	s := newServer(t, "--gitops.poll-interval", "1s")
	s.start()
	s.waitReady(2 * time.Minute)
	eventually(t, time.Minute, "the Application CRD", func() error {
		_, err := s.kubectl("get", "crd", "applications.argoproj.io")
		return err
	})
	return s
}

func synced(rev string) func(appStatus) bool {
	return func(a appStatus) bool {
		return a.Sync.Status == "Synced" && a.Sync.Revision == rev && a.OperationState.Phase == "Succeeded"
	}
}

func (s *server) jsonpath(kind, ns, name, path string) string {
	out, _ := s.kubectl("get", kind, name, "-n", ns, "-o", "jsonpath="+path)
	return strings.TrimSpace(out)
}

func TestGitOpsGuideApplicationSyncsAndFollowsGit(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, argoLayout())
	s.kubectlApply(argoApp("payment-gateway-oslo", repo.url(), "apps/overlays/production", automatedFull))

	t.Run("the manifest from the guide syncs", func(t *testing.T) {
		st := s.waitApp(t, "payment-gateway-oslo", "synced and healthy", time.Minute, func(a appStatus) bool {
			return synced(repo.head())(a) && a.Health.Status == "Healthy"
		})
		if len(st.Resources) != 2 {
			t.Fatalf("inventory: %+v", st.Resources)
		}
		if got := s.jsonpath("deploy", "payments", "app", "{.spec.replicas}"); got != "0" {
			t.Fatalf("overlay patch not applied: replicas %q", got)
		}
		if mgr := s.jsonpath("deploy", "payments", "app", "{.metadata.managedFields[*].manager}"); !strings.Contains(mgr, "fjord") {
			t.Fatalf("not applied by the fjord field manager: %s", mgr)
		}
		out, code := runFjord(t, nil, "status", "--data-dir", s.dataDir)
		if code != 0 || !strings.Contains(out, "payment-gateway-oslo") || !strings.Contains(out, "Synced") {
			t.Fatalf("fjord status (exit %d):\n%s", code, out)
		}
	})
	t.Run("a commit changing the image is applied", func(t *testing.T) {
		// What `kustomize edit set image app=registry.example/app:$SHA` writes.
		rev := repo.commit("ci: image", map[string]string{"apps/overlays/production/kustomization.yaml": "resources:\n- ../../base\npatches:\n- path: patch-replicas.yaml\nimages:\n- name: app\n  newName: registry.example/app\n  newTag: 3f9c2a1\n"})
		s.waitApp(t, "payment-gateway-oslo", "at the new revision", 30*time.Second, synced(rev))
		if got := s.jsonpath("deploy", "payments", "app", "{.spec.template.spec.containers[0].image}"); got != "registry.example/app:3f9c2a1" {
			t.Fatalf("image %q", got)
		}
	})
	t.Run("kubectl scale is reverted", func(t *testing.T) {
		s.mustKubectl("scale", "deploy/app", "-n", "payments", "--replicas=5")
		begin := time.Now()
		eventually(t, 15*time.Second, "replicas back to 0", func() error {
			if got := s.jsonpath("deploy", "payments", "app", "{.spec.replicas}"); got != "0" {
				return fmt.Errorf("replicas %s", got)
			}
			return nil
		})
		t.Logf("scale reverted in %s", time.Since(begin).Round(10*time.Millisecond))
	})
	t.Run("a deleted object is recreated", func(t *testing.T) {
		s.mustKubectl("delete", "svc", "app", "-n", "payments")
		eventually(t, 15*time.Second, "service recreated", func() error {
			_, err := s.kubectl("get", "svc", "app", "-n", "payments")
			return err
		})
	})
	t.Run("a file removed from Git is pruned, last", func(t *testing.T) {
		rev := repo.commit("drop service", map[string]string{
			"apps/base/service.yaml":       "",
			"apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
		})
		s.waitApp(t, "payment-gateway-oslo", "at the new revision", 30*time.Second, synced(rev))
		eventually(t, 30*time.Second, "service pruned", func() error {
			if _, err := s.kubectl("get", "svc", "app", "-n", "payments"); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		s.mustKubectl("get", "deploy", "app", "-n", "payments")
	})
	t.Run("git revert rolls back", func(t *testing.T) {
		repo.git("revert", "--no-edit", "HEAD")
		s.waitApp(t, "payment-gateway-oslo", "at the reverted revision", 30*time.Second, synced(repo.head()))
		eventually(t, 30*time.Second, "service back", func() error {
			_, err := s.kubectl("get", "svc", "app", "-n", "payments")
			return err
		})
		repo.git("revert", "--no-edit", "HEAD~2") // the image commit
		s.waitApp(t, "payment-gateway-oslo", "at the second revert", 30*time.Second, synced(repo.head()))
		if got := s.jsonpath("deploy", "payments", "app", "{.spec.template.spec.containers[0].image}"); got != "app" {
			t.Fatalf("image after revert %q", got)
		}
	})
	t.Run("a restart after kill -9 converges", func(t *testing.T) {
		rev := repo.commit("more replicas", map[string]string{"apps/overlays/production/patch-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 0\n  minReadySeconds: 5\n"})
		s.kill9()
		s.start()
		s.waitReady(2 * time.Minute)
		s.waitApp(t, "payment-gateway-oslo", "converged after kill -9", time.Minute, synced(rev))
		if got := s.jsonpath("deploy", "payments", "app", "{.spec.minReadySeconds}"); got != "5" {
			t.Fatalf("minReadySeconds %q", got)
		}
	})
}

func TestGitOpsWithoutSelfHealMarksDrift(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, argoLayout())
	s.kubectlApply(argoApp("noheal", repo.url(), "apps/overlays/production", "    automated:\n      prune: true\n      selfHeal: false"))
	s.waitApp(t, "noheal", "synced", time.Minute, synced(repo.head()))
	s.mustKubectl("scale", "deploy/app", "-n", "payments", "--replicas=2")
	// OutOfSync means the engine saw the change and, without selfHeal, left it.
	s.waitApp(t, "noheal", "OutOfSync", 30*time.Second, func(a appStatus) bool { return a.Sync.Status == "OutOfSync" })
	if got := s.jsonpath("deploy", "payments", "app", "{.spec.replicas}"); got != "2" {
		t.Fatalf("selfHeal false reverted the change: replicas %s", got)
	}
}

func TestGitOpsManualSync(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, argoLayout())
	app := strings.Replace(argoApp("manual", repo.url(), "apps/overlays/production", ""), "  syncPolicy:\n\n", "  syncPolicy:\n", 1)
	s.kubectlApply(app)
	s.waitApp(t, "manual", "OutOfSync", time.Minute, func(a appStatus) bool { return a.Sync.Status == "OutOfSync" })
	if _, err := s.kubectl("get", "deploy", "app", "-n", "payments"); err == nil {
		t.Fatal("an Application without automated sync was applied")
	}
	out, code := runFjord(t, nil, "sync", "--data-dir", s.dataDir, "manual")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("fjord sync (exit %d): %s", code, out)
	}
	s.mustKubectl("get", "deploy", "app", "-n", "payments")
	s.waitApp(t, "manual", "Synced", 30*time.Second, func(a appStatus) bool { return a.Sync.Status == "Synced" })
	// The write that ended the operation took it off the Application (there
	// is no status subresource, as in Argo CD), and it does not run again.
	if op := s.jsonpath("application", "argocd", "manual", "{.operation}"); op != "" {
		t.Fatalf("the operation is still requested after it ended: %s", op)
	}
	started := s.jsonpath("application", "argocd", "manual", "{.status.operationState.startedAt}")
	time.Sleep(3 * time.Second)
	if again := s.jsonpath("application", "argocd", "manual", "{.status.operationState.startedAt}"); again != started {
		t.Fatalf("the operation ran again: started at %s, then at %s", started, again)
	}
	// A second request is a new operation.
	time.Sleep(time.Second) // startedAt has second resolution
	if out, code := runFjord(t, nil, "sync", "--data-dir", s.dataDir, "manual"); code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("second fjord sync (exit %d): %s", code, out)
	}
	if again := s.jsonpath("application", "argocd", "manual", "{.status.operationState.startedAt}"); again == started {
		t.Fatalf("a second fjord sync did not run a new operation (started at %s)", again)
	}

	s.mustKubectl("scale", "deploy/app", "-n", "payments", "--replicas=3")
	out, code = runFjord(t, nil, "diff", "--data-dir", s.dataDir, "manual")
	if code != 1 || !strings.Contains(out, "-  replicas: 3") || !strings.Contains(out, "+  replicas: 0") {
		t.Fatalf("fjord diff (exit %d):\n%s", code, out)
	}
}

func TestGitOpsAppOfApps(t *testing.T) {
	s := startGitOpsServer(t)
	apps := newRepo(t, argoLayout())
	child := argoApp("child", apps.url(), "apps/overlays/staging", automatedFull)
	root := newRepo(t, map[string]string{"apps/child.yaml": child})
	s.kubectlApply(argoApp("root", root.url(), "apps", automatedFull))
	s.waitApp(t, "root", "synced", time.Minute, synced(root.head()))
	s.waitApp(t, "child", "synced", time.Minute, synced(apps.head()))
	s.mustKubectl("get", "deploy", "staging-app", "-n", "payments")
}

func TestGitOpsBadInputKeepsTheLastGoodState(t *testing.T) {
	s := startGitOpsServer(t)
	repo := newRepo(t, argoLayout())
	s.kubectlApply(argoApp("guarded", repo.url(), "apps/overlays/production", automatedFull))
	good := repo.head()
	s.waitApp(t, "guarded", "synced", time.Minute, synced(good))

	stillThere := func(t *testing.T) {
		t.Helper()
		s.mustKubectl("get", "deploy", "app", "-n", "payments")
		s.mustKubectl("get", "svc", "app", "-n", "payments")
	}
	failsWith := func(t *testing.T, wants ...string) {
		t.Helper()
		st := s.waitApp(t, "guarded", "reporting the problem", 30*time.Second, func(a appStatus) bool {
			msg := a.condition() + " " + a.OperationState.Message
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					return false
				}
			}
			return true
		})
		t.Logf("reported: %s", st.condition())
		stillThere(t)
	}
	cases := []struct {
		name  string
		files map[string]string
		wants []string
	}{
		{"invalid YAML names the file", map[string]string{"apps/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n spec: [\n"}, []string{"ComparisonError", "apps/base", "service.yaml", "line 4"}},
		{"a broken kustomization is reported", map[string]string{"apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- missing.yaml\n"}, []string{"ComparisonError", "missing.yaml"}},
		{"an unknown kind is reported", map[string]string{"apps/base/extra.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n", "apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n- extra.yaml\n"}, []string{"Widget", "unknown kind"}},
		{"an object in a missing namespace applies nothing", map[string]string{
			"apps/base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: does-not-exist\ndata: {a: b}\n",
			"apps/base/cm2.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: would-be-applied\ndata: {a: b}\n",
			"apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n- cm.yaml\n- cm2.yaml\n",
		}, []string{"SyncError", "does-not-exist", "nothing was applied"}},
		{"an empty render prunes nothing", map[string]string{"apps/overlays/production/kustomization.yaml": "resources: []\n"}, []string{"renders no objects", "refusing to prune"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo.git("reset", "-q", "--hard", good)
			repo.commit(tc.name, tc.files)
			failsWith(t, tc.wants...)
			if tc.name == "an object in a missing namespace applies nothing" {
				if _, err := s.kubectl("get", "cm", "would-be-applied", "-n", "payments"); err == nil {
					t.Fatal("a valid object of a refused sync was applied")
				}
			}
		})
	}
	t.Run("a path that does not exist is reported", func(t *testing.T) {
		repo.git("reset", "-q", "--hard", good)
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"source":{"path":"apps/overlays/nowhere"}}}`)
		failsWith(t, "ComparisonError", "apps/overlays/nowhere")
	})
	t.Run("a revision that does not exist is reported", func(t *testing.T) {
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"source":{"path":"apps/overlays/production","targetRevision":"no-such-branch"}}}`)
		failsWith(t, "ComparisonError", "no-such-branch")
	})
	t.Run("an unreachable git server is reported", func(t *testing.T) {
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"source":{"targetRevision":"HEAD","repoURL":"https://user:s3cr3t-pass@127.0.0.1:1/repo.git"}}}`)
		failsWith(t, "ComparisonError", "127.0.0.1:1")
		out, _ := s.kubectl("get", "application", "guarded", "-n", "argocd", "-o", "yaml")
		if strings.Contains(out, "s3cr3t-pass") && strings.Count(out, "s3cr3t-pass") > strings.Count(out, "repoURL: https://user:s3cr3t-pass") {
			t.Fatalf("the password leaked into the status:\n%s", out)
		}
		if strings.Contains(s.out.String(), "s3cr3t-pass") {
			t.Fatal("the password appears in fjord's log")
		}
	})
	t.Run("a project that does not exist is refused", func(t *testing.T) {
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"project":"team-a","source":{"repoURL":"`+repo.url()+`"}}}`)
		failsWith(t, "InvalidSpecError", `AppProject "team-a" does not exist`)
	})
	t.Run("a remote destination is refused", func(t *testing.T) {
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"project":"default","destination":{"server":"https://10.0.0.1:6443"}}}`)
		failsWith(t, "InvalidSpecError", "only to the local cluster")
	})
	t.Run("the next good commit recovers without a restart", func(t *testing.T) {
		s.mustKubectl("patch", "application", "guarded", "-n", "argocd", "--type=merge", "-p", `{"spec":{"destination":{"server":"https://kubernetes.default.svc"}}}`)
		rev := repo.commit("good again", map[string]string{"apps/base/cm3.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: recovered\ndata: {a: b}\n", "apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n- cm3.yaml\n"})
		s.waitApp(t, "guarded", "recovered", time.Minute, synced(rev))
		s.mustKubectl("get", "cm", "recovered", "-n", "payments")
	})
}
