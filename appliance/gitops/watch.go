package gitops

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// watcher keeps one informer per resource type Fjord applied, so a change
// made by someone else (kubectl edit, scale, delete) is seen within the
// watch latency, and health is read from the cache instead of a GET each.
type watcher struct {
	dyn    dynamic.Interface
	meta   metadata.Interface
	mapper meta.RESTMapper
	// onDrift is given the object before the change (nil when deleted)
	// and after it.
	onDrift func(old, u *unstructured.Unstructured, deleted bool)
	// onHealth is called when a tracked object's health changed (a status
	// update, such as a rollout finishing or a SealedSecret unsealed).
	// Like a drift without selfHeal, it asks only for a status refresh.
	onHealth func(u *unstructured.Unstructured)
	log      *slog.Logger

	// resources caches gvr's answers (schema.GroupVersionKind →
	// schema.GroupVersionResource).
	resources sync.Map

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	stopCh    chan struct{}
}

func newWatcher(dyn dynamic.Interface, md metadata.Interface, mapper meta.RESTMapper, onDrift func(old, u *unstructured.Unstructured, deleted bool), log *slog.Logger) *watcher {
	return &watcher{dyn: dyn, meta: md, mapper: mapper, onDrift: onDrift, log: log,
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}, stopCh: make(chan struct{})}
}

// gvr maps a kind to its resource. Found mappings are remembered: a no-op
// sync asks for each of its objects several times, and the REST mapper's
// lookup is not cheap at a thousand objects.
func (w *watcher) gvr(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool) {
	if r, ok := w.resources.Load(gvk); ok {
		return r.(schema.GroupVersionResource), true
	}
	m, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false
	}
	w.resources.Store(gvk, m.Resource)
	return m.Resource, true
}

// start starts an informer for every type in objs that has none, and
// returns the informers of all of objs' types (those the REST mapper knows)
// without waiting for them. A sync starts them before it writes, so their
// lists (of the types, cluster-wide) load while the objects are applied and
// the writes reach the caches as watch events, instead of a list of
// everything after the last write that the sync's status waits for.
func (w *watcher) start(objs []*unstructured.Unstructured) []cache.SharedIndexInformer {
	var infs []cache.SharedIndexInformer
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range objs {
		gvr, ok := w.gvr(o.GroupVersionKind())
		if !ok {
			continue
		}
		if inf, ok := w.informers[gvr]; ok {
			if !slices.Contains(infs, inf) {
				infs = append(infs, inf)
			}
			continue
		}
		indexers := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
		var inf cache.SharedIndexInformer
		if gvk := o.GroupVersionKind(); metadataOnly[gvk.GroupKind()] {
			// Drift is seen in the metadata (resourceVersion, generation,
			// labels, annotations) and these kinds are healthy once they
			// exist: their content (a Secret's data) is not held at all.
			inf = metadatainformer.NewFilteredMetadataInformer(w.meta, gvr, "", 0, indexers, nil).Informer()
			_ = inf.SetTransform(metadataAsUnstructured(gvk))
		} else {
			inf = dynamicinformer.NewFilteredDynamicInformer(w.dyn, gvr, "", 0, indexers, nil).Informer()
			// Health and drift need neither managedFields, the last-applied
			// annotation nor a pod template; dropping them is most of what a
			// cached object costs.
			_ = inf.SetTransform(stripForCache)
		}
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, obj any) {
				o, n := old.(*unstructured.Unstructured), obj.(*unstructured.Unstructured)
				if changedByUser(o, n) {
					w.onDrift(o, n, false)
				} else if w.onHealth != nil && healthChanged(o, n) {
					w.onHealth(n)
				}
			},
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				if u, ok := obj.(*unstructured.Unstructured); ok {
					w.onDrift(nil, u, true)
				}
			},
		})
		w.informers[gvr] = inf
		go inf.Run(w.stopCh)
		infs = append(infs, inf)
	}
	return infs
}

// watch makes sure every type in objs has a synced informer.
func (w *watcher) watch(objs []*unstructured.Unstructured) {
	for _, inf := range w.start(objs) {
		if inf.HasSynced() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
		cancel()
	}
}

// catchUp waits until the caches hold each object of written at least at
// the resourceVersion its write answered with (an informer started before
// the writes sees them as watch events, a moment after each answer), so
// health is read from what was written. It gives up after timeout: health
// is then read from what the caches hold, and a later event refreshes it.
func (w *watcher) catchUp(written []writtenObj, timeout time.Duration) (late int) {
	pending := slices.Clone(written)
	deadline := time.Now().Add(timeout)
	for {
		rest := pending[:0]
		for _, o := range pending {
			if !w.holds(o) {
				rest = append(rest, o)
			}
		}
		pending = rest
		if len(pending) == 0 || time.Now().After(deadline) {
			return len(pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writtenObj is an object a sync wrote and the resourceVersion the API
// server answered with.
type writtenObj struct {
	gvk                              schema.GroupVersionKind
	namespace, name, resourceVersion string
}

// holds reports whether o's informer holds it at its written version or a
// later one. resourceVersions are compared as the numbers etcd and kine
// give; one that is not a number is held once the object is there.
func (w *watcher) holds(o writtenObj) bool {
	gvr, ok := w.gvr(o.gvk)
	if !ok {
		return true
	}
	w.mu.Lock()
	inf := w.informers[gvr]
	w.mu.Unlock()
	if inf == nil {
		return true
	}
	key := o.name
	if o.namespace != "" {
		key = o.namespace + "/" + key
	}
	item, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return false
	}
	want, err1 := strconv.ParseUint(o.resourceVersion, 10, 64)
	got, err2 := strconv.ParseUint(item.(*unstructured.Unstructured).GetResourceVersion(), 10, 64)
	return err1 != nil || err2 != nil || got >= want
}

// metadataOnly lists the kinds watched by metadata only: kstatus finds
// them Current once they exist, whatever they hold.
var metadataOnly = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}:      true,
	{Kind: "Secret"}:         true,
	{Kind: "ServiceAccount"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              true,
}

// podTemplateKinds lists the kinds whose spec.template kstatus does not read
// (it reads replicas, strategy, status and conditions).
var podTemplateKinds = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "batch", Kind: "Job"}:        true,
}

// metadataAsUnstructured turns what a metadata informer lists into the
// unstructured objects the rest of the engine reads: kind, name, labels,
// annotations, versions; no managedFields.
func metadataAsUnstructured(gvk schema.GroupVersionKind) cache.TransformFunc {
	return func(obj any) (any, error) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return obj, nil
		}
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(m.Namespace)
		u.SetName(m.Name)
		u.SetUID(m.UID)
		u.SetResourceVersion(m.ResourceVersion)
		u.SetGeneration(m.Generation)
		u.SetLabels(m.Labels)
		ann := m.Annotations
		if _, ok := ann["kubectl.kubernetes.io/last-applied-configuration"]; ok {
			ann = maps.Clone(ann)
			delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		}
		u.SetAnnotations(ann)
		if m.DeletionTimestamp != nil {
			u.SetDeletionTimestamp(m.DeletionTimestamp)
		}
		return u, nil
	}
}

func stripForCache(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if podTemplateKinds[u.GroupVersionKind().GroupKind()] {
			unstructured.RemoveNestedField(u.Object, "spec", "template")
		}
		u.SetManagedFields(nil)
		if ann := u.GetAnnotations(); ann != nil {
			if _, ok := ann["kubectl.kubernetes.io/last-applied-configuration"]; ok {
				delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
				u.SetAnnotations(ann)
			}
		}
	}
	return obj, nil
}

// changedByUser filters the events worth a drift check: a spec change
// (generation), a metadata change, or any change of an object without
// generation (ConfigMaps, Secrets, Services). Status updates are not drift.
func changedByUser(old, cur *unstructured.Unstructured) bool {
	if old.GetResourceVersion() == cur.GetResourceVersion() {
		return false
	}
	if trackedBy(cur) == "" && trackedBy(old) == "" {
		return false
	}
	if cur.GetGeneration() == 0 {
		return true
	}
	return old.GetGeneration() != cur.GetGeneration() ||
		!maps.Equal(old.GetLabels(), cur.GetLabels()) || !maps.Equal(old.GetAnnotations(), cur.GetAnnotations())
}

// othersMetadata reports whether the change from old to cur is to
// metadata alone (the same generation) and only to labels and annotations
// the desired object does not set: a controller's, such as the Deployment
// controller's deployment.kubernetes.io/revision on every Deployment it
// rolls out. A server-side apply leaves such keys alone, so there is
// nothing to revert or to show as drift; without this, each Deployment of
// a sync was applied once more right after it.
func othersMetadata(old, cur, desired *unstructured.Unstructured) bool {
	if old == nil || desired == nil || cur.GetGeneration() == 0 || old.GetGeneration() != cur.GetGeneration() {
		return false
	}
	ours := func(was, is, want map[string]string) bool {
		for _, m := range []map[string]string{was, is} {
			for k := range m {
				v1, ok1 := was[k]
				v2, ok2 := is[k]
				if v1 == v2 && ok1 == ok2 {
					continue
				}
				if _, set := want[k]; set || k == annotationTrackingID {
					return true
				}
			}
		}
		return false
	}
	return !ours(old.GetLabels(), cur.GetLabels(), desired.GetLabels()) &&
		!ours(old.GetAnnotations(), cur.GetAnnotations(), desired.GetAnnotations())
}

// healthChanged reports whether a tracked object's health moved.
func healthChanged(old, cur *unstructured.Unstructured) bool {
	if trackedBy(cur) == "" || old.GetResourceVersion() == cur.GetResourceVersion() {
		return false
	}
	before, _ := healthOf(old)
	after, _ := healthOf(cur)
	return before != after
}

// get returns the live object from the informer cache, or GETs it; nil when
// it does not exist.
func (w *watcher) get(ctx context.Context, c client.Client, o *unstructured.Unstructured) *unstructured.Unstructured {
	key := o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	if gvr, ok := w.gvr(o.GroupVersionKind()); ok {
		w.mu.Lock()
		inf := w.informers[gvr]
		w.mu.Unlock()
		if inf != nil && inf.HasSynced() {
			item, exists, err := inf.GetStore().GetByKey(key)
			if err == nil {
				if !exists {
					return nil
				}
				return item.(*unstructured.Unstructured)
			}
		}
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
		return nil
	}
	return live
}

// cached reports whether o is in a synced informer cache (it exists and
// any change to it is being watched).
func (w *watcher) cached(o *unstructured.Unstructured) bool {
	gvr, ok := w.gvr(o.GroupVersionKind())
	if !ok {
		return false
	}
	w.mu.Lock()
	inf := w.informers[gvr]
	w.mu.Unlock()
	if inf == nil || !inf.HasSynced() {
		return false
	}
	key := o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	_, exists, err := inf.GetStore().GetByKey(key)
	return err == nil && exists
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
}

// onDrift is called for every user change to a tracked object: with
// selfHeal it queues a re-apply of that object, otherwise it marks the
// Application OutOfSync.
func (e *Engine) onDrift(old, u *unstructured.Unstructured, deleted bool) {
	name := trackedBy(u)
	if name == "" {
		return
	}
	e.mu.Lock()
	st := e.states[name]
	if st == nil || st.syncing || st.desired == nil || st.app == nil {
		e.mu.Unlock()
		return
	}
	k := keyOf(u)
	desired, ours := st.desired[k]
	e.mu.Unlock()
	if ours && !deleted && othersMetadata(old, u, desired) {
		return
	}
	if ours {
		// Reverted (selfHeal) or, without selfHeal, dry-run to tell a real
		// change from one that is not (a controller's annotation, our own
		// apply seen by a watch that was open before it).
		e.heals.Add(healKey{app: name, obj: k})
	}
}

// onHealth refreshes the status of the Application tracking u, so health
// follows the cluster without waiting for the next poll.
func (e *Engine) onHealth(u *unstructured.Unstructured) {
	name := trackedBy(u)
	e.mu.Lock()
	st := e.states[name]
	ok := st != nil && !st.syncing && st.desired != nil
	if ok {
		st.healthOnly = true
	}
	e.mu.Unlock()
	if ok {
		e.queue.AddAfter(name, 200*time.Millisecond)
	}
}

// healWork re-applies drifted objects one at a time, from the last synced
// desired state (no fetch, no build).
func (e *Engine) healWork(ctx context.Context) {
	for {
		k, shutdown := e.heals.Get()
		if shutdown {
			return
		}
		if e.heal(ctx, k) {
			e.heals.AddRateLimited(k)
		} else {
			e.heals.Forget(k)
		}
		e.heals.Done(k)
	}
}

func (e *Engine) heal(ctx context.Context, k healKey) (retry bool) {
	e.mu.Lock()
	st := e.states[k.app]
	var desired *unstructured.Unstructured
	selfHeal := false
	if st != nil && !st.syncing && st.app != nil {
		desired, selfHeal = st.desired[k.obj], st.app.SelfHeal()
	}
	e.mu.Unlock()
	if desired == nil {
		return false
	}
	if !selfHeal {
		return e.markDrift(ctx, st, k, desired)
	}
	// One server-side apply, no GET and dry run first (ssa's Apply makes
	// three round trips): the watch already said the object changed, and
	// the resourceVersion the server answers with says whether it had to.
	before := e.watches.get(ctx, e.client, desired)
	// Fields spec.ignoreDifferences ignores are not drift: sent as they are.
	e.mu.Lock()
	app := st.app
	e.mu.Unlock()
	desired, err := e.withIgnored(ctx, app, desired)
	if err != nil {
		e.log.Warn("reverting drift failed", "application", k.app, "object", k.obj.String(), "err", cleanErr(err))
		return true
	}
	obj := desired.DeepCopy()
	if app.SyncOption("Replace") || hasSyncOption(desired, "Replace=true") {
		err = e.replace(ctx, obj)
	} else {
		err = e.client.Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
	}
	if err != nil {
		e.log.Warn("reverting drift failed", "application", k.app, "object", k.obj.String(), "err", cleanErr(err))
		return true
	}
	action := ssa.UnchangedAction
	switch {
	case before == nil:
		action = ssa.CreatedAction
	case obj.GetResourceVersion() != before.GetResourceVersion():
		action = ssa.ConfiguredAction
	}
	if action != ssa.UnchangedAction {
		driftCorrections.WithLabelValues(k.app).Inc()
		e.log.Info("reverted drift", "application", k.app, "object", k.obj.String(), "action", string(action))
		if obj, ok, _ := e.apps.GetStore().GetByKey(e.cfg.Namespace + "/" + k.app); ok {
			e.event(obj.(*unstructured.Unstructured), false, "DriftReverted", "reverted a change to "+k.obj.String())
		}
	}
	return false
}

// markDrift dry-runs the desired state of a changed object of an
// Application without selfHeal: when the cluster differs from it, the
// object is marked drifted (the Application shows OutOfSync); when it is
// the same again (changed back by hand), the mark goes. Either change asks
// for a status refresh, which needs no Git.
func (e *Engine) markDrift(ctx context.Context, st *appState, k healKey, desired *unstructured.Unstructured) (retry bool) {
	e.mu.Lock()
	app := st.app
	e.mu.Unlock()
	entry, err := e.diffIgnoring(ctx, app, desired.DeepCopy())
	changed := err != nil || (entry.Action != ssa.UnchangedAction && entry.Action != ssa.SkippedAction)
	e.mu.Lock()
	was := st.drifted[k.obj]
	if changed {
		st.drifted[k.obj] = true
	} else {
		delete(st.drifted, k.obj)
	}
	if changed != was {
		st.healthOnly = true
	}
	e.mu.Unlock()
	if changed != was {
		e.queue.AddAfter(k.app, 200*time.Millisecond)
	}
	return err != nil
}
