package verify

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/appliance/watchcache"
)

// parallel is how many objects are sent to the API server at once, as the
// engine does.
const parallel = 16

// object is one rendered object on its way through the pipeline.
type object struct {
	u   *unstructured.Unstructured
	src *source
	c   *Case
	// applied: the API server took it.
	applied bool
	// settled: its health has a verdict (or it failed earlier).
	settled bool
}

func (o *object) done() bool { return o.c.Result != "" }

func (o *object) fail(msg string) {
	o.c.Result, o.c.Message = Failed, oneLine(msg)
	o.settled = true
}

func (o *object) gk() schema.GroupKind { return o.u.GroupVersionKind().GroupKind() }

// cluster is the ephemeral server as the pipeline uses it.
type cluster struct {
	client client.Client
	mapper meta.RESTMapper
	kube   kubernetes.Interface
	rm     *ssa.ResourceManager
	// sealingKeys: the server imported the keys SealedSecrets must open with.
	sealingKeys bool
	// withNode: the server runs the node, so workloads must turn healthy.
	withNode bool
}

func connect(kubeconfig string) (*cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	// A thousand objects are a few thousand requests to a server of our own.
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.WarningHandler = rest.NoWarnings{}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	if c.mapper, err = apiutil.NewDynamicRESTMapper(cfg, httpClient); err != nil {
		return nil, fmt.Errorf("creating REST mapper: %w", err)
	}
	if c.client, err = client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: c.mapper}); err != nil {
		return nil, err
	}
	if c.kube, err = kubernetes.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(c.client, c.mapper, polling.Options{})
	c.rm = ssa.NewResourceManager(c.client, poller, ssa.Owner{Field: gitops.FieldManager, Group: "fjord.dev"})
	c.rm.SetConcurrency(parallel)
	return c, nil
}

// prepare makes the ephemeral cluster look like a Fjord server with its
// engine on: the engine's namespace exists (Git often puts repository
// Secrets or the known-hosts ConfigMap there).
func (c *cluster) prepare(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gitops.Default().Namespace}}
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
	}
	return nil
}

// crdKinds returns the kinds the render's CRDs define and whether each is
// namespaced.
func crdKinds(objs []*object) map[schema.GroupKind]bool {
	kinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.gk() == (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			g, _, _ := unstructured.NestedString(o.u.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.u.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.u.Object, "spec", "scope")
			kinds[schema.GroupKind{Group: g, Kind: k}] = scope == "Namespaced"
		}
	}
	return kinds
}

// normalize places each object as the engine does: a namespaced object
// without a namespace goes to its source's destination, a cluster-scoped
// one loses any namespace. An unknown kind or an object defined twice
// fails.
func (c *cluster) normalize(objs []*object) {
	crds := crdKinds(objs)
	seen := map[string]*object{}
	for _, o := range objs {
		if o.done() {
			continue
		}
		gvk := o.u.GroupVersionKind()
		namespaced, known := crds[gvk.GroupKind()]
		if !known {
			m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if meta.IsNoMatchError(err) {
				o.fail(fmt.Sprintf("%s %s: unknown kind (is its CustomResourceDefinition installed?)", gvk.GroupVersion(), gvk.Kind))
				continue
			}
			if err != nil {
				o.fail(fmt.Sprintf("mapping %s: %v", gvk, err))
				continue
			}
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		}
		switch {
		case namespaced && o.u.GetNamespace() == "":
			if o.src.namespace() == "" {
				o.fail("namespaced object without a namespace, and spec.destination.namespace is empty")
				continue
			}
			o.u.SetNamespace(o.src.namespace())
		case !namespaced:
			o.u.SetNamespace("")
		}
		o.c.Namespace = o.u.GetNamespace()
		key := gvk.Group + "/" + gvk.Kind + "/" + o.u.GetNamespace() + "/" + o.u.GetName()
		if first := seen[key]; first != nil {
			where := "twice"
			if first.src != o.src {
				where = "also by " + first.src.name
			}
			o.fail("defined " + where)
			continue
		}
		seen[key] = o
	}
}

// dryRun sends every object the API server can judge now to a server-side
// dry run, in parallel, like the engine: one in a namespace or of a kind
// this render creates is deferred to Apply, which dry-runs it again once
// they exist. A namespace that neither exists nor is created fails.
func (c *cluster) dryRun(ctx context.Context, objs []*object) (accepted, deferred int) {
	namespaces, crds := map[string]bool{}, crdKinds(objs)
	for _, o := range objs {
		if o.u.GetKind() == "Namespace" && o.u.GroupVersionKind().Group == "" && !o.done() {
			namespaces[o.u.GetName()] = true
		}
		if o.src.createNamespace() {
			namespaces[o.src.namespace()] = true
		}
	}
	exists := map[string]bool{}
	for _, o := range objs {
		if ns := o.u.GetNamespace(); ns != "" && !o.done() {
			if _, ok := exists[ns]; !ok {
				_, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				exists[ns] = err == nil
			}
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, o := range objs {
		if o.done() {
			continue
		}
		ns := o.u.GetNamespace()
		if ns != "" && !namespaces[ns] && !exists[ns] {
			o.fail(fmt.Sprintf("namespace %q does not exist (create it in Git or set syncOptions CreateNamespace=true)", ns))
			continue
		}
		if _, ok := crds[o.gk()]; ok || (ns != "" && !exists[ns]) {
			deferred++ // its Namespace or CRD comes with it: Apply dry-runs it then
			continue
		}
		g.Go(func() error {
			if _, _, _, err := c.rm.Diff(gctx, o.u, ssa.DiffOptions{}); err != nil {
				if gctx.Err() == nil {
					o.fail(apiReason(o.u, err))
				}
				return nil
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return accepted, deferred
}

// apply applies what passed the dry run (or was deferred), wave by wave
// in argocd.argoproj.io/sync-wave order; within a wave CRDs, Namespaces and
// ClusterRoles first, then classes, then the rest, as ssa's ApplyAllStaged
// does, but object by object so that every refusal is reported. Before the
// next wave it waits for this one to settle, as the engine waits for it to
// become healthy. An Application's destination namespace is made first
// when it asks for that.
func (c *cluster) apply(ctx context.Context, objs []*object, sources []*source) (applied int, err error) {
	opts := ssa.DefaultApplyOptions()
	for _, s := range sources {
		if !s.createNamespace() {
			continue
		}
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": s.namespace()}}}
		if _, err := c.rm.Apply(ctx, ns, opts); err != nil {
			for _, o := range objs {
				if o.src == s && !o.done() {
					o.fail(fmt.Sprintf("not applied: creating namespace %s (CreateNamespace=true): %s", s.namespace(), oneLine(err.Error())))
				}
			}
		}
	}
	waves := byWave(objs)
	for i, wave := range waves {
		var defs, classes, rest []*object
		for _, o := range wave {
			switch {
			case o.done():
			case ssautils.IsClusterDefinition(o.u):
				defs = append(defs, o)
			case ssautils.IsClassDefinition(o.u):
				classes = append(classes, o)
			default:
				rest = append(rest, o)
			}
		}
		// Definitions and classes must be served before what uses them is
		// sent, as ApplyAllStaged waits for them.
		for _, stage := range [][]*object{defs, classes} {
			applied += c.applyStage(ctx, stage)
			if err := c.settle(ctx, stage); err != nil {
				return applied, err
			}
			c.awaitCRDs(ctx, stage)
		}
		applied += c.applyStage(ctx, rest)
		if i == len(waves)-1 {
			break
		}
		if err := c.settle(ctx, wave); err != nil {
			return applied, err
		}
		if bad := firstUnhealthy(wave); bad != nil {
			msg := fmt.Sprintf("not applied: wave %d did not become healthy: %s: %s", syncWave(wave[0].u), bad.c.ref(), bad.c.health)
			for _, later := range waves[i+1:] {
				for _, o := range later {
					if !o.done() {
						o.fail(msg)
					}
				}
			}
			break
		}
	}
	return applied, nil
}

// applyStage applies objects in parallel with ssa (which dry-runs each
// again first) and records what it did.
func (c *cluster) applyStage(ctx context.Context, stage []*object) int {
	var mu sync.Mutex
	n := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, o := range stage {
		g.Go(func() error {
			entry, err := c.rm.Apply(gctx, o.u, ssa.DefaultApplyOptions())
			if err != nil {
				if gctx.Err() == nil {
					o.fail(apiReason(o.u, err))
				}
				return nil
			}
			o.applied, o.c.Message = true, string(entry.Action)
			mu.Lock()
			n++
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return n
}

// awaitCRDs waits for the watch caches of the kinds the stage's CRDs
// define, so the first list of them does not stall (see watchcache).
func (c *cluster) awaitCRDs(ctx context.Context, stage []*object) {
	for _, o := range stage {
		if !o.applied || !ssautils.IsCRD(o.u) {
			continue
		}
		g, _, _ := unstructured.NestedString(o.u.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(o.u.Object, "spec", "names", "plural")
		versions, _, _ := unstructured.NestedSlice(o.u.Object, "spec", "versions")
		for _, v := range versions {
			m, _ := v.(map[string]any)
			if name, _ := m["name"].(string); name != "" && m["served"] == true {
				watchcache.Await(ctx, c.kube.Discovery().RESTClient(), "/apis/"+g+"/"+name+"/"+plural, 2*time.Second)
				break
			}
		}
	}
}

// settle polls the applied objects among objs until each has a verdict, or
// ctx ends (an error). A SealedSecret is not waited for without keys to
// open it: the server's own key cannot.
func (c *cluster) settle(ctx context.Context, objs []*object) error {
	var open []*object
	for _, o := range objs {
		switch {
		case !o.applied || o.settled:
		case o.gk() == sealedSecretGK && !c.sealingKeys:
			o.settled, o.c.verdict = true, skipped
			o.c.health = "unsealing not checked: no --sealing-keys given"
		default:
			open = append(open, o)
		}
	}
	for len(open) > 0 {
		lives, err := c.live(ctx, open)
		if err != nil {
			return err
		}
		var still []*object
		for i, o := range open {
			v, msg := judge(lives[i], c.withNode)
			o.c.health = msg
			if v == pending {
				still = append(still, o)
				continue
			}
			o.settled = true
			o.c.verdict = v
		}
		open = still
		if len(open) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			c.explain(open)
			return context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// explain adds to each workload that never turned healthy on a node why
// its pods did not run, read once more with a short bound of its own (ctx
// is over by now).
func (c *cluster) explain(open []*object) {
	if !c.withNode {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, o := range open {
		if !needsNode[o.gk()] {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.u.GroupVersionKind())
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(o.u), live); err != nil {
			continue
		}
		if why := c.podTrouble(ctx, live); why != "" {
			o.c.health += " (" + why + ")"
		}
	}
}

// live reads the objects: one list per kind and namespace, so a thousand
// objects are a handful of requests, not a thousand.
func (c *cluster) live(ctx context.Context, objs []*object) ([]*unstructured.Unstructured, error) {
	type group struct {
		gvk schema.GroupVersionKind
		ns  string
	}
	groups := map[group][]int{}
	for i, o := range objs {
		k := group{o.u.GroupVersionKind(), o.u.GetNamespace()}
		groups[k] = append(groups[k], i)
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for k, idx := range groups {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(k.gvk.GroupVersion().WithKind(k.gvk.Kind + "List"))
		var opts []client.ListOption
		if k.ns != "" {
			opts = append(opts, client.InNamespace(k.ns))
		}
		if err := c.client.List(ctx, list, opts...); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			continue // looked at again next round
		}
		byName := make(map[string]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			byName[list.Items[i].GetName()] = &list.Items[i]
		}
		for _, i := range idx {
			out[i] = byName[objs[i].u.GetName()]
		}
	}
	return out, nil
}

// firstUnhealthy returns the first object of a wave that settled Degraded.
// A SealedSecret that does not unseal fails on its own but does not hold
// the next wave back: kstatus, which the engine waits with, does not read
// its Synced condition.
func firstUnhealthy(wave []*object) *object {
	for _, o := range wave {
		if o.c.verdict == degraded {
			return o
		}
	}
	return nil
}

// syncWave returns the object's argocd.argoproj.io/sync-wave (0 when unset
// or invalid), as the engine reads it.
func syncWave(u *unstructured.Unstructured) int {
	w, err := strconv.Atoi(strings.TrimSpace(u.GetAnnotations()["argocd.argoproj.io/sync-wave"]))
	if err != nil {
		return 0
	}
	return w
}

// byWave groups objects by sync wave, lowest first.
func byWave(objs []*object) [][]*object {
	groups := map[int][]*object{}
	for _, o := range objs {
		groups[syncWave(o.u)] = append(groups[syncWave(o.u)], o)
	}
	waves := make([]int, 0, len(groups))
	for w := range groups {
		waves = append(waves, w)
	}
	sort.Ints(waves)
	out := make([][]*object, 0, len(waves))
	for _, w := range waves {
		out = append(out, groups[w])
	}
	return out
}

// apiReason is an apply or dry-run error without ssa's "Kind/ns/name"
// prefix (the report names the object already).
func apiReason(u *unstructured.Unstructured, err error) string {
	msg := oneLine(err.Error())
	msg = strings.TrimPrefix(msg, ssautils.FmtUnstructured(u)+" ")
	if meta.IsNoMatchError(err) {
		return "unknown kind (is its CustomResourceDefinition installed?): " + msg
	}
	return msg
}

// oneLine joins a message's lines and runs of spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
