// Package metrics runs metrics-server inside the Fjord process and registers
// it with the API server's aggregation layer, so `kubectl top node`, `kubectl
// top pod` and the HorizontalPodAutoscaler's resource metrics work without a
// Deployment. It scrapes the in-process kubelet's /metrics/resource over
// HTTPS and serves metrics.k8s.io/v1beta1 on the node IP.
package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/fjord-dev/fjord/bootstrap"
)

// Config is the metrics-server section of the server configuration.
type Config struct {
	// DisableMetricsServer turns the built-in metrics-server off and removes
	// the APIService Fjord registered for it, so one can be deployed instead.
	DisableMetricsServer bool `yaml:"disable-metrics-server"`
	// MetricsServerPort is where metrics.k8s.io is served on the node IP,
	// for the aggregation layer; the Service's port 443 targets it.
	MetricsServerPort int `yaml:"metrics-server-port"`
}

// DefaultPort is 10251. metrics-server itself defaults to 443 and its
// manifests use 10250 (4443 before 0.6), all inside a pod's own network
// namespace; here it shares the node's ports with hostNetwork pods, so it
// takes a port of the range Kubernetes keeps for its node and control-plane
// components (10248-10259). 10251 is free there since kube-scheduler
// dropped its insecure port (1.23); 10250 is the kubelet's.
const DefaultPort = 10251

// Default returns the defaults: metrics-server on, on DefaultPort.
func Default() Config {
	return Config{MetricsServerPort: DefaultPort}
}

// Validate reports every problem in c at once. It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if c.MetricsServerPort < 1 || c.MetricsServerPort > 65535 {
		errs = append(errs, fmt.Errorf("metrics-server-port: %d is not a port (1-65535)", c.MetricsServerPort))
	}
	return errors.Join(errs...)
}

// Runtime is what the metrics server needs beyond its configuration section;
// it is derived at start and never serialised.
type Runtime struct {
	// DataDir holds the serving certificate, under agent/metrics-server.
	DataDir string
	// Kubeconfig is the admin kubeconfig: metrics-server lists nodes and
	// pods with it and delegates authentication and authorization.
	Kubeconfig string
	// NodeIP is where metrics.k8s.io is served; it is the Service's endpoint.
	NodeIP net.IP
	// PKI signs the serving certificate (CA), verifies the kubelet (CA) and
	// authenticates to it (APIServerKubelet).
	PKI bootstrap.PKI
	Log *slog.Logger
}

// CertDir is where the serving certificate and key of dataDir live.
func CertDir(dataDir string) string {
	return filepath.Join(dataDir, "agent", "metrics-server")
}
