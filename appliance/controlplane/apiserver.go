package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/fjord-dev/fjord/appliance/component"
)

// APIServer is kube-apiserver, in-process.
type APIServer struct {
	cfg    Config
	rt     Runtime
	log    *slog.Logger
	cancel context.CancelFunc
	errc   chan error
	done   chan struct{}

	readyzOnce sync.Once
	readyz     *http.Client
	readyzErr  error
}

var _ component.Component = (*APIServer)(nil)

// NewAPIServer returns the API server component.
func NewAPIServer(cfg Config, rt Runtime) *APIServer {
	return &APIServer{cfg: cfg, rt: rt, log: rt.Log.With("component", "kube-apiserver"), errc: make(chan error, 1)}
}

// Name implements component.Component.
func (a *APIServer) Name() string { return "kube-apiserver" }

// Init checks that the API server's port is free, so a clash is one clear
// error instead of a failure deep in the server's start.
func (a *APIServer) Init(context.Context) error {
	addr := net.JoinHostPort(a.rt.BindAddress, strconv.Itoa(a.rt.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("https-listen-port %d: %w", a.rt.Port, err)
	}
	return l.Close()
}

func (a *APIServer) args() []string {
	p := a.rt.PKI
	b := a.rt.Backend()
	args := []string{
		"--advertise-address=" + a.rt.NodeIP.String(),
		"--bind-address=" + a.rt.BindAddress,
		"--secure-port=" + strconv.Itoa(a.rt.Port),
		"--cert-dir=" + filepath.Join(a.rt.DataDir, "tls", "temporary-certs"),
		"--tls-cert-file=" + p.APIServer.Cert,
		"--tls-private-key-file=" + p.APIServer.Key,
		"--client-ca-file=" + p.CA.Cert,
		// Every request is authenticated: no anonymous access, even to /healthz.
		"--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--service-cluster-ip-range=" + a.cfg.ServiceCIDR,
		"--service-node-port-range=30000-32767",
		"--service-account-key-file=" + p.ServiceAccount.Cert,
		"--service-account-signing-key-file=" + p.ServiceAccount.Key,
		"--service-account-issuer=https://kubernetes.default.svc." + a.cfg.ClusterDomain,
		"--api-audiences=https://kubernetes.default.svc." + a.cfg.ClusterDomain,
		"--kubelet-client-certificate=" + p.APIServerKubelet.Cert,
		"--kubelet-client-key=" + p.APIServerKubelet.Key,
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		// The aggregation layer's front proxy: without these the controller
		// manager and scheduler wait forever for the requestheader CA bundle.
		"--requestheader-client-ca-file=" + p.RequestHeaderCA.Cert,
		"--requestheader-allowed-names=system:auth-proxy",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file=" + p.FrontProxyClient.Cert,
		"--proxy-client-key-file=" + p.FrontProxyClient.Key,
		// Aggregated APIs (metrics.k8s.io) are dialled at their endpoints, so
		// they do not depend on kube-proxy's rules for their ClusterIP.
		"--enable-aggregator-routing=true",
		"--encryption-provider-config=" + a.rt.EncryptionConfig,
		"--storage-backend=etcd3",
		// No watch cache for Argo CD Applications: they are few, large (a
		// 1000-object Application is ~340 KB of JSON, megabytes decoded)
		// and rewritten by every sync and refresh, and the cache keeps its
		// last 100 events, so it held up to 100 decoded copies of each
		// large Application for one or two watchers. Their reads and
		// watches go to etcd instead.
		"--watch-cache-sizes=applications.argoproj.io#0",
		"--etcd-servers=" + strings.Join(b.Servers, ","),
	}
	if b.CAFile != "" {
		args = append(args, "--etcd-cafile="+b.CAFile)
	}
	if b.CertFile != "" {
		args = append(args, "--etcd-certfile="+b.CertFile, "--etcd-keyfile="+b.KeyFile)
	}
	return args
}

// Start parses and validates the options like kube-apiserver does, then runs
// the server in the background.
func (a *APIServer) Start(ctx context.Context) error {
	s := options.NewServerRunOptions()
	if err := parseFlags(a.Name(), s.Flags().FlagSets, a.args()); err != nil {
		return err
	}
	if err := setGlobals(); err != nil {
		return fmt.Errorf("setting feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("completing options: %w", err)
	}
	if err := aggregate(completed.Validate()); err != nil {
		return fmt.Errorf("validating options: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.done = make(chan struct{})
	run(rctx, a.errc, a.done, func(ctx context.Context) error { return app.Run(ctx, completed) })
	return nil
}

// Ready polls /readyz as the admin until it answers ok.
func (a *APIServer) Ready(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := a.CheckReady(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// CheckReady asks /readyz once, as the admin, over loopback; the error
// says why it is not ok. It is the systemd watchdog's liveness check too.
func (a *APIServer) CheckReady(ctx context.Context) error {
	a.readyzOnce.Do(func() {
		cfg, err := clientcmd.BuildConfigFromFlags("", a.rt.Kubeconfigs.Admin)
		if err != nil {
			a.readyzErr = fmt.Errorf("reading %s: %w", a.rt.Kubeconfigs.Admin, err)
			return
		}
		cfg.Timeout = 5 * time.Second
		a.readyz, a.readyzErr = rest.HTTPClientFor(cfg)
	})
	if a.readyzErr != nil {
		return a.readyzErr
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(a.rt.Port)+"/readyz", nil)
	resp, err := a.readyz.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("/readyz: %s: %s", resp.Status, strings.Join(strings.Fields(string(body)), " "))
	}
	return nil
}

// Err reports the API server ending on its own.
func (a *APIServer) Err() <-chan error { return a.errc }

// Stop shuts the API server down gracefully within ctx's deadline. With
// the node agent in the process, kube-proxy's informers (started with
// wait.NeverStop upstream) keep watches open that the server's graceful
// shutdown waits for until they time out; after Runtime.StopGrace the server
// is left to end with the process, which is safe: its state is in the
// datastore, which stops after it.
func (a *APIServer) Stop(ctx context.Context) error {
	if a.rt.StopGrace > 0 && a.cancel != nil {
		gctx, cancel := context.WithTimeout(ctx, a.rt.StopGrace)
		defer cancel()
		err := stop(gctx, &a.cancel, a.done)
		if err != nil && ctx.Err() == nil {
			a.rt.Log.Info("kube-apiserver still holds in-process watches; leaving it to end with the process",
				"component", a.Name(), "after", a.rt.StopGrace)
			return nil
		}
		return err
	}
	return stop(ctx, &a.cancel, a.done)
}

func stop(ctx context.Context, cancel *context.CancelFunc, done <-chan struct{}) error {
	if *cancel == nil {
		return nil
	}
	(*cancel)()
	*cancel = nil
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not stop in time: %w", ctx.Err())
	}
}
