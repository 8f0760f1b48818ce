//go:build e2e

package e2e

import (
	"bytes"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bareClone makes a bare copy of repo for a git server to serve.
func bareClone(t *testing.T, repo *gitRepo, dir string) {
	t.Helper()
	if out, err := exec.Command("git", "clone", "-q", "--bare", repo.dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone --bare: %v\n%s", err, out)
	}
}

func TestGitOpsOverHTTPSWithBasicAuth(t *testing.T) {
	const password = "e2e-token-do-not-log"
	root := t.TempDir()
	bareClone(t, newRepo(t, argoLayout()), filepath.Join(root, "infra.git"))
	backend := &cgi.Handler{
		Path:       "/usr/lib/git-core/git-http-backend",
		Env:        []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
		InheritEnv: []string{"PATH"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	url := srv.URL + "/infra.git"

	s := startGitOpsServer(t)
	s.kubectlApply(argoApp("over-https", url, "apps/overlays/production", automatedFull))
	s.waitApp(t, "over-https", "reporting missing credentials", time.Minute, func(a appStatus) bool {
		return strings.Contains(a.condition(), "ComparisonError")
	})

	// Argo CD's way: a repository Secret and the server's CA in argocd-tls-certs-cm.
	s.kubectlApply(`apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-tls-certs-cm, namespace: argocd}
data:
  127.0.0.1: |
` + indent(string(ca), "    ") + `
---
apiVersion: v1
kind: Secret
metadata:
  name: infra-repo
  namespace: argocd
  labels: {argocd.argoproj.io/secret-type: repository}
stringData:
  url: ` + url + `
  username: ci
  password: ` + password + "\n")
	s.mustKubectl("annotate", "application", "over-https", "-n", "argocd", "argocd.argoproj.io/refresh=now", "--overwrite")
	s.waitApp(t, "over-https", "synced over https", time.Minute, func(a appStatus) bool { return a.Sync.Status == "Synced" && a.OperationState.Phase == "Succeeded" })
	s.mustKubectl("get", "deploy", "app", "-n", "payments")

	out, _ := s.kubectl("get", "application", "over-https", "-n", "argocd", "-o", "yaml")
	events, _ := s.kubectl("get", "events", "-n", "argocd")
	for where, text := range map[string]string{"status": out, "events": events, "log": s.out.String()} {
		if strings.Contains(text, password) {
			t.Errorf("the password appears in the %s", where)
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

func TestGitOpsOverSSHWithADeployKey(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatalf("sshd is not installed (make deps-test installs openssh-server): %v", err)
	}
	dir := t.TempDir()
	bare := filepath.Join(dir, "infra.git")
	bareClone(t, newRepo(t, argoLayout()), bare)
	keygen := func(path string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	hostKey, deployKey := filepath.Join(dir, "host"), filepath.Join(dir, "deploy")
	keygen(hostKey)
	keygen(deployKey)
	pub, _ := os.ReadFile(deployKey + ".pub")
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(strings.Join([]string{
		"Port " + strconv.Itoa(port), "ListenAddress 127.0.0.1", "HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"), "AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no", "PermitRootLogin yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "",
	}, "\n")), 0o600)
	var logs bytes.Buffer
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	sshd.Stdout, sshd.Stderr = &logs, &logs
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sshd.Process.Kill(); sshd.Wait() }()
	eventually(t, 10*time.Second, "sshd listening", func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err
	})
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	fields := strings.Fields(string(hostPub))
	knownHosts := "[127.0.0.1]:" + strconv.Itoa(port) + " " + fields[0] + " " + fields[1]
	private, _ := os.ReadFile(deployKey)
	url := "ssh://root@127.0.0.1:" + strconv.Itoa(port) + bare

	s := startGitOpsServer(t)
	secret := `apiVersion: v1
kind: Secret
metadata:
  name: infra-ssh
  namespace: argocd
  labels: {argocd.argoproj.io/secret-type: repository}
stringData:
  url: ` + url + `
  sshPrivateKey: |
` + indent(string(private), "    ") + "\n"
	s.kubectlApply(secret)
	t.Run("an unknown host key is refused", func(t *testing.T) {
		s.kubectlApply(argoApp("over-ssh", url, "apps/overlays/production", automatedFull))
		s.waitApp(t, "over-ssh", "refusing the host", time.Minute, func(a appStatus) bool {
			return strings.Contains(a.condition(), "ComparisonError") && strings.Contains(strings.ToLower(a.condition()), "host")
		})
		if _, err := s.kubectl("get", "deploy", "app", "-n", "payments"); err == nil {
			t.Fatal("synced from an untrusted host")
		}
	})
	t.Run("with known_hosts it syncs", func(t *testing.T) {
		s.kubectlApply(`apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-ssh-known-hosts-cm, namespace: argocd}
data:
  ssh_known_hosts: |
    ` + knownHosts + "\n")
		s.mustKubectl("annotate", "application", "over-ssh", "-n", "argocd", "argocd.argoproj.io/refresh=now", "--overwrite")
		s.waitApp(t, "over-ssh", "synced over ssh", time.Minute, func(a appStatus) bool { return a.Sync.Status == "Synced" && a.OperationState.Phase == "Succeeded" })
		s.mustKubectl("get", "deploy", "app", "-n", "payments")
		if strings.Contains(s.out.String(), "PRIVATE KEY") {
			t.Fatal("the private key appears in fjord's log")
		}
	})
}
