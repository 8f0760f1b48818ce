//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
)

// scaleObjects renders n objects (60 % ConfigMaps, 20 % Services, 20 %
// Deployments with 0 replicas) labelled with generation gen, one file per kind.
func scaleObjects(n, gen int) map[string]string {
	var cms, svcs, deps strings.Builder
	nCM, nSvc := n*6/10, n*2/10
	for i := range nCM {
		fmt.Fprintf(&cms, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  labels: {fjord.dev/gen: %q}\ndata:\n  value: gen-%d-%d\n", i, fmt.Sprint(gen), gen, i)
	}
	for i := range nSvc {
		fmt.Fprintf(&svcs, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%04d\n  labels: {fjord.dev/gen: %q}\nspec:\n  selector: {app: a%d}\n  ports:\n  - port: 80\n", i, fmt.Sprint(gen), i)
	}
	for i := range n - nCM - nSvc {
		fmt.Fprintf(&deps, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-%04d\n  labels: {fjord.dev/gen: %q}\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {app: d%d}\n  template:\n    metadata:\n      labels: {app: d%d}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.35\n", i, fmt.Sprint(gen), i, i)
	}
	return map[string]string{
		"scale/kustomization.yaml": "resources:\n- configmaps.yaml\n- services.yaml\n- deployments.yaml\n",
		"scale/configmaps.yaml":    cms.String(),
		"scale/services.yaml":      svcs.String(),
		"scale/deployments.yaml":   deps.String(),
	}
}

var scaleKinds = []struct {
	gvr    schema.GroupVersionResource
	prefix string
}{
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "cm-"},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "svc-"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "dep-"},
}

// TestGitOpsThousandObjectsSurviveKill9 syncs 1000 objects, kills the server
// with SIGKILL while a sync is writing them, restarts it, and checks that it
// converges with every object at the last revision: none lost, none extra,
// the inventory listing each once.
func TestGitOpsThousandObjectsSurviveKill9(t *testing.T) {
	const n, ns = 1000, "scale"
	s := startGitOpsServer(t)
	repo := newRepo(t, scaleObjects(n, 1))
	app := strings.Replace(argoApp("scale", repo.url(), "scale", automatedFull), "namespace: payments", "namespace: "+ns, 1)

	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	md := metadata.NewForConfigOrDie(cfg)
	// atGen counts the objects that carry generation gen.
	atGen := func(ctx context.Context, gen int) int {
		count := 0
		for _, k := range scaleKinds {
			list, err := md.Resource(k.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("fjord.dev/gen=%d", gen)})
			if err == nil {
				count += len(list.Items)
			}
		}
		return count
	}
	// killMidSync kills the server once some but not all objects carry gen;
	// it reports false when the sync finished before it could.
	killMidSync := func(gen int) (bool, int) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		for ctx.Err() == nil {
			c := atGen(ctx, gen)
			if c > 0 && c < n {
				s.kill9()
				return true, c
			}
			if c == n {
				return false, c
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no object of generation %d appeared within 3m", gen)
		return false, 0
	}

	s.kubectlApply(app)
	gen, rev := 1, repo.head()
	killed, at := killMidSync(gen)
	for try := 0; !killed && try < 3; try++ {
		s.waitApp(t, "scale", "synced", 3*time.Minute, synced(rev))
		gen++
		rev = repo.commit(fmt.Sprintf("generation %d", gen), scaleObjects(n, gen))
		killed, at = killMidSync(gen)
	}
	if !killed {
		t.Fatal("every sync finished before the test could kill the server mid-sync")
	}
	t.Logf("killed the server with %d of %d objects at generation %d", at, n, gen)

	s.start()
	s.waitReady(2 * time.Minute)
	st := s.waitApp(t, "scale", "converged after kill -9", 3*time.Minute, synced(rev))

	seen := map[string]int{}
	for _, r := range st.Resources {
		seen[r.Kind+"/"+r.Name]++
	}
	if len(st.Resources) != n || len(seen) != n {
		t.Errorf("status.resources lists %d entries, %d distinct; want %d", len(st.Resources), len(seen), n)
	}
	for key, c := range seen {
		if c != 1 {
			t.Errorf("status.resources lists %s %d times", key, c)
		}
	}
	ctx := t.Context()
	total := 0
	for _, k := range scaleKinds {
		list, err := md.Resource(k.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if !strings.HasPrefix(o.Name, k.prefix) {
				if k.gvr.Resource == "configmaps" && o.Name == "kube-root-ca.crt" {
					continue
				}
				t.Errorf("unexpected %s %s", k.gvr.Resource, o.Name)
				continue
			}
			total++
			if got := o.Labels["fjord.dev/gen"]; got != fmt.Sprint(gen) {
				t.Errorf("%s %s at generation %q, want %d", k.gvr.Resource, o.Name, got, gen)
			}
			if id := o.Annotations["argocd.argoproj.io/tracking-id"]; !strings.HasPrefix(id, "scale:") {
				t.Errorf("%s %s tracking id %q", k.gvr.Resource, o.Name, id)
			}
		}
	}
	if total != n {
		t.Errorf("%d objects in namespace %s, want %d", total, ns, n)
	}
	// Every ConfigMap holds the value of the last revision, not a mix.
	out := s.mustKubectl("get", "cm", "-n", ns, "-l", "fjord.dev/gen", "-o", "jsonpath={range .items[*]}{.metadata.name}={.data.value}{\"\\n\"}{end}")
	lines := strings.Fields(out)
	if len(lines) != n*6/10 {
		t.Errorf("%d ConfigMaps with a value, want %d", len(lines), n*6/10)
	}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, "=")
		var i int
		fmt.Sscanf(name, "cm-%d", &i)
		if want := fmt.Sprintf("gen-%d-%d", gen, i); value != want {
			t.Errorf("%s = %q, want %q", name, value, want)
		}
	}

	// The 1 s polls that find nothing new leave the Application alone (a
	// thousand resources: its reconciledAt is written every statusEvery,
	// not on each poll); a refresh asked with Argo CD's annotation is
	// written at once.
	appRV := func() (string, string) {
		rv, at, _ := strings.Cut(s.mustKubectl("get", "application", "scale", "-n", "argocd", "-o", "jsonpath={.metadata.resourceVersion} {.status.reconciledAt}"), " ")
		return rv, at
	}
	var reconciledAt string
	eventually(t, time.Minute, "a 5 s stretch of polls without a status write", func() error {
		before, _ := appRV()
		time.Sleep(5 * time.Second)
		after, at := appRV()
		if before != after {
			return fmt.Errorf("the Application moved from resourceVersion %s to %s", before, after)
		}
		reconciledAt = at
		return nil
	})
	// The last write is at least 5 s old: a new one moves reconciledAt,
	// whose resolution is seconds.
	s.mustKubectl("annotate", "application", "scale", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
	eventually(t, 30*time.Second, "the refresh written", func() error {
		if _, at := appRV(); at == reconciledAt {
			return fmt.Errorf("reconciledAt still %s", at)
		}
		return nil
	})
}
