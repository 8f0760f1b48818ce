// Package dns is the cluster DNS: CoreDNS run as a library inside the fjord
// process, listening on the node IP, and the kube-system/kube-dns Service
// whose ClusterIP the kubelet hands to pods, pointed at it by an
// EndpointSlice. kube-proxy carries pods' queries from the ClusterIP on port
// 53 to CoreDNS's port on the node.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/coredns/caddy"
	mdns "github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	// The plugins the Corefile uses register themselves with caddy.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"

	"github.com/fjord-dev/fjord/appliance/component"
)

// serverType is the caddy server type core/dnsserver registers.
const serverType = "dns"

// Server is the cluster DNS component.
type Server struct {
	cfg      Config
	rt       Runtime
	log      *slog.Logger
	corefile string
	errc     chan error
	done     chan struct{} // closed when registerService returns

	mu      sync.Mutex
	inst    *caddy.Instance
	cancel  context.CancelFunc
	stopped bool
}

var _ component.Component = (*Server)(nil)

// New returns the cluster DNS component. With cfg.DisableDNS every method
// does nothing.
func New(cfg Config, rt Runtime) *Server {
	if rt.Log == nil {
		rt.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, rt: rt, log: rt.Log.With("component", "coredns"),
		errc: make(chan error, 1), done: make(chan struct{})}
}

// Name implements component.Component.
func (s *Server) Name() string { return "coredns" }

// Init renders the Corefile; it binds nothing.
func (s *Server) Init(context.Context) error {
	if s.cfg.DisableDNS {
		return nil
	}
	var errs []error
	if s.rt.NodeIP == nil {
		errs = append(errs, errors.New("no node IP"))
	}
	if s.rt.ClusterDomain == "" {
		errs = append(errs, errors.New("no cluster domain"))
	}
	if s.rt.Kubeconfig == "" {
		errs = append(errs, errors.New("no kubeconfig"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("coredns: %w", err)
	}
	resolv := HostResolvConf
	if len(Nameservers(resolv)) == 0 {
		s.log.Warn("no nameserver in the host's resolver configuration: pods resolve cluster names only", "file", resolv)
		resolv = ""
	}
	s.corefile = Corefile(CorefileParams{NodeIP: s.rt.NodeIP, Port: s.cfg.ClusterDNSPort,
		ClusterDomain: s.rt.ClusterDomain, Kubeconfig: s.rt.Kubeconfig, ResolvConf: resolv})
	return nil
}

// Start starts CoreDNS, which returns once it listens (its kubernetes plugin
// waits up to 5s for its caches first), and registers the kube-dns Service
// in the background.
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.DisableDNS {
		return nil
	}
	kube, err := s.connect()
	if err != nil {
		return err
	}
	initGlobals(s.rt.Log)
	input := caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(s.corefile), ServerTypeName: serverType}
	var inst *caddy.Instance
	err = keepKlog(func() (err error) {
		inst, err = caddy.Start(input)
		return err
	})
	if err != nil {
		if inst != nil {
			inst.Stop()
			inst.ShutdownCallbacks()
		}
		return fmt.Errorf("starting coredns on %s: %w", s.addr(), err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.inst, s.cancel = inst, cancel
	s.mu.Unlock()
	go s.watch(inst)
	go func() {
		defer close(s.done)
		s.registerService(rctx, kube)
	}()
	s.log.Info("serving cluster DNS", "addr", s.addr(), "domain", s.rt.ClusterDomain, "cluster-dns", s.cfg.ClusterDNS)
	return nil
}

// watch reports the end of CoreDNS's servers when Stop did not ask for it.
func (s *Server) watch(inst *caddy.Instance) {
	inst.Wait()
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if !stopped {
		s.errc <- fmt.Errorf("coredns: its servers on %s stopped", s.addr())
	}
}

// Ready polls until CoreDNS answers kubernetes.default.svc.<domain> with an
// A record, which shows it serves and its Kubernetes caches are filled.
func (s *Server) Ready(ctx context.Context) error {
	if s.cfg.DisableDNS {
		return nil
	}
	name := mdns.Fqdn("kubernetes.default.svc." + s.rt.ClusterDomain)
	client := &mdns.Client{Net: "udp", Timeout: time.Second}
	var last error
	for {
		q := new(mdns.Msg)
		q.SetQuestion(name, mdns.TypeA)
		r, _, err := client.ExchangeContext(ctx, q, s.addr())
		switch {
		case err != nil:
			last = err
		case r.Rcode != mdns.RcodeSuccess:
			last = fmt.Errorf("rcode %s", mdns.RcodeToString[r.Rcode])
		case !hasA(r):
			last = errors.New("no A record")
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("coredns: %s at %s: %w (last answer: %v)", name, s.addr(), ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func hasA(r *mdns.Msg) bool {
	for _, rr := range r.Answer {
		if _, ok := rr.(*mdns.A); ok {
			return true
		}
	}
	return false
}

// Err implements component.Component.
func (s *Server) Err() <-chan error { return s.errc }

// Stop ends the Service registration, stops CoreDNS's servers and then its
// plugins (the kubernetes plugin's informers, forward's connections).
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	inst, cancel := s.inst, s.cancel
	s.inst, s.cancel, s.stopped = nil, nil, true
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("stopping coredns: %w", ctx.Err())
		}
	}
	if inst == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		inst.Stop() // logs its own errors and returns nil
		done <- errors.Join(inst.ShutdownCallbacks()...)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("stopping coredns: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping coredns: %w", ctx.Err())
	}
}

func (s *Server) addr() string {
	return net.JoinHostPort(s.rt.NodeIP.String(), strconv.Itoa(s.cfg.ClusterDNSPort))
}

// connect builds the client the Service is registered with.
func (s *Server) connect() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.rt.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("coredns: reading %s: %w", s.rt.Kubeconfig, err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("coredns: %w", err)
	}
	return kube, nil
}
