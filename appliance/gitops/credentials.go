package gitops

import (
	"context"
	"fmt"
	neturl "net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-dev/fjord/appliance/gitops/source"
)

// Argo CD's names for repository credentials and known hosts.
const (
	labelSecretType     = "argocd.argoproj.io/secret-type"
	knownHostsConfigMap = "argocd-ssh-known-hosts-cm"
	knownHostsKey       = "ssh_known_hosts"
	tlsCertsConfigMap   = "argocd-tls-certs-cm"
)

// repository returns url with the credentials Argo CD users store: a Secret
// labelled secret-type=repository whose url matches, else the longest
// matching secret-type=repo-creds prefix; known hosts from
// argocd-ssh-known-hosts-cm.
func (e *Engine) repository(ctx context.Context, url string) (source.Repository, error) {
	repo := source.Repository{URL: url}
	want, err := source.NormalizeURL(url)
	if err != nil {
		return repo, err
	}
	secrets, err := e.kube.CoreV1().Secrets(e.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelSecretType + " in (repository,repo-creds)"})
	if err != nil {
		return repo, fmt.Errorf("listing repository credentials in %s: %w", e.cfg.Namespace, err)
	}
	var best map[string][]byte
	bestLen := -1
	for _, s := range secrets.Items {
		u := string(s.Data["url"])
		if u == "" {
			continue
		}
		switch s.Labels[labelSecretType] {
		case "repository":
			if n, err := source.NormalizeURL(u); err == nil && n == want {
				best, bestLen = s.Data, 1<<30
			}
		case "repo-creds":
			if strings.HasPrefix(url, u) && len(u) > bestLen {
				best, bestLen = s.Data, len(u)
			}
		}
	}
	if best != nil {
		repo.Auth.Username = string(best["username"])
		repo.Auth.Password = string(best["password"])
		repo.Auth.SSHPrivateKey = best["sshPrivateKey"]
		repo.Auth.InsecureSkipHostKey = string(best["insecure"]) == "true" && isSSH(url)
		repo.Auth.InsecureSkipTLSVerify = string(best["insecure"]) == "true" && !isSSH(url)
	}
	if !isSSH(url) {
		// Argo CD keeps extra CAs per server name in argocd-tls-certs-cm.
		if u, err := neturl.Parse(url); err == nil && u.Hostname() != "" {
			if cm, err := e.kube.CoreV1().ConfigMaps(e.cfg.Namespace).Get(ctx, tlsCertsConfigMap, metav1.GetOptions{}); err == nil {
				if pem := cm.Data[u.Hostname()]; pem != "" {
					repo.Auth.CABundle = []byte(pem)
				}
			}
		}
	}
	if isSSH(url) {
		cm, err := e.kube.CoreV1().ConfigMaps(e.cfg.Namespace).Get(ctx, knownHostsConfigMap, metav1.GetOptions{})
		if err == nil {
			repo.Auth.SSHKnownHosts = cm.Data[knownHostsKey]
		}
	}
	return repo, nil
}

func isSSH(url string) bool {
	if strings.HasPrefix(url, "ssh://") {
		return true
	}
	return !strings.Contains(url, "://") && strings.Contains(url, "@") && strings.Contains(url, ":")
}
