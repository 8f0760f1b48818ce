//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// runSplit runs a short fjord command and returns its stdout, its stderr and
// its exit code apart: a command that refuses must print nothing to stdout.
func runSplit(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fjordBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), stderr.String(), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

// treeState lists every path under dir with its mode, size and modification
// time: enough to see that nothing was written, without reading the binary.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %s %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime())
		}
		return nil
	})
	return b.String()
}

// hostPaths are what `fjord install` writes on this machine's own root.
var hostPaths = []string{"/etc/systemd/system/fjord.service", "/etc/systemd/system/multi-user.target.wants/fjord.service",
	"/etc/fjord", "/etc/fjord/config.yaml", "/usr/local/bin/fjord", "/usr/local/bin/fjord-killall"}

// hostState records whether each host path exists and when it changed.
func hostState() map[string]string {
	st := map[string]string{}
	for _, p := range hostPaths {
		if fi, err := os.Lstat(p); err == nil {
			st[p] = fi.ModTime().String()
		} else {
			st[p] = "absent"
		}
	}
	return st
}

func TestInstallNeedsSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("this machine runs systemd: fjord install would install for real")
	}
	before := hostState()
	t.Run("install refuses and writes nothing", func(t *testing.T) {
		out, code := runFjord(t, nil, "install", "--data-dir", "/var/lib/fjord-e2e-never")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		mustContain(t, out, "does not run systemd", "/run/systemd/system", "nothing was written", "--no-start")
	})
	t.Run("uninstall refuses and removes nothing", func(t *testing.T) {
		out, code := runFjord(t, nil, "uninstall")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		mustContain(t, out, "does not run systemd", "nothing was removed")
	})
	if after := hostState(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the host changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestInstallIntoRoot(t *testing.T) {
	root := t.TempDir()
	path := func(p string) string { return filepath.Join(root, p) }
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(path(p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	flags := []string{"--data-dir", "/srv/fjord", "--https-listen-port", "7443", "--disable-agent",
		"--gitops.webhook-listen", "0.0.0.0:8081", "--gitops.webhook-secret", "0123456789abcdef-e2e", "--cluster-cidr", "10.42.0.0/16"}

	t.Run("writes the unit, the config from the flags, the binary and the helper", func(t *testing.T) {
		// The environment is not the command line: it does not reach the file.
		out, code := runFjord(t, []string{"FJORD_NODE_NAME=from-env"}, append([]string{"install", "--root", root, "--no-start"}, flags...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "not started (--no-start)")
		for p, want := range map[string]os.FileMode{"/etc/systemd/system/fjord.service": 0o644, "/etc/fjord/config.yaml": 0o600,
			"/usr/local/bin/fjord": 0o755, "/usr/local/bin/fjord-killall": 0o755} {
			if got := mode(p); got != want {
				t.Errorf("%s: mode %o, want %o", p, got, want)
			}
		}
		unit, _ := os.ReadFile(path("/etc/systemd/system/fjord.service"))
		repoUnit, _ := os.ReadFile("../systemd/fjord.service")
		if !bytes.Equal(unit, repoUnit) {
			t.Error("the installed unit is not systemd/fjord.service")
		}
		if target, err := os.Readlink(path("/etc/systemd/system/multi-user.target.wants/fjord.service")); err != nil || target != "/etc/systemd/system/fjord.service" {
			t.Errorf("not enabled: %q %v", target, err)
		}
		bin, _ := os.ReadFile(path("/usr/local/bin/fjord"))
		self, _ := os.ReadFile(fjordBin)
		if !bytes.Equal(bin, self) {
			t.Error("the installed binary is not the one that ran")
		}
		helper, _ := os.ReadFile(path("/usr/local/bin/fjord-killall"))
		mustContain(t, string(helper), "#!/bin/sh", "systemctl stop fjord.service", "exec /usr/local/bin/fjord killall --data-dir '/srv/fjord'")

		var cfg map[string]any
		data, _ := os.ReadFile(path("/etc/fjord/config.yaml"))
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"version": "fjord.dev/v1alpha1", "data-dir": "/srv/fjord", "https-listen-port": "7443", "disable-agent": "true",
			"gitops.webhook-listen": "0.0.0.0:8081", "gitops.webhook-secret": "0123456789abcdef-e2e", "cluster-cidr": "10.42.0.0/16"}
		if len(cfg) != len(want) {
			t.Errorf("config has %d keys, want %d:\n%s", len(cfg), len(want), data)
		}
		for k, v := range want {
			if fmt.Sprint(cfg[k]) != v {
				t.Errorf("config %s = %v, want %s", k, cfg[k], v)
			}
		}
	})
	t.Run("the server's own loader reads the config written", func(t *testing.T) {
		// kubeconfig loads the configuration, then names the data dir it
		// looked in: the one from the file.
		out, code := runFjord(t, nil, "kubeconfig", "--config", path("/etc/fjord/config.yaml"))
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "--data-dir /srv/fjord")
	})
	t.Run("running it again without flags keeps the config", func(t *testing.T) {
		before, _ := os.ReadFile(path("/etc/fjord/config.yaml"))
		out, code := runFjord(t, nil, "install", "--root", root, "--no-start")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "kept "+path("/etc/fjord/config.yaml"))
		after, _ := os.ReadFile(path("/etc/fjord/config.yaml"))
		if !bytes.Equal(before, after) {
			t.Fatal("the config changed")
		}
	})
	t.Run("bad flags are refused and nothing is written", func(t *testing.T) {
		before := treeState(t, root)
		out, code := runFjord(t, nil, "install", "--root", root, "--no-start", "--https-listen-port", "lots", "--log-format", "xml")
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, `--https-listen-port: key "https-listen-port": invalid integer "lots"`, "nothing was written")
		if after := treeState(t, root); after != before {
			t.Fatalf("files changed:\nbefore %s\nafter  %s", before, after)
		}
	})
	t.Run("another root cannot be started", func(t *testing.T) {
		out, code := runFjord(t, nil, "install", "--root", t.TempDir())
		if code != 2 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "add --no-start")
	})
	t.Run("uninstall removes it and keeps the data dir", func(t *testing.T) {
		os.MkdirAll(path("/srv/fjord/db"), 0o700)
		out, code := runFjord(t, nil, "uninstall", "--root", root)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, p := range hostPaths {
			if p == "/etc/fjord" {
				continue
			}
			if _, err := os.Lstat(path(p)); err == nil {
				t.Errorf("%s is still there", p)
			}
		}
		if _, err := os.Stat(path("/srv/fjord/db")); err != nil {
			t.Errorf("the data dir went: %v", err)
		}
		mustContain(t, out, "kept "+path("/srv/fjord"))
	})
	t.Run("uninstall --purge removes the data dir too", func(t *testing.T) {
		if out, code := runFjord(t, nil, append([]string{"install", "--root", root, "--no-start"}, flags...)...); code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		out, code := runFjord(t, nil, "uninstall", "--root", root, "--purge")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, p := range []string{"/srv/fjord", "/etc/fjord", "/usr/local/bin/fjord"} {
			if _, err := os.Lstat(path(p)); err == nil {
				t.Errorf("%s is still there", p)
			}
		}
	})
}

// sealingKeyBackup writes a key backup as `fjord sealing-keys export` does:
// a List of kubernetes.io/tls Secrets with an RSA key and its certificate.
func sealingKeyBackup(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sealed-secret"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	f := filepath.Join(t.TempDir(), "keys.yaml")
	os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  type: kubernetes.io/tls
  metadata:
    name: sealed-secrets-key1
    namespace: kube-system
    labels: {sealedsecrets.bitnami.com/sealed-secrets-key: active}
  data:
    tls.crt: %s
    tls.key: %s
`, base64.StdEncoding.EncodeToString(crt), base64.StdEncoding.EncodeToString(k))), 0o600)
	return f
}

func TestBootstrapCloudInit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	key := filepath.Join(dir, "deploy_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	knownHosts := write("known_hosts", "git.example.com "+strings.Join(strings.Fields(string(pub))[:2], " ")+"\n")
	token := write("token", "glpat-e2e\n")
	unreadable := filepath.Join(dir, "no-such-key")
	notAKey := write("not-a-key", "this is not a key\n")
	sshRepo := "git@git.example.com:org/infra-manifests.git"

	t.Run("bad input is refused with a clear error and nothing on stdout", func(t *testing.T) {
		for name, tc := range map[string]struct {
			args []string
			want []string
		}{
			"no --repo":                      {nil, []string{"--repo: the Git repository's URL is required"}},
			"an unreadable key file":         {[]string{"--repo", sshRepo, "--ssh-key", unreadable, "--known-hosts", knownHosts}, []string{"--ssh-key", unreadable, "no such file"}},
			"a key file that is no key":      {[]string{"--repo", sshRepo, "--ssh-key", notAKey, "--known-hosts", knownHosts}, []string{"--ssh-key " + notAKey + ": not an ssh private key"}},
			"a public key as the key":        {[]string{"--repo", sshRepo, "--ssh-key", key + ".pub", "--known-hosts", knownHosts}, []string{"this is a public key"}},
			"both ssh key and token":         {[]string{"--repo", sshRepo, "--ssh-key", key, "--known-hosts", knownHosts, "--https-token-file", token}, []string{"--ssh-key and --https-token-file: give one of them"}},
			"an ssh key without known hosts": {[]string{"--repo", sshRepo, "--ssh-key", key}, []string{"--known-hosts go together"}},
			"an unknown config key":          {[]string{"--repo", sshRepo, "--config-set", "datastore-endpiont=sqlite://"}, []string{`unknown key "datastore-endpiont"`}},
			"a bad config value":             {[]string{"--repo", sshRepo, "--config-set", "fsync-p99-max=soon"}, []string{"fsync-p99-max", `invalid duration "soon"`}},
			"sealing keys that are not":      {[]string{"--repo", sshRepo, "--sealing-keys", notAKey}, []string{"--sealing-keys"}},
			"an image archive that is not":   {[]string{"--repo", sshRepo, "--image-archive", notAKey}, []string{"not a tar or tar.gz image archive"}},
		} {
			t.Run(name, func(t *testing.T) {
				stdout, stderr, code := runSplit(t, nil, append([]string{"bootstrap", "cloud-init"}, tc.args...)...)
				if code == 0 {
					t.Fatalf("exit 0\n%s", stdout)
				}
				if stdout != "" {
					t.Fatalf("stdout is not empty:\n%s", stdout)
				}
				mustContain(t, stderr, tc.want...)
				if strings.Contains(stderr, "PRIVATE KEY") {
					t.Fatalf("a key is in the error:\n%s", stderr)
				}
			})
		}
	})
	t.Run("good input renders a user-data cloud-init accepts", func(t *testing.T) {
		stdout, stderr, code := runSplit(t, nil, "bootstrap", "cloud-init", "--repo", sshRepo, "--path", "apps/overlays/production",
			"--ssh-key", key, "--known-hosts", knownHosts, "--sealing-keys", sealingKeyBackup(t),
			"--app-name", "payment-gateway-oslo", "--namespace", "payments", "--config-set", "datastore-endpoint=https://10.0.0.1:2379,https://10.0.0.2:2379")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		mustContain(t, stdout, "#cloud-config\n", "path: /etc/fjord/applications/repository.yaml", "sealing.import-keys: /etc/fjord/sealing-keys.yaml",
			"datastore-endpoint: https://10.0.0.1:2379,https://10.0.0.2:2379", "- /usr/local/bin/fjord\n    - install")
		if _, err := exec.LookPath("cloud-init"); err != nil {
			t.Skip("cloud-init is not installed: the schema is not checked")
		}
		f := write("user-data.yaml", stdout)
		if out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput(); err != nil {
			t.Fatalf("cloud-init schema: %v\n%s", err, out)
		}
	})
}

// TestBootstrapSeedSyncs runs what the user-data writes: the config and the
// applications dir from `fjord bootstrap cloud-init` (paths moved into the
// test's directories), then a server with a notify socket, as systemd would
// run it. The Application syncs with no kubectl at all, and the status line
// says so.
func TestBootstrapSeedSyncs(t *testing.T) {
	repo := newRepo(t, argoLayout())
	apps := t.TempDir()
	stdout, stderr, code := runSplit(t, nil, "bootstrap", "cloud-init", "--repo", repo.url(), "--path", "apps/overlays/production",
		"--app-name", "payment-gateway-oslo", "--namespace", "payments",
		"--config-set", "gitops.applications-dir="+apps, "--config-set", "gitops.poll-interval=1s")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var doc struct {
		WriteFiles []struct{ Path, Content string } `yaml:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	n := listenNotify(t)
	s := newServer(t)
	s.env = []string{"NOTIFY_SOCKET=" + n.path}
	for _, f := range doc.WriteFiles {
		target := f.Path
		if f.Path == "/etc/fjord/config.yaml" {
			target = filepath.Join(s.dataDir, "config.yaml") // newServer's --config
		}
		if !strings.HasPrefix(target, s.dataDir) && !strings.HasPrefix(target, apps) {
			t.Fatalf("unexpected file %s", f.Path)
		}
		os.WriteFile(target, []byte(f.Content), 0o600)
	}
	begin := time.Now()
	s.start()
	rev := repo.head()
	s.waitApp(t, "payment-gateway-oslo", "synced", 2*time.Minute, synced(rev))
	want := "STATUS=synced payment-gateway-oslo @" + rev[:7] + " ("
	eventually(t, time.Minute, want+"…, Healthy)", func() error {
		for _, m := range n.since(begin) {
			if strings.HasPrefix(m.text, want) && strings.HasSuffix(m.text, ", Healthy)") {
				return nil
			}
		}
		return errString(fmt.Sprintf("notifications: %v", n.since(begin)))
	})
	ready, ok := n.first(begin, "READY=1")
	if !ok {
		t.Fatal("no READY=1")
	}
	if st, _ := n.first(begin, want); st.Before(ready) {
		t.Fatal("the sync state replaced the start-up status before READY=1")
	}
	// The fsync gate's step asks systemd for its longest time (the default
	// fsync-gate-max-duration of 30s plus a minute) before READY.
	if at, ok := n.first(begin, "EXTEND_TIMEOUT_USEC=90000000"); !ok || at.After(ready) {
		t.Fatalf("no EXTEND_TIMEOUT_USEC=90000000 before READY=1: %v", n.since(begin))
	}
}
