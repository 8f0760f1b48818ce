// Package controlplane runs kube-apiserver, kube-controller-manager and
// kube-scheduler inside the Fjord process, through their options APIs (the
// cobra commands cannot share one process). It is the only package of Fjord's
// server that imports k8s.io/kubernetes.
package controlplane

import (
	"errors"
	"fmt"
	"net"
)

// Config is the control-plane section of the server configuration.
type Config struct {
	// ServiceCIDR is the range Service ClusterIPs come from.
	ServiceCIDR string `yaml:"service-cidr"`
	// ClusterCIDR is the range pod CIDRs are allocated from.
	ClusterCIDR string `yaml:"cluster-cidr"`
	// ClusterDomain is the DNS domain of Services.
	ClusterDomain string `yaml:"cluster-domain"`
	// ControllerManagerPort and SchedulerPort are the loopback HTTPS ports of
	// their health and metrics endpoints; 0 turns the endpoint off.
	ControllerManagerPort int `yaml:"kube-controller-manager-port"`
	SchedulerPort         int `yaml:"kube-scheduler-port"`
}

// Default returns k3s's ranges and the upstream component ports.
func Default() Config {
	return Config{
		ServiceCIDR:           "10.43.0.0/16",
		ClusterCIDR:           "10.42.0.0/16",
		ClusterDomain:         "cluster.local",
		ControllerManagerPort: 10257,
		SchedulerPort:         10259,
	}
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	for key, cidr := range map[string]string{"service-cidr": c.ServiceCIDR, "cluster-cidr": c.ClusterCIDR} {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a CIDR", key, cidr))
		}
	}
	if c.ClusterDomain == "" {
		errs = append(errs, errors.New("cluster-domain: must not be empty"))
	}
	for key, port := range map[string]int{"kube-controller-manager-port": c.ControllerManagerPort, "kube-scheduler-port": c.SchedulerPort} {
		if port < 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port (0-65535, 0 for off)", key, port))
		}
	}
	return errors.Join(errs...)
}

// ServiceIP returns the first address of the service range: the
// `kubernetes` Service's ClusterIP.
func (c Config) ServiceIP() (net.IP, error) {
	_, n, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	ip[len(ip)-1]++
	return ip, nil
}
