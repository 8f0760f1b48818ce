package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/fjord-dev/fjord/appliance/component"
)

// Controllers are the node's small controllers: LoadBalancer Services get
// the node IP (k3s's ServiceLB habit, without its DaemonSet: kube-proxy
// already answers on the node IP for the Service's ports), and a pod whose
// image is in no archive gets an event saying where archives go.
type Controllers struct {
	rt       Runtime
	reserved []int32 // Fjord's own ports, never given to a LoadBalancer
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
	synced   chan struct{}
}

var _ component.Component = (*Controllers)(nil)

// NewControllers returns the node controllers; reserved are ports of the
// node IP that Fjord serves itself (API server, kubelet).
func NewControllers(rt Runtime, reserved ...int) *Controllers {
	c := &Controllers{rt: rt, log: rt.Log.With("component", "servicelb")}
	for _, p := range reserved {
		c.reserved = append(c.reserved, int32(p))
	}
	return c
}

// Name implements component.Component.
func (c *Controllers) Name() string { return "node-controllers" }

// Init implements component.Component.
func (c *Controllers) Init(context.Context) error { return nil }

// Start starts the informers and workers.
func (c *Controllers) Start(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.rt.Kubeconfigs.Admin)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.done, c.synced = cancel, make(chan struct{}), make(chan struct{})
	factory := informers.NewSharedInformerFactory(kube, 10*time.Minute)
	services := factory.Core().V1().Services()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, _ = services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }})

	broadcaster := record.NewBroadcaster(record.WithContext(rctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "fjord-node", Host: c.rt.NodeName})
	hints := &imageHints{recorder: recorder, dir: PathsFor(c.rt.DataDir).Images, seen: map[string]bool{}}
	pods := factory.Core().V1().Pods()
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: hints.check, UpdateFunc: func(_, n any) { hints.check(n) }})

	factory.Start(rctx.Done())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !cache.WaitForCacheSync(rctx.Done(), services.Informer().HasSynced, pods.Informer().HasSynced) {
			return
		}
		close(c.synced)
		for c.processNext(rctx, queue, services.Lister(), kube) {
		}
	}()
	go func() {
		<-rctx.Done()
		queue.ShutDown()
		factory.Shutdown()
		broadcaster.Shutdown()
		wg.Wait()
		close(c.done)
	}()
	return nil
}

func (c *Controllers) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string],
	lister listersv1.ServiceLister, kube kubernetes.Interface) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := lister.Services(ns).Get(name)
	if err != nil {
		q.Forget(key) // deleted
		return true
	}
	want := c.loadBalancerStatus(svc)
	if equalIngress(svc.Status.LoadBalancer.Ingress, want) {
		q.Forget(key)
		return true
	}
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = want
	if _, err := kube.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "fjord-servicelb"}); err != nil {
		c.log.Warn("updating a LoadBalancer's status; will retry", "service", key, "err", err)
		q.AddRateLimited(key)
		return true
	}
	if len(want) > 0 {
		c.log.Info("LoadBalancer Service answers on the node IP", "service", key, "ip", c.rt.NodeIP.String())
	}
	q.Forget(key)
	return true
}

// loadBalancerStatus is the node IP for a LoadBalancer Service of no other
// class whose ports are not Fjord's own, and nothing otherwise.
func (c *Controllers) loadBalancerStatus(svc *corev1.Service) []corev1.LoadBalancerIngress {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
		return nil
	}
	for _, p := range svc.Spec.Ports {
		if slices.Contains(c.reserved, p.Port) {
			c.log.Warn("LoadBalancer Service left pending: its port is one Fjord serves on the node IP",
				"service", svc.Namespace+"/"+svc.Name, "port", p.Port)
			return nil
		}
	}
	return []corev1.LoadBalancerIngress{{IP: c.rt.NodeIP.String(), IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}
}

func ptrTo[T any](v T) *T { return &v }

func equalIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname {
			return false
		}
	}
	return true
}

// Ready waits for the informers' first list.
func (c *Controllers) Ready(ctx context.Context) error {
	select {
	case <-c.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err implements component.Component.
func (c *Controllers) Err() <-chan error { return nil }

// Stop implements component.Component.
func (c *Controllers) Stop(ctx context.Context) error { return stopWait(ctx, &c.cancel, c.done) }

// imageHints tells, once per pod and image, where images come from when a
// pull fails: no registry is reachable from these nodes.
type imageHints struct {
	recorder record.EventRecorder
	dir      string
	mu       sync.Mutex
	seen     map[string]bool
}

func (h *imageHints) check(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, st := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		w := st.State.Waiting
		if w == nil || (w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff" && w.Reason != "ErrImageNeverPull") {
			continue
		}
		key := string(pod.UID) + "/" + st.Image
		h.mu.Lock()
		done := h.seen[key]
		h.seen[key] = true
		h.mu.Unlock()
		if done {
			continue
		}
		h.recorder.Eventf(pod, corev1.EventTypeWarning, "ImageNotInArchive",
			"image %s is in no imported archive and no registry is reachable: put its archive in %s or run `fjord images import FILE`",
			st.Image, h.dir)
	}
}
