package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/node/dns"
)

// Kubelet is the kubelet, in-process, registered as the node.
type Kubelet struct {
	cfg    Config
	rt     Runtime
	p      Paths
	cancel context.CancelFunc
	errc   chan error
	done   chan struct{}
}

var _ component.Component = (*Kubelet)(nil)

// NewKubelet returns the kubelet component.
func NewKubelet(cfg Config, rt Runtime) *Kubelet {
	return &Kubelet{cfg: cfg, rt: rt, p: PathsFor(rt.DataDir), errc: make(chan error, 1)}
}

// Name implements component.Component.
func (k *Kubelet) Name() string { return "kubelet" }

// Init creates the kubelet's directories.
func (k *Kubelet) Init(context.Context) error {
	for _, d := range []string{k.p.KubeletRoot, k.p.PodManifests} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return nil
}

// runtimeEndpoint is the CRI socket: the user's own, or Fjord's containerd.
func runtimeEndpoint(cfg Config, p Paths) string {
	if e := cfg.ContainerRuntimeEndpoint; e != "" {
		if strings.HasPrefix(e, "unix://") {
			return e
		}
		return "unix://" + e
	}
	return "unix://" + p.ContainerdSock
}

// configuration is the kubelet's configuration: upstream defaults with what a
// single node on these hosts needs.
func (k *Kubelet) configuration() (*kubeletconfig.KubeletConfiguration, error) {
	kc, err := options.NewKubeletConfiguration()
	if err != nil {
		return nil, err
	}
	pki := k.rt.PKI
	podCIDR, err := PodCIDR(k.rt.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster-cidr: %w", err)
	}
	kc.Address = "0.0.0.0"
	kc.Port = int32(k.cfg.KubeletPort)
	kc.ReadOnlyPort = 0
	kc.HealthzBindAddress = "127.0.0.1"
	kc.HealthzPort = int32(k.cfg.KubeletHealthzPort)
	kc.TLSCertFile, kc.TLSPrivateKeyFile = pki.KubeletServing.Cert, pki.KubeletServing.Key
	kc.TLSMinVersion = "VersionTLS12"
	// Only kube-apiserver and Fjord's own clients (certificates of Fjord's CA)
	// may call the kubelet, and the API server decides what they may do.
	kc.Authentication.Anonymous.Enabled = false
	kc.Authentication.Webhook.Enabled = true
	kc.Authentication.X509.ClientCAFile = pki.CA.Cert
	kc.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
	kc.ClusterDomain = k.rt.ClusterDomain
	kc.ClusterDNS = []string{k.rt.ClusterDNS}
	kc.ResolverConfig = hostResolvConf()
	kc.StaticPodPath = k.p.PodManifests
	kc.VolumePluginDir = filepath.Join(k.p.KubeletRoot, "volume-plugins")
	kc.ContainerRuntimeEndpoint = runtimeEndpoint(k.cfg, k.p)
	kc.ImageServiceEndpoint = kc.ContainerRuntimeEndpoint
	// The driver the runtime reports (CRI RuntimeConfig, KEP-4033) wins; this
	// is the same choice Fjord makes for its containerd.
	kc.CgroupDriver = cgroupDriver()
	// These VMs are cgroup v1 hosts; kubelet 1.37 refuses them unless told.
	kc.FailCgroupV1 = false
	kc.FailSwapOn = false
	kc.MaxPods = int32(k.cfg.MaxPods)
	kc.PodCIDR = podCIDR.String()
	kc.SerializeImagePulls = false
	kc.ProtectKernelDefaults = false
	// Images come from archives, not a registry: never collect the ones a
	// user imported because a dev disk crossed 85 %.
	kc.ImageGCHighThresholdPercent = 100
	kc.ImageGCLowThresholdPercent = 99
	kc.EvictionHard = map[string]string{"memory.available": "100Mi", "nodefs.available": "5%", "imagefs.available": "5%"}
	kc.EvictionPressureTransitionPeriod = metav1.Duration{Duration: 30 * time.Second}
	kc.NodeStatusReportFrequency = metav1.Duration{Duration: time.Minute}
	kc.ContainerLogMaxSize = "10Mi"
	kc.ShutdownGracePeriod = metav1.Duration{}
	kc.RegisterNode = true
	return kc, nil
}

// Start configures the kubelet exactly as the upstream command does and runs it.
func (k *Kubelet) Start(ctx context.Context) error {
	kc, err := k.configuration()
	if err != nil {
		return err
	}
	if err := kubeletvalidation.ValidateKubeletConfiguration(kc, utilfeature.DefaultFeatureGate); err != nil {
		return fmt.Errorf("kubelet configuration: %w", err)
	}
	kf := options.NewKubeletFlags()
	kf.KubeConfig = k.rt.Kubeconfigs.Kubelet
	kf.HostnameOverride = k.rt.NodeName
	kf.NodeIP = k.rt.NodeIP.String()
	kf.RootDirectory = k.p.KubeletRoot
	kf.CertDirectory = filepath.Join(k.p.KubeletRoot, "pki")
	if err := options.ValidateKubeletFlags(kf); err != nil {
		return fmt.Errorf("kubelet flags: %w", err)
	}
	s := &options.KubeletServer{KubeletFlags: *kf, KubeletConfiguration: *kc}
	deps, err := app.UnsecuredDependencies(ctx, s, utilfeature.DefaultFeatureGate)
	if err != nil {
		return fmt.Errorf("kubelet dependencies: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	k.done = make(chan struct{})
	go func() {
		defer close(k.done)
		err := app.Run(rctx, s, deps, utilfeature.DefaultFeatureGate)
		if rctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("returned unexpectedly")
		}
		k.errc <- err
	}()
	return nil
}

// Ready waits for the kubelet's /healthz (when its port is on).
func (k *Kubelet) Ready(ctx context.Context) error {
	if k.cfg.KubeletHealthzPort == 0 {
		return nil
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(k.cfg.KubeletHealthzPort))
	return poll(ctx, 100*time.Millisecond, func() error {
		select {
		case err := <-k.errc:
			k.errc <- err
			return permanent{err}
		default:
		}
		return httpOK(ctx, "http://"+addr+"/healthz")
	})
}

// Err reports the kubelet ending on its own.
func (k *Kubelet) Err() <-chan error { return k.errc }

// Stop stops the kubelet; pods keep running (containerd's shims hold them).
func (k *Kubelet) Stop(ctx context.Context) error { return stopWait(ctx, &k.cancel, k.done) }

// hostResolvConf is the resolv.conf pods with dnsPolicy Default get, and
// CoreDNS forwards to: the host's, unless it only names systemd-resolved's
// stub on loopback, which a pod cannot reach.
func hostResolvConf() string {
	const stub, upstream = "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"
	servers := dns.Nameservers(stub)
	loopbackOnly := len(servers) > 0
	for _, s := range servers {
		if ip := net.ParseIP(s); ip == nil || !ip.IsLoopback() {
			loopbackOnly = false
		}
	}
	if loopbackOnly {
		if _, err := os.Stat(upstream); err == nil {
			return upstream
		}
	}
	return stub
}

// cgroupDriver is systemd where systemd is PID 1 on a unified (v2)
// hierarchy, as k3s chooses, and cgroupfs otherwise (these VMs: cgroup v1,
// no systemd as PID 1).
func cgroupDriver() string {
	if systemdCgroup() {
		return "systemd"
	}
	return "cgroupfs"
}

func systemdCgroup() bool {
	_, sd := os.Stat("/run/systemd/system")
	_, v2 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return sd == nil && v2 == nil
}
