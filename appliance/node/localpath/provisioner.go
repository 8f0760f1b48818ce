// Package localpath is the local-path StorageClass k3s users expect: the
// cluster's default class, whose claims become directories on this node's
// disk, provisioned inside the fjord process.
package localpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/fjord-dev/fjord/appliance/component"
)

// Runtime is what the provisioner needs beyond its configuration section.
type Runtime struct {
	// DataDir holds the storage directory unless local-storage-path is set.
	DataDir    string
	Kubeconfig string
	// NodeName is the node the volumes are on; it must equal the node's
	// kubernetes.io/hostname label, which the volumes' node affinity names.
	NodeName string
	Log      *slog.Logger
}

// Provisioner makes and removes the volumes of the local-path StorageClass
// and installs that class. It is a component of the Fjord server; with
// disable-local-storage set every method of the lifecycle does nothing, so
// the server may list it unconditionally.
type Provisioner struct {
	cfg Config
	rt  Runtime
	log *slog.Logger
	dir string

	kube kubernetes.Interface
	// classReady is closed once the StorageClass exists.
	classReady chan struct{}
	errCh      chan error
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

var (
	_ component.Component    = (*Provisioner)(nil)
	_ controller.Provisioner = (*Provisioner)(nil)
)

// New returns the local-path provisioner. It does no I/O.
func New(cfg Config, rt Runtime) *Provisioner {
	return &Provisioner{cfg: cfg, rt: rt, log: rt.Log.With("component", "local-path"), dir: cfg.dir(rt.DataDir),
		classReady: make(chan struct{}), errCh: make(chan error, 1)}
}

// Name implements component.Component.
func (p *Provisioner) Name() string { return "local-path" }

// Init makes the storage directory (0700: pods reach their volume through
// the kubelet's bind mount, never through this directory) and checks that
// it is writable, so a read-only or foreign-owned path stops the server
// before anything runs rather than failing each claim later.
func (p *Provisioner) Init(context.Context) error {
	if p.cfg.DisableLocalStorage {
		return nil
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("local-storage-path: making %s: %w", p.dir, err)
	}
	f, err := os.CreateTemp(p.dir, ".fjord-write-test-*")
	if err != nil {
		return fmt.Errorf("local-storage-path: %s is not writable: %w", p.dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("local-storage-path: cleaning up in %s: %w", p.dir, err)
	}
	return nil
}

// Start connects to the API server, installs the StorageClass in the
// background (a fresh cluster may not serve it yet) and runs the
// provision controller until Stop.
func (p *Provisioner) Start(ctx context.Context) error {
	if p.cfg.DisableLocalStorage {
		return nil
	}
	if err := p.connect(); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	// The library logs through klog.FromContext; this puts its lines, and
	// the events it logs, in our handler with our component key.
	rctx = klog.NewContext(rctx, logr.FromSlogHandler(p.log.Handler()))

	// The library's event broadcaster stops with rctx (record.WithContext).
	var workers sync.WaitGroup
	ctrl := controller.NewProvisionController(rctx, p.kube, ProvisionerName, p,
		// One node, one process: nothing to elect, and the library's
		// elector exits the process when it loses the lease.
		controller.LeaderElection(false),
		// Retry a failed claim forever (backing off to ~16m): freeing disk
		// space should be enough to get a pending claim provisioned.
		controller.FailedProvisionThreshold(0),
		controller.Threadiness(2),
	)
	// Run returns when rctx ends, but its workers may still be finishing.
	ctrl.ControllerWaitGroup(&workers)

	p.wg.Go(func() { p.registerClass(rctx) })
	p.wg.Go(func() {
		ctrl.Run(rctx)
		workers.Wait()
		if rctx.Err() == nil {
			p.errCh <- errors.New("local-path: the provision controller stopped")
		}
	})
	p.log.Info("local-path provisioner started", "dir", p.dir, "node", p.rt.NodeName, "provisioner", ProvisionerName)
	return nil
}

// Ready waits until the local-path StorageClass exists, so claims made by
// the components after this one find their default class.
func (p *Provisioner) Ready(ctx context.Context) error {
	if p.cfg.DisableLocalStorage {
		return nil
	}
	select {
	case <-p.classReady:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local-path: waiting for StorageClass %s: %w", ClassName, ctx.Err())
	}
}

// Stop ends the controller and the StorageClass registration and waits for
// them until ctx's deadline. A volume being provisioned is finished first:
// the library saves the PersistentVolume with retries that ignore ctx.
func (p *Provisioner) Stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the local-path provisioner: %w", ctx.Err())
	}
}

// Err implements component.Component.
func (p *Provisioner) Err() <-chan error { return p.errCh }

// connect builds the client from the kubeconfig.
func (p *Provisioner) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", p.rt.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.rt.Kubeconfig, err)
	}
	cfg.UserAgent = "fjord/local-path"
	cfg.WarningHandler = rest.NoWarnings{}
	if p.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("local-path: API client: %w", err)
	}
	return nil
}
