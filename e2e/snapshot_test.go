//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// serverFlags are s's flags without the leading "server": every snapshot
// command takes them, to find the data dir and the datastore.
func (s *server) serverFlags() []string { return append([]string(nil), s.args[1:]...) }

// snapshotSave runs `fjord snapshot save` for s and returns the file written.
func (s *server) snapshotSave(t *testing.T, extra ...string) string {
	t.Helper()
	out, code := runFjord(t, nil, append(append([]string{"snapshot", "save"}, s.serverFlags()...), extra...)...)
	if code != 0 {
		t.Fatalf("snapshot save: exit %d\n%s", code, out)
	}
	f := strings.TrimSuffix(strings.Fields(out)[1], ":")
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file %s: %v %v\n%s", f, fi, err, out)
	}
	return f
}

// wipe empties a data dir as a lost disk would, keeping only the harness's
// (empty) configuration file.
func wipe(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == "config.yaml" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshotRestoreEmbeddedEtcd(t *testing.T) { snapshotRoundTrip(t) }

func TestSnapshotRestoreKineSQLite(t *testing.T) {
	snapshotRoundTrip(t, "--datastore-endpoint", "sqlite://")
}

// snapshotRoundTrip: objects, Secrets, SealedSecrets and a synced
// Application; snapshot; kill -9; the data dir wiped; restore; start:
// everything is back, Secrets readable, SealedSecrets decrypting with the
// same keys, and GitOps resyncs to what Git says now.
func snapshotRoundTrip(t *testing.T, extra ...string) {
	repo := newRepo(t, argoLayout())
	s := startSealingServer(t, append([]string{"--sealing.key-bits", "2048"}, extra...)...)
	s.mustKubectl("create", "namespace", "shop")
	for i := range 20 {
		s.mustKubectl("create", "configmap", fmt.Sprintf("cm-%02d", i), "-n", "shop", "--from-literal=i="+fmt.Sprint(i))
	}
	s.mustKubectl("create", "secret", "generic", "plain", "-n", "shop", "--from-literal=password=plain-secret-value")
	s.kubectlApply(s.fjord(t, secretYAML("shop", "sealed", "token", "sealed-secret-value"), "seal"))
	s.waitSecret(t, "shop", "sealed", "token", "sealed-secret-value")
	cert := s.fjord(t, "", "cert")
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(certFile, []byte(cert), 0o600)
	s.kubectlApply(argoApp("shop-app", repo.url(), "apps/overlays/production", automatedFull))
	s.waitApp(t, "shop-app", "synced", 2*time.Minute, synced(repo.head()))

	dir := t.TempDir()
	file := s.snapshotSave(t, "--dir", dir, "--name", "before-the-disk-died")
	out, code := runFjord(t, nil, append([]string{"snapshot", "ls", "--dir", dir}, s.serverFlags()...)...)
	if code != 0 || !strings.Contains(out, "before-the-disk-died") || !strings.Contains(out, "manual") {
		t.Fatalf("snapshot ls: exit %d\n%s", code, out)
	}
	// After the snapshot: not in it.
	s.mustKubectl("create", "configmap", "after-the-snapshot", "-n", "shop")
	newRev := repo.commit("scale", map[string]string{
		"apps/overlays/production/patch-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels: {restored: resynced}\nspec:\n  replicas: 0\n"})

	t.Run("restore while the server runs is refused", func(t *testing.T) {
		before := treeState(t, filepath.Join(s.dataDir, "tls"))
		out, code := runFjord(t, nil, append([]string{"snapshot", "restore", file, "--force"}, s.serverFlags()...)...)
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "is in use by process", "nothing was written")
		if after := treeState(t, filepath.Join(s.dataDir, "tls")); after != before {
			t.Fatal("the data dir changed")
		}
	})

	s.kill9()
	wipe(t, s.dataDir)
	begin := time.Now()
	out, code = runFjord(t, nil, append([]string{"snapshot", "restore", file}, s.serverFlags()...)...)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	t.Logf("restore took %s", time.Since(begin).Round(time.Millisecond))
	mustContain(t, out, "restored "+file)
	for _, f := range []string{"encryption/config.yaml", "tls/ca.key", "tls/service-account.key"} {
		if fi, err := os.Stat(filepath.Join(s.dataDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}

	s.start()
	s.waitReady(2 * time.Minute)
	t.Run("every object is back, and nothing after the snapshot", func(t *testing.T) {
		names := strings.Fields(s.mustKubectl("get", "configmap", "-n", "shop", "-o", "jsonpath={.items[*].metadata.name}"))
		var cms int
		for _, n := range names {
			if strings.HasPrefix(n, "cm-") {
				cms++
			}
			if n == "after-the-snapshot" {
				t.Errorf("a ConfigMap made after the snapshot is there")
			}
		}
		if cms != 20 {
			t.Fatalf("%d of 20 ConfigMaps: %v", cms, names)
		}
	})
	t.Run("Secrets are readable", func(t *testing.T) {
		if got := s.secretValue("shop", "plain", "password"); got != "plain-secret-value" {
			t.Fatalf("password %q", got)
		}
		if got := s.secretValue("shop", "sealed", "token"); got != "sealed-secret-value" {
			t.Fatalf("token %q", got)
		}
	})
	t.Run("the same sealing keys decrypt a new SealedSecret", func(t *testing.T) {
		eventually(t, time.Minute, "the sealed-secrets-controller endpoint", func() error {
			_, err := s.kubectl("get", "--raw", "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem")
			return err
		})
		if got := s.fjord(t, "", "cert"); got != cert {
			t.Fatal("the sealing certificate changed")
		}
		sealed, err := run(t, secretYAML("shop", "sealed-later", "token", "sealed-with-the-old-cert"), fjordBin, "seal", "--cert", certFile)
		if err != nil {
			t.Fatalf("fjord seal --cert: %v\n%s", err, sealed)
		}
		s.kubectlApply(sealed)
		s.waitSecret(t, "shop", "sealed-later", "token", "sealed-with-the-old-cert")
	})
	t.Run("GitOps resyncs to what Git says now", func(t *testing.T) {
		s.waitApp(t, "shop-app", "resynced", 2*time.Minute, synced(newRev))
		if got := s.jsonpath("deployment", "payments", "app", "{.metadata.labels.restored}"); got != "resynced" {
			t.Fatalf("label %q", got)
		}
	})
	t.Run("a data dir with a datastore needs --force, which moves it aside", func(t *testing.T) {
		s.cmd.Process.Signal(os.Interrupt)
		if code := s.waitExit(time.Minute); code != 0 {
			t.Fatalf("server exit %d", code)
		}
		out, code := runFjord(t, nil, append([]string{"snapshot", "restore", file}, s.serverFlags()...)...)
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "holds a datastore", "--force", "nothing was written")
		out, code = runFjord(t, nil, append([]string{"snapshot", "restore", file, "--force"}, s.serverFlags()...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		aside, _ := filepath.Glob(filepath.Join(s.dataDir, "before-restore-*"))
		if len(aside) != 1 {
			t.Fatalf("moved aside: %v\n%s", aside, out)
		}
		for _, p := range []string{"tls/ca.key", "encryption/config.yaml"} {
			if _, err := os.Stat(filepath.Join(aside[0], p)); err != nil {
				t.Fatalf("not kept: %v", err)
			}
		}
		if db, _ := filepath.Glob(filepath.Join(aside[0], "db", "*")); len(db) == 0 {
			t.Fatalf("the old datastore was not kept in %s", aside[0])
		}
	})
	if strings.Contains(s.out.String(), "plain-secret-value") || strings.Contains(s.out.String(), "PRIVATE KEY") {
		t.Fatal("a secret value or key is in fjord's log")
	}
}

// editSnapshot rewrites a snapshot entry by entry; edit returns an entry's
// new content.
func editSnapshot(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		data = edit(h.Name, data)
		h.Size = int64(len(data))
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	gw.Close()
	if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, src, dst string, edit func(m map[string]any)) {
	editSnapshot(t, src, dst, func(name string, data []byte) []byte {
		if name != "manifest.json" {
			return data
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		out, _ := json.Marshal(m)
		return out
	})
}

func TestSnapshotBadInput(t *testing.T) {
	s := newServer(t, "--sealing.key-bits", "2048", "--gitops.disable")
	s.start()
	s.waitReady(2 * time.Minute)
	s.mustKubectl("create", "secret", "generic", "kept", "--from-literal=v=kept-value")
	dir := t.TempDir()
	good := s.snapshotSave(t, "--dir", dir)
	data, _ := os.ReadFile(good)
	bad := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(bad, name)
		os.WriteFile(p, content, 0o600)
		return p
	}
	truncated := write("truncated.tar.gz", data[:len(data)/2])
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0xff
	tampered := write("tampered.tar.gz", flipped)
	hashMismatch := filepath.Join(bad, "hash.tar.gz")
	editSnapshot(t, good, hashMismatch, func(name string, d []byte) []byte {
		if name == "encryption/config.yaml" {
			// The same size, one character of the key changed.
			i := bytes.Index(d, []byte("secret: ")) + len("secret: ")
			d = bytes.Clone(d)
			if d[i] == 'A' {
				d[i] = 'B'
			} else {
				d[i] = 'A'
			}
			return d
		}
		return d
	})
	newer := filepath.Join(bad, "newer.tar.gz")
	editManifest(t, good, newer, func(m map[string]any) {
		m["format"] = 2
		m["fjordVersion"] = "v99.0.0"
		m["kubernetesVersion"] = "v1.99.0"
	})

	// Each refused restore goes to a fresh data dir: it must stay empty.
	for name, tc := range map[string]struct {
		file  string
		extra []string
		want  []string
	}{
		"a truncated snapshot":      {truncated, nil, []string{"is damaged", "ends early"}},
		"a tampered snapshot":       {tampered, nil, []string{"is damaged"}},
		"a part whose hash differs": {hashMismatch, nil, []string{"is damaged", "encryption/config.yaml: sha256"}},
		"another datastore kind":    {good, []string{"--datastore-endpoint", "sqlite://"}, []string{"snapshot of the etcd datastore", "configured for sqlite"}},
		"a newer fjord's snapshot":  {newer, nil, []string{"this fjord cannot restore it", "snapshot format 2", "(v99.0.0)", "Kubernetes v1.99.0"}},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "data")
			out, code := runFjord(t, nil, append([]string{"snapshot", "restore", tc.file, "--data-dir", target, "--config", filepath.Join(s.dataDir, "config.yaml")}, tc.extra...)...)
			if code != 1 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			mustContain(t, out, append(tc.want, "restore refused", "nothing was written")...)
			if _, err := os.Stat(target); err == nil {
				t.Fatalf("the data dir was created:\n%s", treeState(t, target))
			}
		})
	}
	t.Run("a full snapshot dir says so and keeps the old snapshots", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mounting a small tmpfs needs root")
		}
		full := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full).CombinedOutput(); err != nil {
			t.Skipf("mount tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", full).Run() })
		old := filepath.Join(full, "old.tar.gz")
		os.WriteFile(old, []byte("an older snapshot"), 0o600)
		out, code := runFjord(t, nil, append([]string{"snapshot", "save", "--dir", full}, s.serverFlags()...)...)
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mustContain(t, out, "snapshot not taken", "is full", "older snapshots are kept")
		entries, _ := os.ReadDir(full)
		if len(entries) != 1 || entries[0].Name() != "old.tar.gz" {
			t.Fatalf("left in the dir: %v", entries)
		}
	})
	t.Run("a good snapshot restores after all that", func(t *testing.T) {
		s.kill9()
		wipe(t, s.dataDir)
		out, code := runFjord(t, nil, append([]string{"snapshot", "restore", good}, s.serverFlags()...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		s.start()
		s.waitReady(2 * time.Minute)
		if got := s.secretValue("default", "kept", "v"); got != "kept-value" {
			t.Fatalf("v=%q", got)
		}
	})
}

func TestSnapshotScheduleRetention(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, "--gitops.disable", "--sealing.key-bits", "2048",
		"--snapshot.schedule", "@every 2s", "--snapshot.retention", "2", "--snapshot.dir", dir)
	s.start()
	s.waitReady(2 * time.Minute)
	manual := s.snapshotSave(t, "--name", "by-hand")
	eventually(t, 2*time.Minute, "four scheduled snapshots taken", func() error {
		if n := strings.Count(s.out.String(), "scheduled snapshot written"); n < 4 {
			return fmt.Errorf("%d written", n)
		}
		return nil
	})
	out, code := runFjord(t, nil, append([]string{"snapshot", "ls"}, s.serverFlags()...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := strings.Count(out, " scheduled "); n != 2 && n != 3 {
		// A third may be in the middle of being written and pruned.
		t.Fatalf("%d scheduled snapshots listed, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, manual) {
		t.Fatalf("the manual snapshot was pruned:\n%s", out)
	}
	eventually(t, 30*time.Second, "exactly 2 scheduled snapshots after a prune", func() error {
		matches, _ := filepath.Glob(filepath.Join(dir, "scheduled-*.tar.gz"))
		if len(matches) != 2 {
			return fmt.Errorf("%v", matches)
		}
		for _, m := range matches {
			if fi, err := os.Stat(m); err != nil || fi.Mode().Perm() != 0o600 {
				return fmt.Errorf("%s: %v %v", m, fi, err)
			}
		}
		return nil
	})
	if ev := s.mustKubectl("get", "events", "-n", "default", "--field-selector", "reason=SnapshotSaved", "-o", "name"); strings.TrimSpace(ev) == "" {
		t.Fatal("no SnapshotSaved event")
	}
}

func TestSnapshotScheduleFailureIsReportedNotFatal(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o600)
	n := listenNotify(t)
	s := newServer(t, "--gitops.disable", "--sealing.key-bits", "2048",
		"--snapshot.schedule", "@every 1s", "--snapshot.dir", filepath.Join(notADir, "snapshots"))
	s.env = []string{"NOTIFY_SOCKET=" + n.path}
	begin := time.Now()
	s.start()
	s.waitReady(2 * time.Minute)
	eventually(t, time.Minute, "a SnapshotFailed event", func() error {
		out, _ := s.kubectl("get", "events", "-n", "default", "--field-selector", "reason=SnapshotFailed", "-o", "jsonpath={.items[*].message}")
		if !strings.Contains(out, "not a directory") {
			return fmt.Errorf("events: %q", out)
		}
		return nil
	})
	eventually(t, 30*time.Second, "the failure metric", func() error {
		out, _ := s.kubectl("get", "--raw", "/metrics")
		if !strings.Contains(out, `fjord_snapshot_scheduled_total{result="failure"}`) {
			return fmt.Errorf("no failure counted")
		}
		return nil
	})
	eventually(t, 30*time.Second, "a STATUS line", func() error {
		for _, m := range n.since(begin) {
			if strings.HasPrefix(m.text, "STATUS=snapshot failed: ") {
				return nil
			}
		}
		return fmt.Errorf("notifications: %v", n.since(begin))
	})
	if !s.running() {
		t.Fatal("the server stopped")
	}
	s.waitReady(10 * time.Second)
}

// TestSnapshotCloudInitRestoresAReplacementVM renders a user-data with
// --restore-snapshot, checks it with cloud-init's schema, then runs what
// it writes on a fresh data dir: the first start restores the snapshot.
func TestSnapshotCloudInitRestoresAReplacementVM(t *testing.T) {
	s := newServer(t, "--gitops.disable", "--sealing.key-bits", "2048")
	s.start()
	s.waitReady(2 * time.Minute)
	s.mustKubectl("create", "secret", "generic", "from-the-old-vm", "--from-literal=v=old-vm-value")
	file := s.snapshotSave(t, "--dir", t.TempDir())
	s.kill9()

	stdout, stderr, code := runSplit(t, nil, "bootstrap", "cloud-init", "--repo", "https://git.example.com/org/infra.git", "--restore-snapshot", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	mustContain(t, stdout, "snapshot.restore-from: /etc/fjord/restore-snapshot.tar.gz", "path: /etc/fjord/restore-snapshot.tar.gz")
	if _, err := exec.LookPath("cloud-init"); err == nil {
		f := filepath.Join(t.TempDir(), "user-data.yaml")
		os.WriteFile(f, []byte(stdout), 0o600)
		if out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput(); err != nil {
			t.Fatalf("cloud-init schema: %v\n%s", err, out)
		}
	}
	var doc struct {
		WriteFiles []struct{ Path, Content, Encoding, Permissions string } `yaml:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	r := newServer(t, "--gitops.disable", "--sealing.key-bits", "2048")
	restoreFile := filepath.Join(t.TempDir(), "restore-snapshot.tar.gz")
	var config string
	for _, f := range doc.WriteFiles {
		switch f.Path {
		case "/etc/fjord/config.yaml":
			config = f.Content
		case "/etc/fjord/restore-snapshot.tar.gz":
			if f.Encoding != "b64" || f.Permissions != "0600" {
				t.Fatalf("snapshot written with encoding %q, permissions %q", f.Encoding, f.Permissions)
			}
			out, err := run(t, f.Content, "base64", "-d")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(restoreFile, []byte(out), 0o600)
		}
	}
	orig, _ := os.ReadFile(file)
	if got, _ := os.ReadFile(restoreFile); !bytes.Equal(got, orig) {
		t.Fatal("the snapshot in the user-data is not the file given")
	}
	// The VM's config, with the test's paths.
	config = strings.ReplaceAll(config, "/etc/fjord/restore-snapshot.tar.gz", restoreFile)
	config = strings.ReplaceAll(config, "gitops.applications-dir: /etc/fjord/applications", "gitops.applications-dir: "+t.TempDir())
	os.WriteFile(filepath.Join(r.dataDir, "config.yaml"), []byte(config), 0o600)
	r.start()
	r.waitReady(2 * time.Minute)
	if got := r.secretValue("default", "from-the-old-vm", "v"); got != "old-vm-value" {
		t.Fatalf("v=%q\n%s", got, tail(r.out.String(), 3000))
	}
	mustContain(t, r.out.String(), "restored snapshot")

	t.Run("a later start does not restore again", func(t *testing.T) {
		r.mustKubectl("create", "secret", "generic", "made-on-the-new-vm", "--from-literal=v=new")
		r.cmd.Process.Signal(os.Interrupt)
		r.waitExit(time.Minute)
		r.start()
		r.waitReady(2 * time.Minute)
		if got := r.secretValue("default", "made-on-the-new-vm", "v"); got != "new" {
			t.Fatalf("v=%q", got)
		}
	})
	t.Run("a bad snapshot renders nothing", func(t *testing.T) {
		cut := filepath.Join(t.TempDir(), "cut.tar.gz")
		os.WriteFile(cut, orig[:len(orig)/3], 0o600)
		stdout, stderr, code := runSplit(t, nil, "bootstrap", "cloud-init", "--repo", "https://git.example.com/org/infra.git", "--restore-snapshot", cut)
		if code == 0 || stdout != "" {
			t.Fatalf("exit %d\n%s", code, stdout)
		}
		mustContain(t, stderr, "--restore-snapshot", "is damaged")
	})
}

// TestSnapshotBeforeUpgrade installs into a root whose data dir a server
// (kine SQLite) runs on; installing again takes a pre-upgrade snapshot.
func TestSnapshotBeforeUpgrade(t *testing.T) {
	root := t.TempDir()
	s := newServer(t, "--gitops.disable", "--sealing.key-bits", "2048", "--datastore-endpoint", "sqlite://")
	s.dataDir = filepath.Join(root, "srv", "fjord")
	os.MkdirAll(s.dataDir, 0o700)
	for i, a := range s.args {
		if a == "--data-dir" {
			s.args[i+1] = s.dataDir
		}
	}
	flags := []string{"--data-dir", "/srv/fjord", "--datastore-endpoint", "sqlite://", "--disable-agent"}
	out, code := runFjord(t, nil, append([]string{"install", "--root", root, "--no-start"}, flags...)...)
	if code != 0 {
		t.Fatalf("first install: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "snapshot") {
		t.Fatalf("a first install took a snapshot:\n%s", out)
	}
	s.start()
	s.waitReady(2 * time.Minute)
	out, code = runFjord(t, nil, append([]string{"install", "--root", root, "--no-start"}, flags...)...)
	if code != 0 {
		t.Fatalf("upgrade: exit %d\n%s", code, out)
	}
	mustContain(t, out, "snapshot before the upgrade: "+filepath.Join(s.dataDir, "snapshots", "pre-upgrade-"))
	out, _ = runFjord(t, nil, append([]string{"snapshot", "ls"}, s.serverFlags()...)...)
	mustContain(t, out, "pre-upgrade", "sqlite")
}
