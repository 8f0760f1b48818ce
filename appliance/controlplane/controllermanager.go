package controlplane

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/fjord-dev/fjord/appliance/component"
)

// ControllerManager is kube-controller-manager, in-process.
type ControllerManager struct {
	cfg    Config
	rt     Runtime
	cancel context.CancelFunc
	errc   chan error
	done   chan struct{}
}

var _ component.Component = (*ControllerManager)(nil)

// NewControllerManager returns the controller-manager component.
func NewControllerManager(cfg Config, rt Runtime) *ControllerManager {
	return &ControllerManager{cfg: cfg, rt: rt, errc: make(chan error, 1)}
}

// Name implements component.Component.
func (c *ControllerManager) Name() string { return "kube-controller-manager" }

// Init implements component.Component.
func (c *ControllerManager) Init(context.Context) error { return nil }

func (c *ControllerManager) args() []string {
	p, k := c.rt.PKI, c.rt.Kubeconfigs
	return []string{
		"--kubeconfig=" + k.ControllerManager,
		"--authentication-kubeconfig=" + k.ControllerManager,
		"--authorization-kubeconfig=" + k.ControllerManager,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.cfg.ControllerManagerPort),
		// One node, one controller manager: leader election would only add
		// lease writes every two seconds.
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p.ServiceAccount.Key,
		"--root-ca-file=" + p.CA.Cert,
		"--cluster-signing-cert-file=" + p.CA.Cert,
		"--cluster-signing-key-file=" + p.CA.Key,
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + c.cfg.ClusterCIDR,
		"--service-cluster-ip-range=" + c.cfg.ServiceCIDR,
		"--configure-cloud-routes=false",
		"--profiling=false",
		"--terminated-pod-gc-threshold=1000",
	}
}

// Start builds the controller manager's configuration and runs it.
func (c *ControllerManager) Start(ctx context.Context) error {
	s, err := options.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("creating options: %w", err)
	}
	fss := s.Flags(app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases())
	s.ParsedFlags = &fss
	if err := parseFlags(c.Name(), fss.FlagSets, c.args()); err != nil {
		return err
	}
	if err := setGlobals(); err != nil {
		return err
	}
	config, err := s.Config(ctx, app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases())
	if err != nil {
		return fmt.Errorf("configuring: %w", err)
	}
	completed := config.Complete()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan struct{})
	run(rctx, c.errc, c.done, func(ctx context.Context) error { return app.Run(ctx, completed) })
	return nil
}

// Ready implements component.Component: the controllers start on their own
// once the API server serves, which it does before this component starts.
func (c *ControllerManager) Ready(context.Context) error { return nil }

// Err reports the controller manager ending on its own.
func (c *ControllerManager) Err() <-chan error { return c.errc }

// Stop stops every controller within ctx's deadline.
func (c *ControllerManager) Stop(ctx context.Context) error { return stop(ctx, &c.cancel, c.done) }
