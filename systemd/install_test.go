package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestUnitFile(t *testing.T) {
	t.Run("the embedded unit is systemd/fjord.service", func(t *testing.T) {
		data, err := os.ReadFile("fjord.service")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, Unit) {
			t.Fatal("the embedded unit differs from fjord.service")
		}
	})
	t.Run("ExecStart runs the installed binary", func(t *testing.T) {
		if !strings.Contains(string(Unit), "\nExecStart="+BinaryPath+" server\n") {
			t.Fatalf("no ExecStart=%s server in the unit", BinaryPath)
		}
	})
	t.Run("what the node needs is there", func(t *testing.T) {
		for _, line := range []string{"Type=notify", "KillMode=process", "Delegate=yes", "Restart=always",
			"ExecStartPre=-/sbin/modprobe br_netfilter", "ExecStartPre=-/sbin/modprobe overlay",
			"StartLimitIntervalSec=", "StartLimitBurst=", "TimeoutStartSec=", "WatchdogSec="} {
			if !strings.Contains(string(Unit), "\n"+line) {
				t.Errorf("the unit has no %s", line)
			}
		}
	})
	t.Run("systemd-analyze verify finds nothing to say", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		// The binary is not installed here: verify the unit with a command
		// that exists, everything else unchanged.
		unit := filepath.Join(t.TempDir(), UnitName)
		os.WriteFile(unit, bytes.ReplaceAll(Unit, []byte("ExecStart="+BinaryPath), []byte("ExecStart=/bin/true")), 0o644)
		out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

func TestInstallation(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "fjord")
	os.WriteFile(bin, []byte("#!/bin/sh\necho v1\n"), 0o755)
	in := Installation{Root: root, Binary: bin, ConfigFile: "/etc/fjord/config.yaml", Config: []byte("data-dir: /srv/fjord\n"), DataDir: "/srv/fjord"}
	path := func(p string) string { return filepath.Join(root, p) }

	t.Run("writes the binary, helper, config and unit with their modes, and enables the unit", func(t *testing.T) {
		done, err := in.Write()
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != 5 {
			t.Errorf("changes: %q", done)
		}
		for p, want := range map[string]os.FileMode{BinaryPath: 0o755, KillallPath: 0o755, "/etc/fjord/config.yaml": 0o600, UnitPath: 0o644} {
			if got := mode(t, path(p)); got != want {
				t.Errorf("%s: mode %o, want %o", p, got, want)
			}
		}
		if data, _ := os.ReadFile(path(UnitPath)); !bytes.Equal(data, Unit) {
			t.Error("the unit written is not the embedded one")
		}
		if data, _ := os.ReadFile(path("/etc/fjord/config.yaml")); string(data) != "data-dir: /srv/fjord\n" {
			t.Errorf("config %q", data)
		}
		if target, err := os.Readlink(path(WantsLink)); err != nil || target != UnitPath {
			t.Errorf("enable link: %q %v", target, err)
		}
		if data, _ := os.ReadFile(path(KillallPath)); !strings.Contains(string(data), BinaryPath+" killall --data-dir '/srv/fjord'") {
			t.Errorf("helper:\n%s", data)
		}
	})
	t.Run("running it again upgrades the binary and leaves no temporary files", func(t *testing.T) {
		os.WriteFile(bin, []byte("#!/bin/sh\necho v2\n"), 0o755)
		if _, err := in.Write(); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(path(BinaryPath)); !strings.Contains(string(data), "v2") {
			t.Errorf("binary not upgraded: %q", data)
		}
		for _, dir := range []string{"/usr/local/bin", "/etc/fjord", "/etc/systemd/system"} {
			entries, _ := os.ReadDir(path(dir))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("left behind: %s/%s", dir, e.Name())
				}
			}
		}
	})
	t.Run("without a new configuration the file there is kept", func(t *testing.T) {
		keep := in
		keep.Config = nil
		done, err := keep.Write()
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(path("/etc/fjord/config.yaml")); string(data) != "data-dir: /srv/fjord\n" {
			t.Errorf("config %q", data)
		}
		if !strings.Contains(strings.Join(done, "\n"), "kept "+path("/etc/fjord/config.yaml")) {
			t.Errorf("changes: %q", done)
		}
	})
	t.Run("the running binary is not copied onto itself", func(t *testing.T) {
		self := in
		self.Binary = path(BinaryPath)
		done, err := self.Write()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(done[0], "kept ") {
			t.Errorf("changes: %q", done)
		}
	})
	t.Run("uninstall removes what install wrote and keeps the data dir", func(t *testing.T) {
		os.MkdirAll(path("/srv/fjord/db"), 0o700)
		os.WriteFile(path("/etc/fjord/sealing-keys.yaml"), []byte("k"), 0o600)
		done, err := Removal{Root: root, ConfigFile: "/etc/fjord/config.yaml", DataDir: "/srv/fjord"}.Remove()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{BinaryPath, KillallPath, "/etc/fjord/config.yaml", UnitPath, WantsLink} {
			if _, err := os.Lstat(path(p)); !os.IsNotExist(err) {
				t.Errorf("%s is still there", p)
			}
		}
		for _, p := range []string{"/srv/fjord/db", "/etc/fjord/sealing-keys.yaml"} {
			if _, err := os.Stat(path(p)); err != nil {
				t.Errorf("%s was removed", p)
			}
		}
		if !strings.Contains(strings.Join(done, "\n"), "kept "+path("/srv/fjord")) {
			t.Errorf("changes: %q", done)
		}
	})
	t.Run("uninstall --purge removes the data dir and /etc/fjord too", func(t *testing.T) {
		if _, err := in.Write(); err != nil {
			t.Fatal(err)
		}
		if _, err := (Removal{Root: root, ConfigFile: "/etc/fjord/config.yaml", DataDir: "/srv/fjord", Purge: true}).Remove(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/srv/fjord", "/etc/fjord"} {
			if _, err := os.Stat(path(p)); !os.IsNotExist(err) {
				t.Errorf("%s is still there", p)
			}
		}
	})
}

func TestPurgeRefuses(t *testing.T) {
	for _, dir := range []string{"/", "/var/lib", "/usr/", "relative/dir", "/etc"} {
		r := Removal{Root: t.TempDir(), ConfigFile: "/etc/fjord/config.yaml", DataDir: dir, Purge: true}
		if err := r.Check(); err == nil {
			t.Errorf("purging data-dir %q was allowed", dir)
		}
		if _, err := r.Remove(); err == nil {
			t.Errorf("Remove purged data-dir %q", dir)
		}
	}
}

// TestMountsBelow reads the real mount table: /proc is a mount point on
// every Linux, a fresh temporary directory has none below it.
func TestMountsBelow(t *testing.T) {
	if mounts, err := mountsBelow("/proc"); err != nil || len(mounts) == 0 {
		t.Fatalf("mounts below /proc: %v %v", mounts, err)
	}
	if mounts, err := mountsBelow(t.TempDir()); err != nil || len(mounts) != 0 {
		t.Fatalf("mounts below a new directory: %v %v", mounts, err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/trail\04`: `/trail\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKillallScriptQuotes(t *testing.T) {
	s := string(KillallScript("/srv/it's here"))
	if !strings.Contains(s, `--data-dir '/srv/it'\''s here' "$@"`) {
		t.Fatalf("script:\n%s", s)
	}
	if _, err := exec.LookPath("sh"); err == nil {
		f := filepath.Join(t.TempDir(), "k")
		os.WriteFile(f, []byte(s), 0o755)
		if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
			t.Fatalf("sh -n: %v %s", err, out)
		}
	}
}
