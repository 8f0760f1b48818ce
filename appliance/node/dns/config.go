package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
)

// Config is the cluster DNS section of the server configuration.
type Config struct {
	// ClusterDNS is the ClusterIP of the kube-dns Service, the nameserver
	// the kubelet writes into pods' resolv.conf. The caller checks that it
	// lies in the service CIDR.
	ClusterDNS string `yaml:"cluster-dns"`
	// ClusterDNSPort is where CoreDNS listens on the node IP; the Service
	// maps port 53 to it. It is not 53 so that it never collides with a
	// resolver of the host's own.
	ClusterDNSPort int `yaml:"cluster-dns-port"`
	// DisableDNS turns the cluster DNS off; pods then have no cluster DNS
	// unless the user installs one.
	DisableDNS bool `yaml:"disable-dns"`
}

// Default returns the defaults: k3s's kube-dns address in the default
// service CIDR 10.43.0.0/16, CoreDNS on port 10053 of the node IP.
func Default() Config {
	return Config{ClusterDNS: "10.43.0.10", ClusterDNSPort: 10053}
}

// Validate reports every problem in c at once. It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if net.ParseIP(c.ClusterDNS) == nil {
		errs = append(errs, fmt.Errorf("cluster-dns: %q is not an IP address", c.ClusterDNS))
	}
	if c.ClusterDNSPort < 1 || c.ClusterDNSPort > 65535 {
		errs = append(errs, fmt.Errorf("cluster-dns-port: %d is not a port (1-65535)", c.ClusterDNSPort))
	}
	return errors.Join(errs...)
}

// Runtime is the derived state the DNS server runs with; never serialised.
type Runtime struct {
	// Kubeconfig is what CoreDNS watches Services, EndpointSlices and
	// Namespaces with, and what the kube-dns Service is registered with.
	Kubeconfig string
	// NodeIP is the address CoreDNS binds to.
	NodeIP net.IP
	// ClusterDomain is the zone CoreDNS answers for, e.g. cluster.local.
	ClusterDomain string
	// Log receives the server's and CoreDNS's log lines.
	Log *slog.Logger
}
