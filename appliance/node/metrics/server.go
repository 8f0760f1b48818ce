package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"sigs.k8s.io/metrics-server/cmd/metrics-server/app/options"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/bootstrap"
)

const (
	// MetricResolution is how often the kubelet is scraped: the interval of
	// metrics-server's manifests (its binary defaults to 60s), and what the
	// HorizontalPodAutoscaler's 15s sync period expects.
	MetricResolution = 15 * time.Second
	// kubeletTimeout bounds one scrape; metrics-server wants it below 90%
	// of the resolution.
	kubeletTimeout = 10 * time.Second
	// certCheckPeriod is how often the serving certificate's expiry is
	// checked while running.
	certCheckPeriod = 24 * time.Hour
	// authConfigMap is where the API server publishes its client CA and the
	// front proxy's request-header settings for aggregated servers.
	authConfigMap = "extension-apiserver-authentication"
)

// Server is metrics-server inside the fjord process: it scrapes the
// kubelet's resource metrics every MetricResolution and serves
// metrics.k8s.io/v1beta1 on the node IP behind the APIService it registers.
// When the configuration disables it, it only removes what it registered.
type Server struct {
	cfg Config
	rt  Runtime
	log *slog.Logger

	pair     bootstrap.KeyPair
	caBundle []byte
	listener net.Listener
	reg      registration

	serving     chan struct{} // closed once the server accepts connections
	servingOnce sync.Once
	done        chan struct{} // closed when run returns; runErr is set then
	runErr      error
	errCh       chan error
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

var (
	_ component.Component     = (*Server)(nil)
	_ component.StartSuffices = (*Server)(nil)
)

// New returns the metrics-server component.
func New(cfg Config, rt Runtime) *Server {
	return &Server{cfg: cfg, rt: rt, log: rt.Log.With("component", "metrics-server"), pair: servingPair(rt.DataDir),
		serving: make(chan struct{}), done: make(chan struct{}), errCh: make(chan error, 1)}
}

// Name implements component.Component.
func (s *Server) Name() string { return "metrics-server" }

// StartSuffices implements component.StartSuffices: nothing in the
// appliance waits for resource metrics.
func (s *Server) StartSuffices() {}

// Init issues the serving certificate from Fjord's CA when it is missing,
// stale or does not cover the node IP, and binds the port, so a clash fails
// before anything runs.
func (s *Server) Init(context.Context) error {
	if s.cfg.DisableMetricsServer {
		return nil
	}
	if s.rt.NodeIP == nil || s.rt.NodeIP.IsUnspecified() {
		return errors.New("metrics-server needs the node IP")
	}
	issued, err := ensureServingCert(s.pair, s.rt.PKI.CA, s.rt.NodeIP, time.Now())
	if err != nil {
		return fmt.Errorf("metrics-server serving certificate: %w", err)
	}
	if issued {
		s.log.Info("issued the metrics-server serving certificate", "cert", s.pair.Cert)
	}
	if s.caBundle, err = os.ReadFile(s.rt.PKI.CA.Cert); err != nil {
		return fmt.Errorf("reading CA certificate: %w", err)
	}
	addr := net.JoinHostPort(s.rt.NodeIP.String(), strconv.Itoa(s.cfg.MetricsServerPort))
	if s.listener, err = net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("metrics-server-port: listening on %s: %w", addr, err)
	}
	return nil
}

// Start registers metrics.k8s.io in the background and starts the server;
// with the server disabled it removes Fjord's registration instead.
func (s *Server) Start(ctx context.Context) error {
	if err := s.connect(); err != nil {
		return err
	}
	if s.cfg.DisableMetricsServer {
		// A stale APIService breaks discovery and namespace deletion, but
		// failing to remove it must not keep the appliance down.
		if err := s.reg.remove(ctx); err != nil {
			s.log.Warn("removing the metrics.k8s.io registration of the disabled metrics-server", "err", err)
		}
		return nil
	}
	opts, err := s.options()
	if err != nil {
		return fmt.Errorf("metrics-server options: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.run(rctx, opts)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.register(rctx) }()
	go func() { defer s.wg.Done(); s.renewCert(rctx) }()
	return nil
}

func (s *Server) connect() error {
	rc, err := clientcmd.BuildConfigFromFlags("", s.rt.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	rc.UserAgent = "fjord/metrics-server"
	if s.reg.kube, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	if s.reg.agg, err = aggregator.NewForConfig(rc); err != nil {
		return err
	}
	return nil
}

// options sets metrics-server's options as its flags would: serve on the
// bound listener with the CA-signed certificate, delegate authentication and
// authorization to the API server, and scrape the kubelet over verified TLS
// as the API server does (same CA, same client certificate, same address
// preference).
func (s *Server) options() (*options.Options, error) {
	o := options.NewOptions()
	o.MetricResolution = MetricResolution
	o.Kubeconfig = s.rt.Kubeconfig

	o.SecureServing.Listener = s.listener
	o.SecureServing.BindAddress = s.rt.NodeIP
	o.SecureServing.BindPort = s.cfg.MetricsServerPort
	o.SecureServing.ServerCert.CertDirectory = CertDir(s.rt.DataDir)
	o.SecureServing.ServerCert.CertKey = genericoptions.CertKey{CertFile: s.pair.Cert, KeyFile: s.pair.Key}

	// The client CA and request-header settings come from the
	// extension-apiserver-authentication ConfigMap, like any aggregated server.
	o.Authentication.RemoteKubeConfigFile = s.rt.Kubeconfig
	o.Authorization.RemoteKubeConfigFile = s.rt.Kubeconfig

	k := o.KubeletClient
	k.KubeletCAFile = s.rt.PKI.CA.Cert
	k.KubeletClientCertFile = s.rt.PKI.APIServerKubelet.Cert
	k.KubeletClientKeyFile = s.rt.PKI.APIServerKubelet.Key
	k.KubeletPreferredAddressTypes = []string{string(corev1.NodeInternalIP), string(corev1.NodeExternalIP), string(corev1.NodeHostName)}
	k.KubeletUseNodeStatusPort = true // the kubelet's own report of its port; 10250 otherwise
	k.KubeletRequestTimeout = kubeletTimeout

	// Not o.Validate: it also applies the logging options to the process's
	// klog, which cmd has already routed into slog.
	var errs []error
	errs = append(errs, k.Validate()...)
	errs = append(errs, o.GenericServerRunOptions.Validate()...)
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	return o, errors.Join(errs...)
}

// servingHook is the part of metrics-server's (unexported) server that run uses.
type servingHook interface {
	AddPostStartHook(name string, hook genericapiserver.PostStartHookFunc) error
	RunUntil(stopCh <-chan struct{}) error
}

// build turns the options into metrics-server, as its command does
// (ServerConfig, Complete), with Fjord's adjustments in between.
func build(opts *options.Options) (servingHook, error) {
	cfg, err := opts.ServerConfig()
	if err != nil {
		return nil, fmt.Errorf("configuring metrics-server: %w", err)
	}
	// Like kube-apiserver here (--profiling=false): no /debug/pprof.
	cfg.Apiserver.EnableProfiling = false
	cfg.Apiserver.EnableContentionProfiling = false
	useModelNames(cfg)
	srv, err := cfg.Complete()
	if err != nil {
		return nil, fmt.Errorf("building metrics-server: %w", err)
	}
	return srv, nil
}

// run waits for the API server's authentication ConfigMap, builds the
// server and serves until ctx ends. A failure while ctx is live goes to Err.
func (s *Server) run(ctx context.Context, opts *options.Options) {
	err := s.serve(ctx, opts)
	s.listener.Close() // the server closes it too; this covers an early return
	if ctx.Err() == nil {
		if err == nil {
			err = errors.New("metrics-server stopped")
		}
		s.errCh <- err
	} else {
		err = nil
	}
	s.runErr = err
	close(s.done)
}

func (s *Server) serve(ctx context.Context, opts *options.Options) error {
	if err := s.awaitAuthConfig(ctx); err != nil {
		return nil // ctx ended
	}
	srv, err := build(opts)
	if err != nil {
		return err
	}
	// Post-start hooks run once the secure listener serves.
	if err := srv.AddPostStartHook("fjord-serving", func(genericapiserver.PostStartHookContext) error {
		s.servingOnce.Do(func() { close(s.serving) })
		return nil
	}); err != nil {
		return err
	}
	s.log.Info("starting metrics-server", "address", s.listener.Addr().String(), "resolution", MetricResolution)
	if err := srv.RunUntil(ctx.Done()); err != nil {
		return fmt.Errorf("running metrics-server: %w", err)
	}
	return nil
}

// awaitAuthConfig waits until the API server has published both client CAs;
// without the request-header CA metrics-server would refuse to start, and
// the API server writes the ConfigMap only after it reports ready.
func (s *Server) awaitAuthConfig(ctx context.Context) error {
	start := time.Now()
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		cm, err := s.reg.kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, authConfigMap, metav1.GetOptions{})
		if err == nil && cm.Data["client-ca-file"] != "" && cm.Data["requestheader-client-ca-file"] != "" {
			return nil
		}
		if err == nil {
			err = errors.New("client-ca-file or requestheader-client-ca-file is not there yet")
		}
		log := s.log.Debug
		if time.Since(start) > 30*time.Second {
			log = s.log.Warn
		}
		log("waiting for the API server's authentication ConfigMap", "configmap", metav1.NamespaceSystem+"/"+authConfigMap, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// register writes the Service, EndpointSlice and APIService once the server
// serves (an APIService nobody answers makes discovery partial for every
// client), retrying until the API accepts them, then follows the APIService
// until the aggregation layer reports it Available and says so in the log.
func (s *Server) register(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.serving:
	}
	start := time.Now()
	var replaced string
	if !component.Retry(ctx, s.log, "registering metrics.k8s.io", func(ctx context.Context) (err error) {
		replaced, err = s.reg.ensure(ctx, s.rt.NodeIP, s.cfg.MetricsServerPort, s.caBundle)
		return err
	}) {
		return
	}
	if replaced != "" {
		s.log.Warn("took over the metrics.k8s.io APIService; set disable-metrics-server to run another metrics-server", "previous", replaced)
	}
	warned := false
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		ok, why, err := s.reg.available(ctx)
		if ok {
			s.log.Info("metrics.k8s.io is available; kubectl top works once the kubelet has been scraped",
				"apiservice", APIServiceName, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if err != nil {
			why = err.Error()
		}
		if !warned && time.Since(start) > 2*time.Minute {
			s.log.Warn("metrics.k8s.io is not available yet", "apiservice", APIServiceName, "reason", why)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// renewCert re-issues the serving certificate before it expires; the
// server notices the changed files and reloads them.
func (s *Server) renewCert(ctx context.Context) {
	t := time.NewTicker(certCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		issued, err := ensureServingCert(s.pair, s.rt.PKI.CA, s.rt.NodeIP, time.Now())
		switch {
		case err != nil:
			s.log.Error("renewing the metrics-server serving certificate", "err", err)
		case issued:
			s.log.Info("renewed the metrics-server serving certificate", "cert", s.pair.Cert)
		}
	}
}

// Ready returns once the server accepts connections. It does not wait for
// the APIService to be Available nor for the first scrape: the kubelet may
// not have metrics yet; register logs when the API is available.
func (s *Server) Ready(ctx context.Context) error {
	if s.cfg.DisableMetricsServer {
		return nil
	}
	select {
	case <-s.serving:
		return nil
	case <-s.done:
		if s.runErr != nil {
			return s.runErr
		}
		return errors.New("metrics-server stopped before it served")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop shuts the server down and waits for it, at most until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel == nil {
		// Not started: only the listener of Init is held.
		if s.listener != nil {
			s.listener.Close()
		}
		return nil
	}
	s.cancel()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); <-s.done; close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping metrics-server: %w", ctx.Err())
	}
}

// Err implements component.Component.
func (s *Server) Err() <-chan error { return s.errCh }
