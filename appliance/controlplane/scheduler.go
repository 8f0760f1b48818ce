package controlplane

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/fjord-dev/fjord/appliance/component"
)

// Scheduler is kube-scheduler, in-process.
type Scheduler struct {
	cfg    Config
	rt     Runtime
	cancel context.CancelFunc
	errc   chan error
	done   chan struct{}
}

var _ component.Component = (*Scheduler)(nil)

// NewScheduler returns the scheduler component.
func NewScheduler(cfg Config, rt Runtime) *Scheduler {
	return &Scheduler{cfg: cfg, rt: rt, errc: make(chan error, 1)}
}

// Name implements component.Component.
func (s *Scheduler) Name() string { return "kube-scheduler" }

// Init implements component.Component.
func (s *Scheduler) Init(context.Context) error { return nil }

func (s *Scheduler) args() []string {
	k := s.rt.Kubeconfigs
	return []string{
		"--kubeconfig=" + k.Scheduler,
		"--authentication-kubeconfig=" + k.Scheduler,
		"--authorization-kubeconfig=" + k.Scheduler,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(s.cfg.SchedulerPort),
		"--leader-elect=false",
		"--profiling=false",
	}
}

// Start sets the scheduler up like kube-scheduler does and runs it.
func (s *Scheduler) Start(ctx context.Context) error {
	opts := options.NewOptions()
	if err := parseFlags(s.Name(), opts.Flags.FlagSets, s.args()); err != nil {
		return err
	}
	if err := setGlobals(); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cc, sched, err := app.Setup(rctx, opts)
	if err != nil {
		cancel()
		return fmt.Errorf("setting up: %w", err)
	}
	s.cancel = cancel
	s.done = make(chan struct{})
	run(rctx, s.errc, s.done, func(ctx context.Context) error { return app.Run(ctx, cc, sched) })
	return nil
}

// Ready implements component.Component.
func (s *Scheduler) Ready(context.Context) error { return nil }

// Err reports the scheduler ending on its own.
func (s *Scheduler) Err() <-chan error { return s.errc }

// Stop stops the scheduler within ctx's deadline.
func (s *Scheduler) Stop(ctx context.Context) error { return stop(ctx, &s.cancel, s.done) }
