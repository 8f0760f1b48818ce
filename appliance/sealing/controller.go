package sealing

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/watchcache"
)

//go:embed crd-sealedsecret.yaml
var crdYAML []byte

// Event reasons, upstream's words.
const (
	reasonUnsealed     = "Unsealed"
	reasonUnsealFailed = "ErrUnsealFailed"
	reasonUpdateFailed = "ErrUpdateFailed"
	conditionSynced    = "Synced"
)

// Runtime is what the controller needs beyond its configuration section.
type Runtime struct {
	// DataDir holds a marker saying the datastore has a key already.
	DataDir    string
	Kubeconfig string
	// NodeIP is where the HTTP API listens, for the API server's proxy.
	NodeIP net.IP
	Log    *slog.Logger
}

// Controller unseals every SealedSecret of the cluster into its Secret,
// keeps the sealing keys (generating, rotating, importing) and serves
// kubeseal's HTTP API. It is a component of the Fjord server.
type Controller struct {
	cfg Config
	rt  Runtime
	log *slog.Logger

	kube kubernetes.Interface
	dyn  dynamic.Interface
	meta metadata.Interface

	ring     *Ring
	queue    workqueue.TypedRateLimitingInterface[string]
	sealed   cache.SharedIndexInformer
	keys     cache.SharedIndexInformer
	secrets  cache.SharedIndexInformer
	recorder record.EventRecorder
	events   record.EventBroadcaster
	server   *http.Server
	listener net.Listener

	// early delivers the first key, generated during the control plane's
	// start on a first boot (no marker in the data dir).
	early chan keyResult
	// emptied wakes the rotation when the last key left the ring.
	emptied chan struct{}
	// written is the resourceVersion of each Secret as this controller last
	// wrote it, so its own writes are not taken for someone's edit.
	writtenMu sync.Mutex
	written   map[string]string
	// imports are the key Secrets of sealing.import-keys, read at Init.
	imports []*corev1.Secret
	errCh   chan error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ component.Component = (*Controller)(nil)

// New returns the sealed-secrets controller.
func New(cfg Config, rt Runtime) *Controller {
	AcceptV1Data = cfg.AcceptV1Data
	return &Controller{cfg: cfg, rt: rt, log: rt.Log.With("component", "sealing"), ring: NewRing(),
		errCh: make(chan error, 1), emptied: make(chan struct{}, 1), written: map[string]string{}}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "sealing" }

// Init binds the HTTP port early, so a port in use fails before anything runs.
func (c *Controller) Init(context.Context) error {
	addr := net.JoinHostPort(c.rt.NodeIP.String(), strconv.Itoa(c.cfg.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sealing.port: listening on %s: %w", addr, err)
	}
	c.listener = l
	if c.cfg.ImportKeys != "" {
		// Read now, so a bad backup stops the server before anything starts.
		if c.imports, err = ReadKeyFile(c.cfg.ImportKeys); err != nil {
			l.Close()
			return fmt.Errorf("sealing.import-keys: %w", err)
		}
	}
	if _, err := os.Stat(c.marker()); errors.Is(err, fs.ErrNotExist) && c.cfg.ImportKeys == "" {
		// A first boot needs a key; making one (a second or two of CPU for
		// 4096 bits) overlaps the datastore's and API server's start.
		c.early = make(chan keyResult, 1)
		go func() {
			k, err := GenerateKey(c.cfg.KeyBits, c.cfg.KeyTTL, "")
			c.early <- keyResult{k, err}
		}()
	}
	return nil
}

type keyResult struct {
	key *Key
	err error
}

// marker is the file that says the datastore holds a sealing key.
func (c *Controller) marker() string { return filepath.Join(c.rt.DataDir, "sealing-key-stored") }

// Start installs the SealedSecret CRD, imports and loads the keys (making
// the first one when there is none), registers the Service kubeseal
// looks for, and starts the informers, the workers and the HTTP API.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.connect(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.installCRD(ctx); err != nil {
		return err
	}
	tCRD := time.Since(t0)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.events = record.NewBroadcaster()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "sealed-secrets-controller"})
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 5*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "sealedsecrets"})
	// The informers fill their caches while the keys are loaded (or made).
	watchcache.Await(ctx, c.kube.Discovery().RESTClient(), "/apis/"+Group+"/"+Version+"/"+Resource, 2*time.Second)
	c.startInformers(rctx)

	if len(c.imports) > 0 {
		n, err := ImportKeys(ctx, c.kube, c.imports)
		if err != nil {
			return fmt.Errorf("sealing.import-keys: %w", err)
		}
		c.log.Info("imported sealing keys", "file", c.cfg.ImportKeys, "new", n, "in-file", len(c.imports))
	}
	keys, bad, err := ListKeys(ctx, c.kube)
	if err != nil {
		return err
	}
	for _, e := range bad {
		c.log.Error("ignoring a sealing key", "err", e)
	}
	for _, k := range keys {
		c.ring.Add(k)
	}
	keysLoaded.Set(float64(c.ring.Len()))
	if c.ring.Len() == 0 {
		if _, err := c.newKey(ctx); err != nil {
			return err
		}
	}
	if c.early != nil {
		// Keys were there after all (an external datastore, a new data dir).
		go func(ch chan keyResult) { <-ch }(c.early)
		c.early = nil
	}
	if err := os.WriteFile(c.marker(), nil, 0o600); err != nil {
		c.log.Warn("cannot mark the sealing key as stored; the next start makes a spare one", "err", err)
	}
	tKeys := time.Since(t0)
	for range 2 {
		c.wg.Go(func() { c.work(rctx) })
	}
	c.wg.Go(func() { c.rotation(rctx) })
	c.wg.Go(func() { c.registerService(rctx) })
	c.server = &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	c.wg.Go(func() {
		if err := c.server.Serve(c.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.errCh <- fmt.Errorf("sealing HTTP API: %w", err)
		}
	})
	c.log.Info("sealed-secrets controller started", "keys", c.ring.Len(), "active-key", c.ring.Active().Fingerprint(),
		"api", "http://"+c.listener.Addr().String(), "crd", tCRD.Round(time.Millisecond), "keys-took", tKeys.Round(time.Millisecond))
	return nil
}

// Ready waits for the informers' first lists. The GitOps engine, started
// next, needs only the CRD, which Start installed (StartSuffices), so the
// lists overlap the engine's own start.
func (c *Controller) Ready(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.sealed.HasSynced, c.keys.HasSynced, c.secrets.HasSynced) {
		return errors.New("sealing: caches did not sync")
	}
	return nil
}

// StartSuffices implements component.StartSuffices.
func (c *Controller) StartSuffices() {}

// Err implements component.Component.
func (c *Controller) Err() <-chan error { return c.errCh }

// Stop stops the HTTP API and the workers.
func (c *Controller) Stop(ctx context.Context) error {
	var err error
	if c.server != nil {
		err = c.server.Shutdown(ctx)
	} else if c.listener != nil {
		c.listener.Close()
	}
	if c.cancel != nil {
		c.cancel()
		c.queue.ShutDown()
		c.wg.Wait()
	}
	if c.events != nil {
		c.events.Shutdown()
	}
	return err
}

// connect builds the clients from the kubeconfig.
func (c *Controller) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.rt.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.rt.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.WarningHandler = rest.NoWarnings{}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	if c.kube, err = kubernetes.NewForConfigAndClient(cfg, httpClient); err != nil {
		return err
	}
	if c.dyn, err = dynamic.NewForConfigAndClient(cfg, httpClient); err != nil {
		return err
	}
	c.meta, err = metadata.NewForConfigAndClient(cfg, httpClient)
	return err
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD applies the SealedSecret CRD and waits until it is served.
func (c *Controller) installCRD(ctx context.Context) error {
	u := &unstructured.Unstructured{}
	if err := sigsyaml.Unmarshal(crdYAML, &u.Object); err != nil {
		return fmt.Errorf("the embedded SealedSecret CRD: %w", err)
	}
	crds := c.dyn.Resource(crdGVR)
	if _, err := crds.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "fjord", Force: true}); err != nil {
		return fmt.Errorf("installing the SealedSecret CRD: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		live, err := crds.Get(ctx, u.GetName(), metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
			for _, cd := range conds {
				m, _ := cd.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the SealedSecret CRD was not established within 1m")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newKey makes a key, stores it as a Secret and puts it in the ring.
func (c *Controller) newKey(ctx context.Context) (*Key, error) {
	start := time.Now()
	var k *Key
	var err error
	if c.early != nil {
		r := <-c.early
		c.early = nil
		k, err = r.key, r.err
	} else {
		k, err = GenerateKey(c.cfg.KeyBits, c.cfg.KeyTTL, "")
	}
	if err != nil {
		return nil, fmt.Errorf("generating a sealing key: %w", err)
	}
	s, err := c.kube.CoreV1().Secrets(KeyNamespace).Create(ctx, KeySecret(k), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("storing the sealing key: %w", err)
	}
	k.Secret = s.Name
	c.ring.Add(k)
	keysLoaded.Set(float64(c.ring.Len()))
	keysGenerated.Inc()
	c.log.Info("new sealing key", "secret", KeyNamespace+"/"+s.Name, "fingerprint", k.Fingerprint(),
		"bits", c.cfg.KeyBits, "took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// rotation makes a new key whenever the newest one is KeyRotationPeriod
// old, and at once when the ring lost every key (all deleted or relabelled
// compromised), rotation on or off.
func (c *Controller) rotation(ctx context.Context) {
	due := func() time.Duration {
		k := c.ring.Active()
		switch {
		case k == nil:
			return 0
		case c.cfg.KeyRotationPeriod == 0:
			return time.Duration(math.MaxInt64)
		}
		return time.Until(k.Cert.NotBefore.Add(c.cfg.KeyRotationPeriod))
	}
	for {
		timer := time.NewTimer(max(due(), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.emptied:
			timer.Stop()
		case <-timer.C:
		}
		if due() > 0 {
			continue // a newer key arrived meanwhile (imported or made by hand)
		}
		if _, err := c.newKey(ctx); err != nil {
			c.log.Error("key rotation failed; retrying in 1m", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

// startInformers watches SealedSecrets, key Secrets, and the metadata of
// every Secret (a deleted or edited Secret is unsealed again).
func (c *Controller) startInformers(ctx context.Context) {
	c.sealed = dynamicinformer.NewFilteredDynamicInformer(c.dyn, GVR, "", 10*time.Minute, cache.Indexers{}, nil).Informer()
	c.sealed.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*unstructured.Unstructured), cur.(*unstructured.Unstructured)
			// Status updates (ours) are not work; a resync is.
			if o.GetResourceVersion() == n.GetResourceVersion() || o.GetGeneration() != n.GetGeneration() ||
				!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) || !maps.Equal(o.GetLabels(), n.GetLabels()) {
				c.enqueue(cur)
			}
		},
	})

	kf := informers.NewSharedInformerFactoryWithOptions(c.kube, 0, informers.WithNamespace(KeyNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = keySelector }))
	c.keys = kf.Core().V1().Secrets().Informer()
	c.keys.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.keyChanged(obj, false) },
		UpdateFunc: func(_, obj any) { c.keyChanged(obj, false) },
		DeleteFunc: func(obj any) { c.keyChanged(obj, true) },
	})

	c.secrets = metadatainformer.NewFilteredMetadataInformer(c.meta, corev1.SchemeGroupVersion.WithResource("secrets"),
		"", 10*time.Minute, cache.Indexers{}, func(o *metav1.ListOptions) {
			// Service-account tokens are never unsealed.
			o.FieldSelector = fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()
		}).Informer()
	c.secrets.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.secretChanged(obj, false) },
		DeleteFunc: func(obj any) { c.secretChanged(obj, true) },
	})

	c.wg.Go(func() { c.sealed.Run(ctx.Done()) })
	c.wg.Go(func() { c.keys.Run(ctx.Done()) })
	c.wg.Go(func() { c.secrets.Run(ctx.Done()) })
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// keyChanged keeps the ring equal to the key Secrets. A new key requeues
// every SealedSecret that is not synced: it may be the one they need.
func (c *Controller) keyChanged(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	if deleted || s.Labels[KeyLabel] != keyActive {
		c.ring.Remove(s.Name)
		keysLoaded.Set(float64(c.ring.Len()))
		c.log.Warn("sealing key removed", "secret", s.Namespace+"/"+s.Name)
		if c.ring.Len() == 0 {
			select {
			case c.emptied <- struct{}{}:
			default:
			}
		}
		return
	}
	k, err := ParseKeySecret(s)
	if err != nil {
		c.log.Error("ignoring a sealing key", "err", err)
		return
	}
	if !c.ring.Add(k) {
		return
	}
	keysLoaded.Set(float64(c.ring.Len()))
	c.log.Info("sealing key added", "secret", s.Namespace+"/"+s.Name, "fingerprint", k.Fingerprint())
	for _, item := range c.sealed.GetStore().List() {
		u := item.(*unstructured.Unstructured)
		if !synced(u) {
			c.enqueue(u)
		}
	}
}

// secretChanged requeues the SealedSecret of the same name when its Secret
// was deleted or changed by someone else, so the Secret is put back. An
// edit is requeued with backoff: a controller that keeps editing the same
// Secret does not make this one spin.
func (c *Controller) secretChanged(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	key := m.Namespace + "/" + m.Name
	if _, exists, _ := c.sealed.GetStore().GetByKey(key); !exists {
		return
	}
	c.writtenMu.Lock()
	ours := c.written[key] == m.ResourceVersion
	if deleted {
		delete(c.written, key)
	}
	c.writtenMu.Unlock()
	switch {
	case deleted:
		c.queue.Add(key)
	case !ours:
		c.queue.AddRateLimited(key)
	}
}

// wrote records the resourceVersion of a Secret this controller wrote.
func (c *Controller) wrote(s *corev1.Secret) {
	c.writtenMu.Lock()
	c.written[s.Namespace+"/"+s.Name] = s.ResourceVersion
	c.writtenMu.Unlock()
}

// synced reports whether a SealedSecret's Synced condition is True for its
// current generation.
func synced(u *unstructured.Unstructured) bool {
	gen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if gen != u.GetGeneration() {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cd := range conds {
		if m, ok := cd.(map[string]any); ok && m["type"] == conditionSynced {
			return m["status"] == string(corev1.ConditionTrue)
		}
	}
	return false
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		if err := c.sync(ctx, key); err != nil {
			if apierrors.IsConflict(err) {
				c.log.Debug("status written from a stale copy; retrying", "sealedsecret", key)
			} else {
				c.log.Warn("unsealing will be retried", "sealedsecret", key, "err", err)
			}
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// failure is why a SealedSecret did not sync: the event reason, and whether
// a retry can help (the API server failed, not the input).
type failure struct {
	reason string
	retry  bool
	err    error
}

func (f *failure) Error() string { return f.err.Error() }

func failed(reason string, retry bool, format string, args ...any) *failure {
	return &failure{reason: reason, retry: retry, err: fmt.Errorf(format, args...)}
}

// sync unseals one SealedSecret and records the outcome in its status and
// events. It returns an error only for what a retry can fix.
func (c *Controller) sync(ctx context.Context, key string) error {
	item, exists, err := c.sealed.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil // deleted: the garbage collector removes the Secret it owned
	}
	u := item.(*unstructured.Unstructured).DeepCopy()
	var f *failure
	if ss, err := FromUnstructured(u.Object); err != nil {
		f = failed(reasonUnsealFailed, false, "%v", err)
	} else {
		f = c.apply(ctx, ss)
	}
	if f == nil {
		unsealed.WithLabelValues("ok").Inc()
	} else {
		unsealed.WithLabelValues("failed").Inc()
	}
	if err := c.setStatus(ctx, u, f); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if f != nil && f.retry {
		return f
	}
	return nil
}

// apply unseals ss and creates or updates its Secret, with upstream's
// rules: a Secret that ss does not control is left alone unless it is
// annotated managed (taken over) or patch (keys merged in).
func (c *Controller) apply(ctx context.Context, ss *SealedSecret) *failure {
	want, err := Unseal(ss, c.ring.Private())
	if err != nil {
		c.recorder.Eventf(ref(ss), corev1.EventTypeWarning, reasonUnsealFailed, "Failed to unseal: %v", err)
		return failed(reasonUnsealFailed, false, "%v", err)
	}
	secrets := c.kube.CoreV1().Secrets(ss.Namespace)
	live, err := secrets.Get(ctx, ss.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		created, err := secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: "sealed-secrets-controller"})
		if err != nil {
			c.recorder.Event(ref(ss), corev1.EventTypeWarning, reasonUpdateFailed, err.Error())
			return failed(reasonUpdateFailed, true, "creating Secret %s/%s: %v", ss.Namespace, ss.Name, err)
		}
		c.wrote(created)
		c.recorder.Event(ref(ss), corev1.EventTypeNormal, reasonUnsealed, "SealedSecret unsealed successfully")
		c.log.Info("unsealed", "sealedsecret", ss.Namespace+"/"+ss.Name, "keys", len(want.Data))
		return nil
	}
	if err != nil {
		return failed(reasonUpdateFailed, true, "reading Secret %s/%s: %v", ss.Namespace, ss.Name, err)
	}
	owned := metav1.IsControlledBy(live, ss)
	managed := live.Annotations[ManagedAnnotation] == "true"
	patch := live.Annotations[PatchAnnotation] == "true"
	if !owned && !managed && !patch {
		msg := fmt.Sprintf("Resource %q already exists and is not managed by SealedSecret", live.Name)
		c.recorder.Event(ref(ss), corev1.EventTypeWarning, reasonUpdateFailed, msg)
		return failed(reasonUpdateFailed, false, "failed update: %s", msg)
	}
	next := live.DeepCopy()
	if patch {
		if next.Data == nil {
			next.Data = map[string][]byte{}
		}
		maps.Copy(next.Data, want.Data)
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		maps.Copy(next.Labels, want.Labels)
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		maps.Copy(next.Annotations, want.Annotations)
		if managed {
			next.OwnerReferences = want.OwnerReferences
		}
	} else {
		next.Data, next.Labels, next.Annotations = want.Data, want.Labels, want.Annotations
		next.OwnerReferences = want.OwnerReferences
	}
	next.Type = want.Type
	if want.Immutable != nil {
		next.Immutable = want.Immutable
	}
	if apiequality.Semantic.DeepEqual(live, next) {
		return nil
	}
	updated, err := secrets.Update(ctx, next, metav1.UpdateOptions{FieldManager: "sealed-secrets-controller"})
	if err != nil {
		msg := err.Error()
		if live.Immutable != nil && *live.Immutable && apierrors.IsInvalid(err) {
			msg = fmt.Sprintf("Secret %s/%s is immutable: delete it to let the SealedSecret recreate it", ss.Namespace, ss.Name)
			c.recorder.Event(ref(ss), corev1.EventTypeWarning, reasonUpdateFailed, msg)
			return failed(reasonUpdateFailed, false, "%s", msg)
		}
		c.recorder.Event(ref(ss), corev1.EventTypeWarning, reasonUpdateFailed, msg)
		return failed(reasonUpdateFailed, true, "updating Secret %s/%s: %v", ss.Namespace, ss.Name, err)
	}
	c.wrote(updated)
	c.recorder.Event(ref(ss), corev1.EventTypeNormal, reasonUnsealed, "SealedSecret unsealed successfully")
	c.log.Info("unsealed", "sealedsecret", ss.Namespace+"/"+ss.Name, "keys", len(want.Data))
	return nil
}

// ref is what events about ss point at.
func ref(ss *SealedSecret) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: GVK.GroupVersion().String(), Kind: Kind,
		Namespace: ss.Namespace, Name: ss.Name, UID: ss.UID, ResourceVersion: ss.ResourceVersion}
}

// setStatus writes the Synced condition and observedGeneration when they
// changed. The message is the unseal error, which never holds a value.
func (c *Controller) setStatus(ctx context.Context, u *unstructured.Unstructured, result *failure) error {
	status, message, reason := corev1.ConditionTrue, "", ""
	if result != nil {
		status, message, reason = corev1.ConditionFalse, result.Error(), result.reason
	}
	st := &Status{}
	if raw, ok := u.Object["status"].(map[string]any); ok {
		if ss, err := FromUnstructured(map[string]any{"status": raw}); err == nil && ss.Status != nil {
			st = ss.Status
		}
	}
	now := metav1.Now()
	var cond *Condition
	for i := range st.Conditions {
		if st.Conditions[i].Type == conditionSynced {
			cond = &st.Conditions[i]
		}
	}
	if cond == nil {
		st.Conditions = append(st.Conditions, Condition{Type: conditionSynced})
		cond = &st.Conditions[len(st.Conditions)-1]
	}
	if cond.Status == status && cond.Message == message && cond.Reason == reason && st.ObservedGeneration == u.GetGeneration() {
		return nil
	}
	if cond.Status != status {
		cond.LastTransitionTime = now
	}
	cond.Status, cond.Message, cond.Reason, cond.LastUpdateTime = status, message, reason, now
	st.ObservedGeneration = u.GetGeneration()
	obj, err := (&SealedSecret{Status: st}).ToUnstructured()
	if err != nil {
		return err
	}
	u.Object["status"] = obj["status"]
	_, err = c.dyn.Resource(GVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "sealed-secrets-controller"})
	return err
}
