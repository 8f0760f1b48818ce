package verify

import (
	"encoding/xml"
	corev1 "k8s.io/api/core/v1"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRepoRoot(t *testing.T) {
	t.Run("a directory inside a work tree renders relative to its top", func(t *testing.T) {
		top := t.TempDir()
		os.Mkdir(filepath.Join(top, ".git"), 0o755)
		dir := filepath.Join(top, "apps", "overlays", "production")
		os.MkdirAll(dir, 0o755)
		root, rel, err := repoRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		real, _ := filepath.EvalSymlinks(top)
		if root != real || rel != "apps/overlays/production" {
			t.Fatalf("got %s %s, want %s apps/overlays/production", root, rel, real)
		}
	})
	t.Run("a directory outside any work tree is its own root", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := os.Stat("/.git"); err == nil {
			t.Skip("/ is a work tree here")
		}
		root, rel, err := repoRoot(dir)
		real, _ := filepath.EvalSymlinks(dir)
		if err != nil || root != real || rel != "." {
			t.Fatalf("got %s %s %v", root, rel, err)
		}
	})
	t.Run("a file is refused", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "x.yaml")
		write(t, f, "a: b\n")
		if _, _, err := repoRoot(f); err == nil {
			t.Fatal("no error")
		}
	})
}

const guideApp = `apiVersion: argoproj.io/v1alpha1
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

func TestReadApplications(t *testing.T) {
	dir := t.TempDir()
	t.Run("the guide's Application is a source with its path and destination", func(t *testing.T) {
		f := filepath.Join(dir, "guide.yaml")
		write(t, f, guideApp)
		srcs, err := readApplications(f)
		if err != nil {
			t.Fatal(err)
		}
		s := srcs[0]
		if s.name != "payment-gateway-oslo" || s.path != "apps/overlays/production" || s.namespace() != "payments" || !s.createNamespace() || len(s.notes) != 0 {
			t.Fatalf("got %+v", s)
		}
	})
	t.Run("several documents are several sources, and a revision other than HEAD is noted", func(t *testing.T) {
		f := filepath.Join(dir, "two.yaml")
		second := strings.ReplaceAll(guideApp, "payment-gateway-oslo", "staging")
		second = strings.Replace(second, "targetRevision: HEAD", "targetRevision: v1.2", 1)
		write(t, f, guideApp+"---\n"+second)
		srcs, err := readApplications(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(srcs) != 2 || len(srcs[1].notes) != 1 {
			t.Fatalf("got %d sources, notes %q", len(srcs), srcs[len(srcs)-1].notes)
		}
	})
	for _, tc := range []struct{ name, doc, want string }{
		{"another kind is refused", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "not an argoproj.io Application"},
		{"another cluster is refused", strings.Replace(guideApp, "https://kubernetes.default.svc", "https://elsewhere:6443", 1), "only to the local cluster"},
		{"a chart from a Helm repository is refused", strings.Replace(guideApp, "path: apps/overlays/production", "chart: nginx", 1), "spec.source.chart: charts from a Helm repository cannot be fetched"},
		{"an option Fjord does not act on is refused by name, not ignored", strings.Replace(guideApp, "targetRevision: HEAD", "targetRevision: HEAD, kustomize: {components: [../c]}", 1), "spec.source.kustomize.components"},
		{"an empty file is refused", "", "no Application"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strconv.Itoa(len(tc.name))+".yaml")
			write(t, f, tc.doc)
			if _, err := readApplications(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON as the API machinery decodes it: integers stay int64.
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(j, &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestJudge(t *testing.T) {
	old := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name string
		live string
		want verdict
	}{
		{"a ConfigMap is healthy at once", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", healthy},
		{"a Deployment its controller has not seen is pending",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 1}\n", pending},
		{"a Deployment waiting for pods is not judged: it needs a node",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, replicas: 1, unavailableReplicas: 1}\n", unjudged},
		{"a Deployment of zero replicas is waited for: it needs no node",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 0}\nstatus:\n  observedGeneration: 1\n  conditions: [{type: Progressing, status: 'True', reason: NewReplicaSetCreated}]\n", pending},
		{"a Deployment of zero replicas is healthy",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 0}\nstatus:\n  observedGeneration: 1\n  conditions: [{type: Available, status: 'True'}, {type: Progressing, status: 'True', reason: NewReplicaSetAvailable}]\n", healthy},
		{"a Pod no node can take is not judged, however long it waited",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: a, creationTimestamp: '" + old + "'}\nstatus:\n  phase: Pending\n  conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable}]\n", unjudged},
		{"a custom resource that is not Ready yet is pending",
			"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: a}\nstatus:\n  conditions: [{type: Ready, status: 'False', reason: Waiting}]\n", pending},
		{"a stalled custom resource is degraded",
			"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: a}\nstatus:\n  conditions: [{type: Stalled, status: 'True', reason: Broken}]\n", degraded},
		{"a SealedSecret that unsealed is healthy",
			"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a, generation: 1}\nstatus:\n  observedGeneration: 1\n  conditions: [{type: Synced, status: 'True'}]\n", healthy},
		{"a SealedSecret the keys cannot open is unsealable",
			"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a, generation: 1}\nstatus:\n  observedGeneration: 1\n  conditions: [{type: Synced, status: 'False', message: no key could decrypt secret}]\n", unsealable},
		{"a SealedSecret not yet looked at is pending",
			"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a, generation: 2}\nstatus:\n  observedGeneration: 1\n  conditions: [{type: Synced, status: 'True'}]\n", pending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, msg := judge(obj(t, tc.live), false); got != tc.want {
				t.Fatalf("got %v (%s), want %v", got, msg, tc.want)
			}
		})
	}
	t.Run("an object not found is pending", func(t *testing.T) {
		if v, _ := judge(nil, false); v != pending {
			t.Fatal(v)
		}
	})
	t.Run("with a node, a Deployment waiting for pods is pending until they run", func(t *testing.T) {
		d := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, replicas: 1, unavailableReplicas: 1}\n"
		if v, msg := judge(obj(t, d), true); v != pending {
			t.Fatalf("got %v (%s), want pending", v, msg)
		}
	})
	t.Run("with a node, an unschedulable Pod is degraded, not excused", func(t *testing.T) {
		p := "apiVersion: v1\nkind: Pod\nmetadata: {name: a, creationTimestamp: '" + old + "'}\nstatus:\n  phase: Pending\n  conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable}]\n"
		if v, msg := judge(obj(t, p), true); v != degraded {
			t.Fatalf("got %v (%s), want degraded", v, msg)
		}
	})
}

func TestPodWhy(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"a container whose image is missing names the reason and message", corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not in any archive"}}}}}},
			"web ErrImagePull: not in any archive"},
		{"a container being created is no trouble", corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}, ""},
		{"an init container's crash loop counts", corev1.Pod{Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{
			{Name: "migrate", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}},
			"migrate CrashLoopBackOff"},
		{"an unscheduled pod says why", corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/1 nodes are available"}}}},
			"not scheduled: 0/1 nodes are available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podWhy(&tc.pod); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func sampleReport() *Report {
	return &Report{Seconds: 6.25, Cases: []*Case{
		{Source: "prod", Kind: "Namespace", Name: "payments", Result: Healthy, Message: "created"},
		{Source: "prod", Kind: "Deployment", Namespace: "payments", Name: "app", Result: Applied, Message: "created; health not judged"},
		{Source: "prod", Group: "bitnami.com", Kind: "SealedSecret", Namespace: "payments", Name: "db", Result: Skipped, Message: "unsealing not checked"},
		{Source: "staging", Kind: "Service", Namespace: "staging", Name: "app", Result: Failed, Message: `dry-run failed: .spec.bogus: field not declared in schema`},
		{Source: "staging", Name: "render apps/overlays/staging", Result: Failed, Message: "kustomize build: <broken>"},
	}}
}

func TestReport(t *testing.T) {
	t.Run("the summary counts objects apart from failed steps", func(t *testing.T) {
		r := sampleReport()
		want := "FAILED: render apps/overlays/staging failed; 4 objects: 1 healthy, 1 applied (health not judged without a node), 1 skipped, 1 failed (6.2s)"
		if got := r.Summary(); got != want {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("the table has an APP column only for several sources", func(t *testing.T) {
		r := sampleReport()
		var b strings.Builder
		r.WriteText(&b)
		if !strings.HasPrefix(b.String(), "APP ") || !strings.Contains(b.String(), "KIND") {
			t.Fatalf("table:\n%s", b.String())
		}
		r.Cases = r.Cases[:3]
		b.Reset()
		r.WriteText(&b)
		if !strings.HasPrefix(b.String(), "KIND ") || !strings.Contains(b.String(), "\nDeployment ") {
			t.Fatalf("table:\n%s", b.String())
		}
	})
	t.Run("JUnit has a suite per source, a case per object, the reason in each failure", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "out", "junit.xml")
		if err := sampleReport().WriteJUnit(f); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(f)
		var doc junitSuites
		if err := xml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if doc.Tests != 5 || doc.Failures != 2 || doc.Skipped != 1 || len(doc.Suites) != 2 {
			t.Fatalf("got %+v", doc)
		}
		svc := doc.Suites[1].Cases[0]
		if svc.Name != "Service/staging/app" || svc.Failure == nil || !strings.Contains(svc.Failure.Message, "field not declared in schema") {
			t.Fatalf("got %+v", svc)
		}
	})
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin.yaml")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["fjord"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:40000", CertificateAuthorityData: []byte("CA")}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("CERT"), ClientKeyData: []byte("KEY")}
	cfg.Contexts["admin@fjord"] = &clientcmdapi.Context{Cluster: "fjord", AuthInfo: "admin"}
	cfg.CurrentContext = "admin@fjord"
	if err := clientcmd.WriteToFile(*cfg, admin); err != nil {
		t.Fatal(err)
	}
	adminBefore, _ := os.ReadFile(admin)

	user := filepath.Join(dir, "kube", "config")
	mine := clientcmdapi.NewConfig()
	mine.Clusters["work"] = &clientcmdapi.Cluster{Server: "https://work:6443"}
	mine.AuthInfos["me"] = &clientcmdapi.AuthInfo{Token: "t"}
	mine.Contexts["work"] = &clientcmdapi.Context{Cluster: "work", AuthInfo: "me"}
	mine.CurrentContext = "work"
	if err := clientcmd.WriteToFile(*mine, user); err != nil {
		t.Fatal(err)
	}
	access := clientcmd.NewDefaultPathOptions()
	access.LoadingRules.ExplicitPath = user

	t.Run("up adds fjord-NAME next to what is there and makes it current", func(t *testing.T) {
		file, err := mergeKubeconfig(access, "dev", admin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := clientcmd.LoadFromFile(user)
		if err != nil {
			t.Fatal(err)
		}
		if file != user || got.CurrentContext != "fjord-dev" || got.Contexts["work"] == nil ||
			got.Clusters["fjord-dev"].Server != "https://127.0.0.1:40000" || string(got.AuthInfos["fjord-dev"].ClientKeyData) != "KEY" {
			t.Fatalf("file %s, got %+v", file, got)
		}
		if after, _ := os.ReadFile(admin); string(after) != string(adminBefore) {
			t.Fatal("the cluster's own kubeconfig was changed")
		}
	})
	t.Run("down removes exactly fjord-NAME", func(t *testing.T) {
		if err := removeKubeconfig(access, "dev"); err != nil {
			t.Fatal(err)
		}
		got, _ := clientcmd.LoadFromFile(user)
		if got.Contexts["fjord-dev"] != nil || got.Clusters["fjord-dev"] != nil || got.AuthInfos["fjord-dev"] != nil ||
			got.CurrentContext != "" || got.Contexts["work"] == nil || got.AuthInfos["me"] == nil {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("down of a name that is not there changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(user)
		if err := removeKubeconfig(access, "dev"); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(user); string(after) != string(before) {
			t.Fatal("changed")
		}
	})
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"default": true, "dev-2": true, "a": true, "": false, "Dev": false, "-a": false, "a/b": false, "..": false, strings.Repeat("a", 41): false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

func TestServerArgs(t *testing.T) {
	t.Run("a verification's server has no node, no engine, and the keys to import", func(t *testing.T) {
		args := strings.Join(serverArgs(ServerOptions{DataDir: "/d", Ports: Ports{API: 1, Sealing: 2}, SealingKeys: "/k.yaml"}), " ")
		for _, want := range []string{"--disable-agent", "--gitops.disable", "--sealing.import-keys /k.yaml", "--https-listen-port 1", "--sealing.port 2", "--bind-address 127.0.0.1", "--config /d/fjord-config.yaml"} {
			if !strings.Contains(args, want) {
				t.Errorf("%q lacks %q", args, want)
			}
		}
	})
	t.Run("a local cluster keeps its engine", func(t *testing.T) {
		if args := strings.Join(serverArgs(ServerOptions{DataDir: "/d", GitOps: true}), " "); strings.Contains(args, "gitops.disable") {
			t.Error(args)
		}
	})
	t.Run("the caller's FJORD_ settings do not reach the child", func(t *testing.T) {
		t.Setenv("FJORD_DATA_DIR", "/var/lib/fjord")
		t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
		env := strings.Join(childEnv("@x"), "\n")
		if strings.Contains(env, "FJORD_DATA_DIR") || strings.Contains(env, "/run/systemd/notify") || !strings.Contains(env, "NOTIFY_SOCKET=@x") {
			t.Fatal(env)
		}
	})
}

func TestMakeTempDir(t *testing.T) {
	parent := t.TempDir()
	stale := filepath.Join(parent, tempPrefix+"old")
	write(t, filepath.Join(stale, "owner.pid"), "999999999")
	live := filepath.Join(parent, tempPrefix+"live")
	write(t, filepath.Join(live, "owner.pid"), strconv.Itoa(os.Getpid()))
	dir, err := makeTempDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the directory of a run that is gone was kept")
	}
	if _, err := os.Stat(live); err != nil {
		t.Error("the directory of a running run was removed")
	}
	if filepath.Dir(dir) != parent {
		t.Errorf("made %s", dir)
	}
}

func TestProgress(t *testing.T) {
	t.Run("off a terminal each phase is one plain line with its time", func(t *testing.T) {
		var b strings.Builder
		p := NewProgress(&b, false)
		p.Begin("start")
		p.Begin("render")
		p.Status("starting control plane")
		p.End("render", "3 objects")
		ph := p.End("start", "ready")
		p.Close()
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "render ") || !strings.HasSuffix(lines[0], "s  3 objects") ||
			!strings.HasPrefix(lines[1], "start ") || strings.Contains(b.String(), "\x1b") || ph.Name != "start" {
			t.Fatalf("got %q", b.String())
		}
	})
	t.Run("a nil Progress shows nothing", func(t *testing.T) {
		var p *Progress
		p.Begin("x")
		if ph := p.End("x", "d"); ph.Name != "x" {
			t.Fatal(ph)
		}
		p.Close()
	})
}

func TestRenderAllLeavesHooksToTheSync(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n")
	write(t, filepath.Join(dir, "app", "migrate.yaml"), "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: m}]}}}\n")
	r := &Report{}
	objs, _ := renderAll(dir, []*source{{name: "app", path: "app"}}, r)
	if len(objs) != 2 {
		t.Fatalf("objects: %d", len(objs))
	}
	for _, o := range objs {
		hook := o.u.GetKind() == "Job"
		if o.done() != hook {
			t.Errorf("%s: done = %v", o.u.GetKind(), o.done())
		}
		if hook && (o.c.Result != Skipped || !strings.Contains(o.c.Message, "a sync creates it in its phase (PreSync)") || o.c.Name != "migrate-*") {
			t.Errorf("hook case: %+v", o.c)
		}
	}
}
