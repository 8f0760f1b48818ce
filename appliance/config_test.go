package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lookupOf(m map[string]string) Lookup {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.yaml")
	writeFile(t, main, "data-dir: /from/file\nhttps-listen-port: 7000\nnode-name: file-node\nlog-format: json\nfsync-p99-max: 20ms\n")
	writeFile(t, main+".d/10-b.yaml", "https-listen-port: 7001\nnode-name: dropin-b\n")
	writeFile(t, main+".d/20-a.yaml", "node-name: dropin-a\n")
	writeFile(t, main+".d/ignored.txt", "node-name: not-yaml-suffix\n")

	t.Run("drop-ins apply after the file, alphabetically", func(t *testing.T) {
		cfg, err := LoadConfig(main, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTPSListenPort != 7001 || cfg.NodeName != "dropin-a" || cfg.DataDir != "/from/file" {
			t.Fatalf("got port %d node %q data-dir %q", cfg.HTTPSListenPort, cfg.NodeName, cfg.DataDir)
		}
		if cfg.FsyncGate.P99Max != 20*time.Millisecond || cfg.LogFormat != "json" {
			t.Fatalf("got p99 %s format %q", cfg.FsyncGate.P99Max, cfg.LogFormat)
		}
	})
	t.Run("environment and flags override files", func(t *testing.T) {
		cfg, err := LoadConfig(main, true, lookupOf(map[string]string{"node-name": "flag-node", "disable-agent": "true"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.NodeName != "flag-node" || !cfg.DisableAgent || cfg.HTTPSListenPort != 7001 {
			t.Fatalf("got node %q disable-agent %v port %d", cfg.NodeName, cfg.DisableAgent, cfg.HTTPSListenPort)
		}
	})
	t.Run("defaults stay where nothing is said", func(t *testing.T) {
		cfg, err := LoadConfig(filepath.Join(dir, "missing.yaml"), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := Default(); cfg.DataDir != d.DataDir || cfg.HTTPSListenPort != 6443 || cfg.ControlPlane.ServiceCIDR != "10.43.0.0/16" {
			t.Fatalf("got %+v", cfg)
		}
	})
	t.Run("a required file that is missing is an error", func(t *testing.T) {
		_, err := LoadConfig(filepath.Join(dir, "missing.yaml"), true, nil)
		if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLoadConfigErrorsNameFileAndKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"an unknown key", "data-dir: /x\nhttps-listen-prot: 1\n", []string{"bad.yaml", `unknown key "https-listen-prot"`}},
		{"a value of the wrong type", "https-listen-port: lots\n", []string{"bad.yaml", `"https-listen-port"`, `invalid integer "lots"`}},
		{"an invalid duration", "fsync-p99-max: soon\n", []string{"bad.yaml", `"fsync-p99-max"`, "invalid duration"}},
		{"invalid YAML", "data-dir: [unclosed\n", []string{"bad.yaml", "invalid YAML", "line"}},
		{"a wrong version", "version: other/v9\n", []string{"bad.yaml", `"version"`}},
	} {
		t.Run("reports "+tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			writeFile(t, path, tc.content)
			_, err := LoadConfig(path, true, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("reports a bad flag value with the flag's name", func(t *testing.T) {
		_, err := LoadConfig(filepath.Join(dir, "none.yaml"), false, lookupOf(map[string]string{"etcd-client-port": "x"}))
		if err == nil || !strings.Contains(err.Error(), "--etcd-client-port") || !strings.Contains(err.Error(), "FJORD_ETCD_CLIENT_PORT") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("nested keys are flattened with dots", func(t *testing.T) {
		path := filepath.Join(dir, "nested.yaml")
		writeFile(t, path, "gitops:\n  poll-interval: 1m\n  pol-interval: 2m\n")
		_, err := LoadConfig(path, true, nil)
		if err == nil || !strings.Contains(err.Error(), `unknown key "gitops.pol-interval"`) {
			t.Fatalf("got %v", err)
		}
		writeFile(t, path, "gitops:\n  poll-interval: 1m\n")
		cfg, err := LoadConfig(path, true, nil)
		if err != nil || cfg.GitOps.PollInterval != time.Minute {
			t.Fatalf("got %v, %s", err, cfg.GitOps.PollInterval)
		}
	})
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.DisableAgent = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults with --disable-agent are invalid: %v", err)
	}
	cfg.DataDir = "relative"
	cfg.HTTPSListenPort = 70000
	cfg.BindAddress = "nowhere"
	cfg.NodeIP = "127.0.0.1"
	cfg.LogFormat = "xml"
	cfg.Datastore.Endpoint = "redis://x"
	cfg.ControlPlane.ServiceCIDR = "10.43.0.0"
	cfg.ComponentReadyTimeout = 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"data-dir", "https-listen-port", "bind-address", "node-ip", "log-format", "datastore-endpoint", "service-cidr", "component-ready-timeout"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"data-dir":             "FJORD_DATA_DIR",
		"gitops.poll-interval": "FJORD_GITOPS_POLL_INTERVAL",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestEveryKeyRoundTrips(t *testing.T) {
	cfg := Default()
	for _, k := range cfg.KeyInfos() {
		if err := cfg.Set(k.Name, k.Default); err != nil {
			t.Errorf("setting %s to its default %q: %v", k.Name, k.Default, err)
		}
	}
	if cfg.DataDir != Default().DataDir || cfg.FsyncGate != Default().FsyncGate {
		t.Fatalf("defaults changed by a round trip: %+v", cfg)
	}
}
