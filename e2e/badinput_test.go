//go:build e2e

package e2e

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refuses starts a server that must exit non-zero quickly, and returns its output.
func refuses(t *testing.T, s *server) string {
	t.Helper()
	s.start()
	if code := s.waitExit(time.Minute); code == 0 {
		t.Fatalf("fjord exited 0; want a refusal\n%s", s.out.String())
	}
	return s.out.String()
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, tail(out, 3000))
		}
	}
}

func TestBadInputIsRefusedClearly(t *testing.T) {
	t.Run("an invalid config file names the file and the key", func(t *testing.T) {
		s := newServer(t)
		cfg := filepath.Join(s.dataDir, "config.yaml")
		os.WriteFile(cfg, []byte("https-listen-port: lots\n"), 0o600)
		mustContain(t, refuses(t, s), cfg, `"https-listen-port"`, `invalid integer "lots"`)
	})
	t.Run("an unknown config key names the file and the key", func(t *testing.T) {
		s := newServer(t)
		dropin := filepath.Join(s.dataDir, "config.yaml.d", "50-typo.yaml")
		os.MkdirAll(filepath.Dir(dropin), 0o700)
		os.WriteFile(dropin, []byte("datastore-endpiont: sqlite://\n"), 0o600)
		mustContain(t, refuses(t, s), dropin, `unknown key "datastore-endpiont"`)
	})
	t.Run("an unknown datastore scheme is named", func(t *testing.T) {
		s := newServer(t, "--datastore-endpoint", "redis://127.0.0.1:6379")
		mustContain(t, refuses(t, s), "datastore-endpoint", `unknown scheme "redis"`)
	})
	t.Run("a port already in use is named", func(t *testing.T) {
		s := newServer(t)
		l, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(s.port))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustContain(t, refuses(t, s), "https-listen-port "+strconv.Itoa(s.port), "address already in use")
	})
	t.Run("a key backup that is not one is named, before anything starts", func(t *testing.T) {
		backup := filepath.Join(t.TempDir(), "keys.yaml")
		os.WriteFile(backup, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: k, namespace: kube-system}\ndata: {tls.key: Z2FyYmFnZQ==, tls.crt: Z2FyYmFnZQ==}\n"), 0o600)
		s := newServer(t, "--sealing.import-keys", backup)
		out := refuses(t, s)
		mustContain(t, out, "sealing.import-keys", backup, "tls.key is not a PEM private key")
		if strings.Contains(out, "component ready") {
			t.Fatalf("components started before the backup was read:\n%s", out)
		}
	})
	t.Run("a data dir that cannot be written is named", func(t *testing.T) {
		s := newServer(t)
		// Root ignores permissions: a data dir below a regular file cannot exist.
		file := filepath.Join(t.TempDir(), "plain-file")
		os.WriteFile(file, nil, 0o600)
		s.args = append(s.args, "--data-dir", filepath.Join(file, "data"))
		mustContain(t, refuses(t, s), "data-dir "+filepath.Join(file, "data"), "not a directory")
	})
	t.Run("a corrupt PKI file is named and nothing is touched", func(t *testing.T) {
		s := newServer(t)
		s.start()
		s.waitReady(2 * time.Minute)
		s.mustKubectl("create", "namespace", "keep-me")
		s.cmd.Process.Signal(os.Interrupt)
		s.waitExit(45 * time.Second)

		caPath := filepath.Join(s.dataDir, "tls", "ca.crt")
		garbage := []byte("-----BEGIN CERTIFICATE-----\nbroken\n")
		os.WriteFile(caPath, garbage, 0o644)
		before := snapshot(t, s.dataDir)
		mustContain(t, refuses(t, s), caPath)
		after := snapshot(t, s.dataDir)
		for path, b := range before {
			if strings.HasSuffix(path, "fsync-gate.json") {
				continue
			}
			if !bytes.Equal(b, after[path]) {
				t.Errorf("%s changed", path)
			}
		}
	})
	t.Run("every configuration problem is reported at once", func(t *testing.T) {
		s := newServer(t, "--bind-address", "nowhere", "--service-cidr", "10.43.0.0", "--log-format", "xml")
		mustContain(t, refuses(t, s), "bind-address:", "service-cidr:", "log-format:")
	})
}

// snapshot reads every regular file under dir (the etcd data included).
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files[path], _ = os.ReadFile(path)
		}
		return nil
	})
	return files
}

func TestFsyncGate(t *testing.T) {
	t.Run("an impossible limit refuses to start and writes no datastore files", func(t *testing.T) {
		s := newServer(t, "--fsync-gate=enforce", "--fsync-p99-max", "1us")
		out := refuses(t, s)
		mustContain(t, out, "exceeds the 1µs limit", filepath.Join(s.dataDir, "db", "etcd"), "--fsync-gate=warn")
		entries, _ := os.ReadDir(filepath.Join(s.dataDir, "db", "etcd"))
		if len(entries) != 0 {
			t.Fatalf("datastore files were written: %v", entries)
		}
	})
	t.Run("warn mode starts anyway, loudly", func(t *testing.T) {
		s := newServer(t, "--fsync-gate=warn", "--fsync-p99-max", "1us")
		s.start()
		s.waitReady(2 * time.Minute)
		mustContain(t, s.out.String(), "level=WARN", "fsync")
		metrics := s.mustKubectl("get", "--raw", "/metrics")
		mustContain(t, metrics, `fjord_fsync_gate_verdict{verdict="fail"} 1`, "fjord_fsync_gate_p99_seconds")
	})
}

func TestConfigPrecedence(t *testing.T) {
	// `fjord kubeconfig` reads data-dir through the same loader as the server:
	// each layer points at a data dir whose kubeconfig names the layer.
	base := t.TempDir()
	layer := func(name string) string {
		dir := filepath.Join(base, name)
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "kubeconfig.yaml"), []byte("# "+name+"\n"), 0o600)
		return dir
	}
	cfg := filepath.Join(base, "config.yaml")
	os.WriteFile(cfg, []byte("data-dir: "+layer("file")+"\n"), 0o600)
	os.MkdirAll(cfg+".d", 0o700)
	dropins := func(names ...string) {
		os.RemoveAll(cfg + ".d")
		os.MkdirAll(cfg+".d", 0o700)
		for _, n := range names {
			os.WriteFile(filepath.Join(cfg+".d", n+".yaml"), []byte("data-dir: "+layer(n)+"\n"), 0o600)
		}
	}
	for _, tc := range []struct {
		name    string
		dropins []string
		env     []string
		args    []string
		want    string
	}{
		{"the file applies", nil, nil, nil, "file"},
		{"drop-ins apply after the file, alphabetically", []string{"20-b", "10-a"}, nil, nil, "20-b"},
		{"the environment beats the files", []string{"10-a"}, []string{"FJORD_DATA_DIR=" + layer("env")}, nil, "env"},
		{"a flag beats the environment", []string{"10-a"}, []string{"FJORD_DATA_DIR=" + layer("env")}, []string{"--data-dir", layer("flag")}, "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dropins(tc.dropins...)
			out, code := runFjord(t, tc.env, append([]string{"kubeconfig", "--config", cfg}, tc.args...)...)
			if code != 0 || strings.TrimSpace(out) != "# "+tc.want {
				t.Fatalf("exit %d, got %q, want the %s layer", code, out, tc.want)
			}
		})
	}
}
