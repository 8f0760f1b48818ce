package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/gitops/build"
	"github.com/fjord-dev/fjord/appliance/gitops/source"
	"github.com/fjord-dev/fjord/appliance/watchcache"
)

// FieldManager is the server-side apply field manager of everything Fjord
// applies from Git.
const FieldManager = "fjord"

// Runtime is what the engine needs beyond its configuration section.
type Runtime struct {
	DataDir    string
	Kubeconfig string
	Log        *slog.Logger
	// OnSync, when set, is called after each reconcile of an Application
	// (and once when it is deleted), for a one-line status.
	OnSync func(SyncSummary)
}

// Engine is the GitOps component: it syncs every Application in its
// namespace and reverts drift on what it applied.
type Engine struct {
	cfg Config
	rt  Runtime
	log *slog.Logger

	kube     kubernetes.Interface
	dyn      dynamic.Interface
	client   client.Client
	mapper   meta.RESTMapper
	rm       *ssa.ResourceManager
	sources  *source.Cache
	recorder record.EventRecorder
	events   record.EventBroadcaster

	queue   workqueue.TypedRateLimitingInterface[string]
	heals   workqueue.TypedRateLimitingInterface[healKey]
	apps    cache.SharedIndexInformer
	watches *watcher

	mu     sync.Mutex
	states map[string]*appState
	// attempted holds the Applications whose first sync was attempted
	// (whatever its outcome), for AwaitFirstSyncs.
	attempted map[string]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// released is when releaseMemory last ran (Unix nanoseconds).
	released atomic.Int64
	// bursts counts the syncs inside gcBurst; burstOld is the GC percent
	// the first of them found.
	burstMu  sync.Mutex
	bursts   int
	burstOld int
}

var _ component.Component = (*Engine)(nil)

// appState is what the engine remembers of one Application between syncs.
type appState struct {
	app       *Application
	revision  string // last revision applied
	attempted string // revision@spec hash last attempted (success or not)
	desired   map[objKey]*unstructured.Unstructured
	syncing   bool
	drifted   map[objKey]bool
	// failure holds the conditions of the last attempt when it failed; a
	// refresh of the last good state keeps reporting them until the next
	// attempt (new revision or spec) succeeds.
	failure        []condition
	failureAttempt string
	// applied holds the hash of each object as last applied.
	applied map[objKey]string
	// render is the last render of the source, reused while its key holds.
	render *rendered
	// compared is the last comparison of an Application without automated
	// sync against the cluster, reused for the objects that did not move.
	compared *comparison
	// resourcesHash and resultsHash identify status.resources and
	// operationState.syncResult.resources as last written: a status write
	// leaves out a list that did not change (a merge patch keeps it).
	resourcesHash, resultsHash string
	// resourcesStates identifies status.resources as last written without
	// the health messages, and resourcesAt is when that list was written
	// (withoutHealthMessages).
	resourcesStates string
	resourcesAt     time.Time
	// statusAt is when the engine last wrote the status, and refreshAsked
	// the refresh annotation the Application had then (quietStatus).
	statusAt     time.Time
	refreshAsked string
	// healthOnly asks the next reconcile for a status refresh only (an
	// applied object's health changed, or it drifted without selfHeal); a
	// trigger from Git clears it.
	healthOnly bool
	// opRVs are the resourceVersions the Application had while the engine
	// ran its last operation (before it, and after each progress write):
	// until the informer shows finalRV, the write that took the operation
	// off, a copy with one of them is stale, not a new request. opRV is
	// the latest of them, the precondition of that final write.
	opRVs         map[string]bool
	opRV, finalRV string
	// retries counts the retries of the failed sync of retryAttempt
	// (syncPolicy.retry); retryDue asks the next reconcile to sync again
	// although nothing changed.
	retries      int64
	retryAttempt string
	retryDue     bool
}

type healKey struct {
	app string
	obj objKey
}

// New returns the GitOps engine.
func New(cfg Config, rt Runtime) *Engine {
	return &Engine{cfg: cfg, rt: rt, log: rt.Log.With("component", "gitops"), states: map[string]*appState{}, attempted: map[string]bool{}}
}

// Name implements component.Component.
func (e *Engine) Name() string { return "gitops" }

// Init prepares the repository cache.
func (e *Engine) Init(context.Context) error {
	var err error
	e.sources, err = source.New(source.Options{Root: filepath.Join(e.rt.DataDir, "gitops", "repos"), Logger: e.log})
	return err
}

// Start connects to the API server, installs the Application CRD and the
// argocd namespace, applies configured Applications, and starts the workers.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.connect(); err != nil {
		return err
	}
	e.events = record.NewBroadcaster()
	e.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: e.kube.CoreV1().Events("")})
	e.recorder = e.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "fjord-gitops"})

	boot, err := bootstrapObjects(e.cfg.Namespace)
	if err != nil {
		return err
	}
	if _, err := e.rm.ApplyAllStaged(ctx, boot, ssa.ApplyOptions{WaitInterval: 200 * time.Millisecond, WaitTimeout: time.Minute}); err != nil {
		return fmt.Errorf("installing the Application CRD: %w", err)
	}
	watchcache.Await(ctx, e.kube.Discovery().RESTClient(), "/apis/"+ApplicationGVR.Group+"/"+ApplicationGVR.Version+"/"+ApplicationGVR.Resource, 2*time.Second)
	if err := e.ensureDefaultProject(ctx); err != nil {
		return err
	}
	return e.startWorkers(ctx)
}

// connect builds the clients from the kubeconfig.
func (e *Engine) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.rt.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.rt.Kubeconfig, err)
	}
	// A sync of a thousand objects is a few thousand requests.
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.WarningHandler = rest.NoWarnings{}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	if e.mapper, err = apiutil.NewDynamicRESTMapper(cfg, httpClient); err != nil {
		return fmt.Errorf("creating REST mapper: %w", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{HTTPClient: httpClient, Mapper: e.mapper})
	if err != nil {
		return err
	}
	e.client = withLineApply(c)
	if e.kube, err = kubernetes.NewForConfigAndClient(cfg, httpClient); err != nil {
		return err
	}
	if e.dyn, err = dynamic.NewForConfigAndClient(cfg, httpClient); err != nil {
		return err
	}
	poller := polling.NewStatusPoller(e.client, e.mapper, polling.Options{})
	e.rm = ssa.NewResourceManager(e.client, poller, ssa.Owner{Field: FieldManager, Group: "fjord.dev"})
	e.rm.SetConcurrency(16)
	md, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return err
	}
	e.watches = newWatcher(e.dyn, md, e.mapper, e.onDrift, e.log)
	e.watches.onHealth = e.onHealth
	return nil
}

// startWorkers applies the configured Applications and starts the informer,
// the sync and heal workers and the poller.
func (e *Engine) startWorkers(ctx context.Context) error {
	if err := e.applyConfiguredApplications(ctx); err != nil {
		return err
	}

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute)),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "applications"})
	e.heals = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[healKey](100*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[healKey]{Name: "drift"})
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(e.dyn, 10*time.Minute, e.cfg.Namespace, nil)
	e.apps = factory.ForResource(ApplicationGVR).Informer()
	_ = e.apps.SetTransform(slimApplication)
	e.apps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { e.enqueue(obj) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*unstructured.Unstructured), obj.(*unstructured.Unstructured)
			e.caughtUp(n)
			_, op := n.Object["operation"]
			deleting := o.GetDeletionTimestamp() == nil && n.GetDeletionTimestamp() != nil
			// The spec, not metadata.generation: without a status
			// subresource the engine's own status writes move that.
			specChanged := !reflect.DeepEqual(o.Object["spec"], n.Object["spec"])
			if deleting || specChanged || op || o.GetAnnotations()[refreshAnnotation] != n.GetAnnotations()[refreshAnnotation] {
				e.enqueue(obj)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				e.mu.Lock()
				delete(e.states, u.GetName())
				delete(e.attempted, u.GetName())
				e.mu.Unlock()
				if e.rt.OnSync != nil {
					e.rt.OnSync(SyncSummary{Application: u.GetName(), Deleted: true})
				}
			}
		},
	})
	factory.Start(rctx.Done())

	if e.cfg.WebhookListen != "" {
		if err := e.serveWebhook(rctx); err != nil {
			cancel()
			return err
		}
	}
	e.wg.Add(4)
	go func() { defer e.wg.Done(); e.work(rctx) }()
	go func() { defer e.wg.Done(); e.work(rctx) }()
	go func() { defer e.wg.Done(); e.healWork(rctx) }()
	go func() { defer e.wg.Done(); e.poll(rctx) }()
	return nil
}

// slimApplication drops from the engine's cached copy of an Application
// what the engine never reads back: managedFields and the operation's
// per-object results (operationState.syncResult.resources), which it writes
// and clients read from the API. After a first sync of a thousand objects
// those results are a thousand small maps, half the cached Application.
func slimApplication(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	u.SetManagedFields(nil)
	unstructured.RemoveNestedField(u.Object, "status", "operationState", "syncResult", "resources")
	return u, nil
}

// applyConfiguredApplications applies every manifest in ApplicationsDir.
func (e *Engine) applyConfiguredApplications(ctx context.Context) error {
	if e.cfg.ApplicationsDir == "" {
		return nil
	}
	res, err := build.Build(e.cfg.ApplicationsDir, ".", build.Options{})
	if err != nil {
		return fmt.Errorf("reading gitops.applications-dir: %w", err)
	}
	for _, o := range res.Objects {
		if o.GetNamespace() == "" {
			o.SetNamespace(e.cfg.Namespace)
		}
	}
	if _, err := e.rm.ApplyAll(ctx, res.Objects, ssa.DefaultApplyOptions()); err != nil {
		return fmt.Errorf("applying gitops.applications-dir %s: %w", e.cfg.ApplicationsDir, err)
	}
	e.log.Info("applied configured applications", "dir", e.cfg.ApplicationsDir, "count", len(res.Objects))
	return nil
}

// Ready waits for the Application informer's first list.
func (e *Engine) Ready(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), e.apps.HasSynced) {
		return errors.New("Application informer did not sync")
	}
	return nil
}

// AwaitFirstSyncs waits until the first sync of every Application that
// exists when it is called (the configured ones included: Start applied
// them) has been attempted, whatever its outcome: a sync that fails has
// been attempted too. Applications deleted meanwhile are not waited for.
// pending is called with the names still waited for whenever they change.
// Call it after Ready.
func (e *Engine) AwaitFirstSyncs(ctx context.Context, pending func([]string)) error {
	want := map[string]bool{}
	for _, obj := range e.apps.GetStore().List() {
		want[obj.(*unstructured.Unstructured).GetName()] = true
	}
	last := ""
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		var left []string
		e.mu.Lock()
		for name := range want {
			_, exists, _ := e.apps.GetStore().GetByKey(e.cfg.Namespace + "/" + name)
			if exists && !e.attempted[name] {
				left = append(left, name)
			}
		}
		e.mu.Unlock()
		if len(left) == 0 {
			return nil
		}
		sort.Strings(left)
		if now := strings.Join(left, ","); now != last && pending != nil {
			pending(left)
			last = now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Err is nil: a failing sync is reported on its Application, not fatal.
func (e *Engine) Err() <-chan error { return nil }

// Stop ends the workers and watches, waiting at most until ctx ends.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	e.cancel = nil
	e.queue.ShutDown()
	e.heals.ShutDown()
	e.watches.stop()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	defer e.events.Shutdown()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gitops workers did not stop: %w", ctx.Err())
	}
}

func (e *Engine) enqueue(obj any) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		e.queue.Add(u.GetName())
	}
}

// poll asks every Application's remote for its revision each PollInterval.
func (e *Engine) poll(ctx context.Context) {
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Trigger("")
		}
	}
}

// Trigger syncs the Applications whose repository URL matches url now (the
// webhook), or every Application when url is empty.
func (e *Engine) Trigger(url string) int {
	want, _ := source.NormalizeURL(url)
	n := 0
	for _, obj := range e.apps.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if url == "" || slices.ContainsFunc(repoURLs(u), func(repo string) bool { got, _ := source.NormalizeURL(repo); return got == want }) {
			e.mu.Lock()
			if st := e.states[u.GetName()]; st != nil {
				st.healthOnly = false
			}
			e.mu.Unlock()
			e.queue.Add(u.GetName())
			n++
		}
	}
	return n
}

func (e *Engine) work(ctx context.Context) {
	for {
		name, shutdown := e.queue.Get()
		if shutdown {
			return
		}
		retry := e.reconcile(ctx, name)
		if retry {
			e.queue.AddRateLimited(name)
		} else {
			e.queue.Forget(name)
		}
		e.queue.Done(name)
	}
}

func (e *Engine) state(name string) *appState {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.states[name]
	if s == nil {
		s = &appState{drifted: map[objKey]bool{}}
		e.states[name] = s
	}
	return s
}

// reconcile runs one Application through the pipeline and records the
// outcome on its status. It reports whether to retry with backoff.
func (e *Engine) reconcile(ctx context.Context, name string) bool {
	obj, exists, err := e.apps.GetStore().GetByKey(e.cfg.Namespace + "/" + name)
	if err != nil || !exists {
		return false
	}
	u := obj.(*unstructured.Unstructured).DeepCopy()
	st := e.state(name)
	if u.GetDeletionTimestamp() != nil {
		// Being deleted: with the resources finalizer its objects go
		// first; nothing is synced any more either way.
		if err := e.cascade(ctx, name, st, u); err != nil {
			e.log.Warn("deleting application resources", "application", name, "err", cleanErr(err))
			e.deletionError(ctx, u, cleanErr(err))
			return true
		}
		return false
	}
	// A requested operation (fjord sync, Argo CD's operation field) stays
	// on the Application while it runs and is taken off by the status
	// write that ends it, as Argo CD does: one write of the whole
	// Application per operation instead of two.
	op, _ := u.Object["operation"].(map[string]any)
	if op != nil {
		var current bool
		if u, current, err = e.operationCurrent(ctx, st, u); err != nil {
			e.log.Error("reading the Application", "application", name, "err", err)
			return true
		}
		if !current {
			return false
		}
		op, _ = u.Object["operation"].(map[string]any)
	}
	if op != nil {
		e.mu.Lock()
		st.opRVs = map[string]bool{u.GetResourceVersion(): true}
		st.opRV, st.finalRV = u.GetResourceVersion(), ""
		e.mu.Unlock()
	}
	// A requested operation on an Application of many resources is a
	// burst even when nothing is written: the API server takes the whole
	// Application in twice (the request, the status write that ends it),
	// and at N = 5000 that is 1.7 MB of JSON each time.
	var bursts []func()
	if op != nil && inventorySize(u) >= releaseAfter {
		bursts = append(bursts, e.gcBurst())
	}
	endBursts := func() bool {
		for _, end := range bursts {
			end()
		}
		held := len(bursts) > 0
		bursts = nil
		return held
	}
	defer endBursts()
	app, err := ParseApplication(u)
	var out *outcome
	if err != nil {
		out = &outcome{syncStatus: "Unknown", conditions: []condition{{Type: "InvalidSpecError", Message: err.Error()}}}
	} else {
		out = e.sync(ctx, app, st, op != nil, u)
		if out.endBurst != nil {
			bursts = append(bursts, out.endBurst)
		}
	}
	if app != nil {
		e.retry(name, app, st, out)
	}
	e.mu.Lock()
	if out.refreshed {
		if len(st.failure) > 0 && st.failureAttempt == st.attempted {
			out.conditions = append(out.conditions, st.failure...)
			out.syncStatus = "OutOfSync"
		}
	} else {
		st.failure, st.failureAttempt = out.conditions, out.attempt
	}
	e.mu.Unlock()
	if e.rt.OnSync != nil {
		e.rt.OnSync(summarize(name, out))
	}
	e.mu.Lock()
	e.attempted[name] = true
	e.mu.Unlock()
	if err := e.writeStatus(ctx, u, st, out, op); err != nil {
		e.log.Error("writing Application status", "application", name, "err", err)
		return true
	}
	if endBursts() || out.rendered >= releaseAfter {
		e.releaseMemory()
	}
	return out.retry
}

// operationCurrent tells a requested operation from a stale copy of one
// the engine already ended: the informer can deliver the Application as it
// was during that operation after the write that took it off. A copy the
// engine knows is skipped; one it does not know, while the informer has
// not caught up with that write, is read again from the API server.
func (e *Engine) operationCurrent(ctx context.Context, st *appState, u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
	e.mu.Lock()
	stale, behind := st.opRVs[u.GetResourceVersion()], st.finalRV != ""
	e.mu.Unlock()
	if stale {
		return u, false, nil
	}
	if !behind {
		return u, true, nil
	}
	live, err := e.dyn.Resource(ApplicationGVR).Namespace(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		return u, false, err
	}
	_, op := live.Object["operation"]
	return live, op && live.GetDeletionTimestamp() == nil, nil
}

// caughtUp notes that the informer delivered the engine's own final write
// of an operation: copies after it are current.
func (e *Engine) caughtUp(u *unstructured.Unstructured) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.states[u.GetName()]; st != nil && st.finalRV != "" && st.finalRV == u.GetResourceVersion() {
		st.opRVs, st.finalRV = nil, ""
	}
}

// releaseAfter is the size of a render (objects) after which the engine
// hands the memory of the fetch, the build and the apply back to the
// kernel at once, instead of leaving the heap's high-water mark resident
// until the scavenger gets to it.
const releaseAfter = 200

// releaseMemory runs debug.FreeOSMemory, at most once every 30 s: it is a
// full collection of the whole server's heap.
func (e *Engine) releaseMemory() {
	now := time.Now().UnixNano()
	last := e.released.Load()
	if now-last < int64(30*time.Second) || !e.released.CompareAndSwap(last, now) {
		return
	}
	debug.FreeOSMemory()
}

// burstGCPercent is the collector's target while a sync writes many
// objects (gcBurst).
const burstGCPercent = 50

// gcBurst lets the heap grow by half between collections, instead of the
// quarter fjord server keeps idle (cmd/fjord), while a sync writes at least
// releaseAfter objects or an operation runs on an Application of as many
// resources, until the status write after it, and returns the function
// that ends it. Such a sync is a burst of the API server's allocations in
// this process; at GOGC 25 the collector ran about twice as often through
// it: the first sync of 1000 objects took 6.3 s instead of 3.8 s, a no-op
// operation at 5000 resources 2.2 s instead of 1.4 s. The memory the burst
// took is handed back after the status write (releaseMemory). Nested and
// concurrent syncs share one burst; a GOGC set in the environment, or a
// target already as high, is left alone.
func (e *Engine) gcBurst() func() {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	e.burstMu.Lock()
	defer e.burstMu.Unlock()
	if e.bursts == 0 {
		e.burstOld = debug.SetGCPercent(burstGCPercent)
		if e.burstOld >= burstGCPercent || e.burstOld < 0 {
			debug.SetGCPercent(e.burstOld)
		}
	}
	e.bursts++
	return func() {
		e.burstMu.Lock()
		defer e.burstMu.Unlock()
		if e.bursts--; e.bursts == 0 {
			debug.SetGCPercent(e.burstOld)
		}
	}
}

// sortedKeys returns the keys of m in a stable order.
func sortedKeys(m map[objKey]*unstructured.Unstructured) []objKey {
	keys := make([]objKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// event records a Kubernetes event on the Application.
func (e *Engine) event(app *unstructured.Unstructured, warning bool, reason, msg string) {
	t := corev1.EventTypeNormal
	if warning {
		t = corev1.EventTypeWarning
	}
	e.recorder.Event(app, t, reason, msg)
}

func isNotFound(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}

func existsNamespace(ctx context.Context, kube kubernetes.Interface, ns string) bool {
	_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return err == nil
}

// retry applies syncPolicy.retry to a sync operation that ran: a failure
// is tried again after the policy's backoff (the operation stays Running,
// as in Argo CD) until the limit is reached; retryCount reports the
// retries made for the same revision and spec.
func (e *Engine) retry(name string, app *Application, st *appState, out *outcome) {
	if !out.operated || out.refreshed {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.retryAttempt != out.attempt {
		st.retries, st.retryAttempt = 0, out.attempt
	}
	var policy *RetryPolicy
	if app.Spec.SyncPolicy != nil {
		policy = app.Spec.SyncPolicy.Retry
	}
	if out.phase == "Failed" {
		if d, ok := policy.retryAfter(st.retries); ok {
			st.retries++
			st.retryDue = true
			out.phase = "Running"
			out.message = fmt.Sprintf("%s. Retrying attempt #%d at %s.", out.message, st.retries, time.Now().Add(d).Format(time.Kitchen))
			e.queue.AddAfter(name, d)
		} else if st.retries > 0 {
			out.message = fmt.Sprintf("%s (retried %d times).", out.message, st.retries)
		}
	}
	out.retryCount = st.retries
	if out.phase == "Succeeded" {
		st.retries = 0
	}
}

// repoURLs lists the repositories of an Application (spec.source and each
// of spec.sources).
func repoURLs(u *unstructured.Unstructured) []string {
	var urls []string
	if repo, _, _ := unstructured.NestedString(u.Object, "spec", "source", "repoURL"); repo != "" {
		urls = append(urls, repo)
	}
	srcs, _, _ := unstructured.NestedSlice(u.Object, "spec", "sources")
	for _, s := range srcs {
		if m, ok := s.(map[string]any); ok {
			if repo, _ := m["repoURL"].(string); repo != "" {
				urls = append(urls, repo)
			}
		}
	}
	return urls
}
