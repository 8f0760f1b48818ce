package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/bootstrap"
)

// Proxy is kube-proxy in iptables mode, in-process. iptables rather than
// nftables: Debian 12's iptables (nft backend) is what these hosts have, it
// is kube-proxy's most used mode, and it needs no kernel newer than 5.13.
type Proxy struct {
	cfg    Config
	rt     Runtime
	p      Paths
	cancel context.CancelFunc
	errc   chan error
	done   chan struct{}
}

var _ component.Component = (*Proxy)(nil)

// NewProxy returns the kube-proxy component.
func NewProxy(cfg Config, rt Runtime) *Proxy {
	return &Proxy{cfg: cfg, rt: rt, p: PathsFor(rt.DataDir), errc: make(chan error, 1)}
}

// Name implements component.Component.
func (p *Proxy) Name() string { return "kube-proxy" }

// Init writes kube-proxy's configuration file.
func (p *Proxy) Init(context.Context) error {
	return bootstrap.WriteFileAtomic(p.p.KubeProxyConf, []byte(p.configuration()), 0o600)
}

// configuration leaves the host's conntrack settings alone (0 = keep) and
// serves NodePorts on the node's addresses only, so kube-proxy does not turn
// on route_localnet.
func (p *Proxy) configuration() string {
	addr := func(port int) string {
		if port == 0 {
			return `""`
		}
		return strconv.Quote(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
hostnameOverride: %q
bindAddress: %q
healthzBindAddress: %s
metricsBindAddress: %s
mode: iptables
clusterCIDR: %q
detectLocalMode: ClusterCIDR
nodePortAddresses: ["primary"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  minSyncPeriod: 1s
  syncPeriod: 30s
`, p.rt.Kubeconfigs.KubeProxy, p.rt.NodeName, p.rt.NodeIP.String(),
		addr(p.cfg.KubeProxyHealthzPort), addr(p.cfg.KubeProxyMetricsPort), p.rt.ClusterCIDR)
}

// Start parses the configuration as the upstream command does and runs it.
func (p *Proxy) Start(ctx context.Context) error {
	o := app.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--config=" + p.p.KubeProxyConf}); err != nil {
		return fmt.Errorf("kube-proxy flags: %w", err)
	}
	if err := o.Complete(fs); err != nil {
		return fmt.Errorf("kube-proxy configuration: %w", err)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("kube-proxy configuration: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		err := o.Run(rctx)
		if rctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("returned unexpectedly")
		}
		p.errc <- err
	}()
	return nil
}

// Ready implements component.Component: kube-proxy programs rules as
// Services and EndpointSlices arrive; nothing waits for it.
func (p *Proxy) Ready(context.Context) error { return nil }

// Err reports kube-proxy ending on its own.
func (p *Proxy) Err() <-chan error { return p.errc }

// Stop cancels kube-proxy's context and does not wait: upstream's
// ProxyServer.Run returns only when its health or metrics server fails,
// never on cancellation, so what is left of it ends with the process. Its
// rules stay, so Services keep working while fjord restarts (`fjord
// killall` removes them).
func (p *Proxy) Stop(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	return nil
}

// writeCNIConfig writes the bridge network pods join: bridge (cni0, the
// gateway), host-local addresses from the node's pod range, portmap for
// hostPort. Written atomically: containerd watches the directory and must
// never read half a file. The bridge plugin does not masquerade (ipMasq
// false): with it on, each pod costs a chain and about nine iptables calls
// serialised on the xtables lock, the largest share of starting 30 pods at
// once; one rule for the whole range (masqueradeRule) does the same job.
func writeCNIConfig(p Paths, podCIDR *net.IPNet) error {
	if err := os.MkdirAll(p.CNIConfDir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "fjord",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR.String())
	return bootstrap.WriteFileAtomic(filepath.Join(p.CNIConfDir, "10-fjord.conflist"), []byte(conf), 0o644)
}

// masqueradeRule makes traffic from pods to anywhere outside the pod range
// leave with the node's address, as the bridge plugin's ipMasq would per
// pod, in one rule for the range. Its comment names fjord, so `fjord
// killall` removes it with the node's other rules.
func masqueradeRule(podCIDR *net.IPNet) error {
	ipt := utiliptables.New(utiliptables.ProtocolIPv4)
	_, err := ipt.EnsureRule(utiliptables.Append, utiliptables.TableNAT, utiliptables.ChainPostrouting,
		"-s", podCIDR.String(), "!", "-d", podCIDR.String(), "-m", "comment", "--comment", "fjord: pods to the outside", "-j", "MASQUERADE")
	if err != nil {
		return fmt.Errorf("masquerade rule for %s: %w", podCIDR, err)
	}
	return nil
}
