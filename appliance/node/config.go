// Package node is the node agent of the appliance: containerd 2 (embedded,
// extracted and supervised as a child process), the kubelet and
// kube-proxy in-process, the CNI configuration, local image archives and the
// LoadBalancer status of Services. With the control plane package it is the
// only package of the server that imports k8s.io/kubernetes.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/fjord-dev/fjord/bootstrap"
)

// Config is the node section of the server configuration.
type Config struct {
	// ContainerRuntimeEndpoint is a CRI socket of the user's own runtime;
	// empty runs Fjord's built-in containerd.
	ContainerRuntimeEndpoint string `yaml:"container-runtime-endpoint"`
	// CNIBinDir holds the CNI plugins (bridge, host-local, portmap).
	CNIBinDir string `yaml:"cni-bin-dir"`
	// Runc is the OCI runtime binary containerd runs containers with.
	Runc string `yaml:"runc"`
	// KubeletPort serves logs, exec, port-forward and metrics on the node IP.
	KubeletPort int `yaml:"kubelet-port"`
	// KubeletHealthzPort is the kubelet's loopback health port; 0 turns it off.
	KubeletHealthzPort int `yaml:"kubelet-healthz-port"`
	// KubeProxyHealthzPort and KubeProxyMetricsPort are kube-proxy's ports.
	KubeProxyHealthzPort int `yaml:"kube-proxy-healthz-port"`
	KubeProxyMetricsPort int `yaml:"kube-proxy-metrics-port"`
	// MaxPods is the most pods the node runs.
	MaxPods int `yaml:"max-pods"`
}

// Default returns the node defaults (upstream ports).
func Default() Config {
	return Config{
		CNIBinDir:            "/usr/lib/cni",
		Runc:                 "runc",
		KubeletPort:          10250,
		KubeletHealthzPort:   10248,
		KubeProxyHealthzPort: 10256,
		KubeProxyMetricsPort: 10249,
		MaxPods:              110,
	}
}

// Validate reports every problem in c at once. It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if e := c.ContainerRuntimeEndpoint; e != "" && !strings.HasPrefix(e, "unix://") && !filepath.IsAbs(e) {
		errs = append(errs, fmt.Errorf("container-runtime-endpoint: %q is not unix:///path or an absolute socket path", e))
	}
	if c.CNIBinDir == "" || !filepath.IsAbs(c.CNIBinDir) {
		errs = append(errs, fmt.Errorf("cni-bin-dir: %q must be an absolute path", c.CNIBinDir))
	}
	if c.Runc == "" {
		errs = append(errs, errors.New("runc: must not be empty"))
	}
	for key, port := range map[string]int{"kubelet-port": c.KubeletPort, "kubelet-healthz-port": c.KubeletHealthzPort,
		"kube-proxy-healthz-port": c.KubeProxyHealthzPort, "kube-proxy-metrics-port": c.KubeProxyMetricsPort} {
		if port < 0 || port > 65535 || (port == 0 && key == "kubelet-port") {
			errs = append(errs, fmt.Errorf("%s: %d is not a port", key, port))
		}
	}
	if c.MaxPods < 1 {
		errs = append(errs, fmt.Errorf("max-pods: %d must be at least 1", c.MaxPods))
	}
	return errors.Join(errs...)
}

// Runtime is the derived state the node runs with; never serialised.
type Runtime struct {
	DataDir       string
	NodeName      string
	NodeIP        net.IP
	ServiceCIDR   string
	ClusterCIDR   string
	ClusterDomain string
	// ClusterDNS is the kube-dns Service's ClusterIP pods resolve with.
	ClusterDNS  string
	PKI         bootstrap.PKI
	Kubeconfigs bootstrap.Kubeconfigs
	Log         *slog.Logger
}

// Paths are where the node keeps its state, all under <data-dir>/agent
// except what containerd, runc and CNI insist on (see the README).
type Paths struct {
	Dir             string // <data-dir>/agent
	Bin             string // containerd and its shim, extracted from the binary
	Images          string // image archives imported at start and when they appear
	ContainerdRoot  string
	ContainerdState string
	ContainerdSock  string
	ContainerdConf  string
	ContainerdPID   string
	CNIConfDir      string
	KubeletRoot     string
	PodManifests    string
	KubeProxyConf   string
}

// PathsFor returns the node's paths for dataDir.
func PathsFor(dataDir string) Paths {
	dir := filepath.Join(dataDir, "agent")
	return Paths{
		Dir:             dir,
		Bin:             filepath.Join(dir, "bin"),
		Images:          filepath.Join(dir, "images"),
		ContainerdRoot:  filepath.Join(dir, "containerd"),
		ContainerdState: "/run/fjord/containerd",
		ContainerdSock:  filepath.Join(dir, "containerd", "containerd.sock"),
		ContainerdConf:  filepath.Join(dir, "etc", "containerd", "config.toml"),
		ContainerdPID:   filepath.Join(dir, "containerd", "containerd.pid"),
		CNIConfDir:      filepath.Join(dir, "etc", "cni", "net.d"),
		KubeletRoot:     filepath.Join(dir, "kubelet"),
		PodManifests:    filepath.Join(dir, "pod-manifests"),
		KubeProxyConf:   filepath.Join(dir, "etc", "kube-proxy.yaml"),
	}
}

// PodCIDR is the node's pod range: the first /24 of the cluster range,
// which is what kube-controller-manager allocates to the only node.
func PodCIDR(clusterCIDR string) (*net.IPNet, error) {
	_, n, err := net.ParseCIDR(clusterCIDR)
	if err != nil {
		return nil, err
	}
	ones, bits := n.Mask.Size()
	size := 24
	if bits == 128 {
		size = 64
	}
	if ones > size {
		size = ones
	}
	return &net.IPNet{IP: n.IP, Mask: net.CIDRMask(size, bits)}, nil
}
