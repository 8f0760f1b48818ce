// Package gitops keeps the cluster equal to Git. Users write Argo CD's
// argoproj.io/v1alpha1 Application; for each one Fjord runs the pipeline
//
//	fetch (go-git) → build (kustomize or plain YAML) → apply
//	(server-side, staged, in sync waves) → prune → health → status
//
// and reverts drift on the objects it applied. It depends on client-go,
// controller-runtime and fluxcd/pkg/ssa only, never on k8s.io/kubernetes.
package gitops

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the GitOps section of the server configuration.
type Config struct {
	// Disable turns the GitOps engine off.
	Disable bool `yaml:"gitops.disable"`
	// PollInterval is how often every Application's remote is asked whether
	// its revision moved (a cheap ref listing, no fetch).
	PollInterval time.Duration `yaml:"gitops.poll-interval"`
	// Namespace is where Applications and repository Secrets live.
	Namespace string `yaml:"gitops.namespace"`
	// ApplicationsDir holds Application manifests applied at start, so a
	// fresh VM syncs without any kubectl.
	ApplicationsDir string `yaml:"gitops.applications-dir"`
	// WaveTimeout bounds how long a sync waits for one sync wave to become
	// healthy before the next (and before pruning with PruneLast).
	WaveTimeout time.Duration `yaml:"gitops.wave-timeout"`
	// PruneProtectRatio refuses to prune more than this fraction of an
	// Application's objects at once (unless automated.allowEmpty).
	PruneProtectRatio float64 `yaml:"gitops.prune-protect-ratio"`
	// WebhookListen is the address of the push webhook (POST /api/webhook,
	// GitHub and GitLab payloads); empty turns it off.
	WebhookListen string `yaml:"gitops.webhook-listen"`
	// WebhookSecret authenticates webhook requests; required with WebhookListen.
	WebhookSecret string `yaml:"gitops.webhook-secret"`
}

// Default returns the engine's defaults (Argo CD's namespace, a 30 s poll).
func Default() Config {
	return Config{
		PollInterval:      30 * time.Second,
		Namespace:         "argocd",
		WaveTimeout:       5 * time.Minute,
		PruneProtectRatio: 0.5,
	}
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < time.Second {
		errs = append(errs, fmt.Errorf("gitops.poll-interval: %s is shorter than 1s", c.PollInterval))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("gitops.namespace: must not be empty"))
	}
	if c.WaveTimeout <= 0 {
		errs = append(errs, errors.New("gitops.wave-timeout: must be positive"))
	}
	if c.PruneProtectRatio <= 0 || c.PruneProtectRatio > 1 {
		errs = append(errs, fmt.Errorf("gitops.prune-protect-ratio: %v is not in (0, 1]", c.PruneProtectRatio))
	}
	if c.WebhookListen != "" {
		if _, _, err := net.SplitHostPort(c.WebhookListen); err != nil {
			errs = append(errs, fmt.Errorf("gitops.webhook-listen: %q is not host:port", c.WebhookListen))
		}
		if len(c.WebhookSecret) < 16 {
			errs = append(errs, errors.New("gitops.webhook-secret: required with gitops.webhook-listen, at least 16 characters"))
		}
	}
	return errors.Join(errs...)
}
