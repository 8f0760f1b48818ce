//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const workload = `
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
`

// secretValue must never be readable from the datastore.
const secretValue = "hunter2-e2e-plaintext"

// rawReader reads a key straight from the datastore behind the API server.
type rawReader func(t *testing.T, s *server, key string) []byte

func etcdRaw(t *testing.T, s *server, key string) []byte {
	tlsDir := filepath.Join(s.dataDir, "tls", "etcd")
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "client.crt"), filepath.Join(tlsDir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return getRaw(t, clientv3.Config{
		Endpoints: []string{"https://127.0.0.1:" + argValue(s.args, "--etcd-client-port")},
		TLS:       &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}, key)
}

func kineRaw(t *testing.T, s *server, key string) []byte {
	return getRaw(t, clientv3.Config{Endpoints: []string{"unix://" + filepath.Join(s.dataDir, "db", "kine.sock")}}, key)
}

func getRaw(t *testing.T, cfg clientv3.Config, key string) []byte {
	t.Helper()
	cfg.DialTimeout = 5 * time.Second
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("reading %s from the datastore: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("reading %s from the datastore: %d keys", key, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func TestControlPlaneOnEmbeddedEtcd(t *testing.T) {
	s := newServer(t)
	exerciseControlPlane(t, s, etcdRaw)
	if _, err := os.Stat(filepath.Join(s.dataDir, "db", "etcd", "member")); err != nil {
		t.Fatalf("etcd data is not in <data-dir>/db/etcd: %v", err)
	}
}

func TestControlPlaneOnKineSQLite(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, "--datastore-endpoint", "sqlite://"+filepath.Join(dir, "state.db"))
	exerciseControlPlane(t, s, kineRaw)
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Fatalf("the SQLite database is not where the endpoint says: %v", err)
	}
}

func TestControlPlaneOnKinePostgres(t *testing.T) {
	endpoint, _ := postgresDatabase(t)
	s := newServer(t, "--datastore-endpoint", endpoint)
	exerciseControlPlane(t, s, kineRaw)
	if strings.Contains(s.out.String(), "fjord@") && strings.Contains(s.out.String(), ":fjord@") {
		t.Fatal("the datastore password appears in fjord's output")
	}
}

// postgresDatabase makes a PostgreSQL database of the test's own (so reruns
// start empty) and returns its kine endpoint and its name.
func postgresDatabase(t *testing.T) (endpoint, name string) {
	t.Helper()
	dsn := os.Getenv("FJORD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FJORD_TEST_POSTGRES is not set: `make e2e` starts PostgreSQL and sets it")
		}
		t.Skip("FJORD_TEST_POSTGRES is not set (make e2e sets it)")
	}
	db := fmt.Sprintf("fjord_e2e_%d", time.Now().UnixNano())
	psql(t, "CREATE DATABASE "+db)
	t.Cleanup(func() { exec.Command("psql", dsn, "-qc", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)").Run() })
	return strings.Replace(dsn, "/fjord?", "/"+db+"?", 1), db
}

// psql runs one statement as the test role on the test cluster.
func psql(t *testing.T, sql string) {
	t.Helper()
	out, err := exec.Command("psql", os.Getenv("FJORD_TEST_POSTGRES"), "-qc", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
}

func exerciseControlPlane(t *testing.T, s *server, raw rawReader) {
	s.start()
	begin := time.Now()
	s.waitReady(2 * time.Minute)
	t.Logf("ready %.1fs after start", time.Since(begin).Seconds())

	t.Run("kubectl lists the built-in namespaces", func(t *testing.T) {
		out := s.mustKubectl("get", "ns", "-o", "name")
		for _, ns := range []string{"namespace/default", "namespace/kube-system"} {
			if !strings.Contains(out, ns) {
				t.Fatalf("%s missing from:\n%s", ns, out)
			}
		}
	})
	t.Run("the controller manager creates a Deployment's ReplicaSet", func(t *testing.T) {
		s.kubectlApply(workload)
		eventually(t, time.Minute, "ReplicaSet of demo/web", func() error {
			out, err := s.kubectl("get", "rs", "-n", "demo", "-l", "app=web", "-o", "name")
			if err != nil || !strings.Contains(out, "replicaset.apps/web-") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})
	t.Run("the scheduler and controllers run: the default ServiceAccount exists", func(t *testing.T) {
		eventually(t, time.Minute, "serviceaccount demo/default", func() error {
			_, err := s.kubectl("get", "sa", "-n", "demo", "default")
			return err
		})
	})
	t.Run("secrets are encrypted at rest", func(t *testing.T) {
		s.mustKubectl("create", "secret", "generic", "s1", "-n", "demo", "--from-literal=password="+secretValue)
		value := raw(t, s, "/registry/secrets/demo/s1")
		if !strings.HasPrefix(string(value), "k8s:enc:") {
			t.Fatalf("stored secret is not encrypted: %.40q", value)
		}
		if strings.Contains(string(value), secretValue) {
			t.Fatal("the plaintext is in the datastore")
		}
	})
	t.Run("anonymous requests are refused", func(t *testing.T) {
		for _, path := range []string{"/api/v1/namespaces", "/healthz", "/version"} {
			if code := anonymousStatus(t, s.port, path); code != 401 {
				t.Errorf("anonymous GET %s: %d, want 401", path, code)
			}
		}
	})
	t.Run("fjord kubectl uses the admin kubeconfig", func(t *testing.T) {
		env := []string{"KUBECONFIG=", "FJORD_DATA_DIR=" + s.dataDir}
		out, code := runFjord(t, env, "kubectl", "get", "deploy", "-n", "demo", "-o", "name")
		if code != 0 || !strings.Contains(out, "deployment.apps/web") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		out, code = runFjord(t, env, "kubectl", "version", "-o", "json")
		if code != 0 || !strings.Contains(out, `"gitVersion": "v1.37.2"`) {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("the admin kubeconfig is 0600 and fjord kubeconfig prints it", func(t *testing.T) {
		st, err := os.Stat(s.kubeconfig())
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("kubeconfig: %v %v", err, st.Mode())
		}
		out, code := runFjord(t, nil, "kubeconfig", "--data-dir", s.dataDir)
		want, _ := os.ReadFile(s.kubeconfig())
		if code != 0 || out != string(want) {
			t.Fatalf("exit %d, output differs from the file", code)
		}
	})
	t.Run("a restart after kill -9 keeps every object", func(t *testing.T) {
		s.kill9()
		s.start()
		s.waitReady(2 * time.Minute)
		out := s.mustKubectl("get", "secret", "s1", "-n", "demo", "-o", "jsonpath={.data.password}")
		got, _ := base64.StdEncoding.DecodeString(out)
		if string(got) != secretValue {
			t.Fatalf("secret after restart: %q", got)
		}
		s.mustKubectl("get", "deploy", "web", "-n", "demo")
		s.mustKubectl("get", "ns", "demo")
	})
	t.Run("SIGTERM stops everything cleanly", func(t *testing.T) {
		begin := time.Now()
		s.cmd.Process.Signal(os.Interrupt)
		if code := s.waitExit(45 * time.Second); code != 0 {
			t.Fatalf("exit code %d after SIGINT\n%s", code, tail(s.out.String(), 3000))
		}
		if took := time.Since(begin); took > 30*time.Second {
			t.Fatalf("took %s to stop", took)
		}
		if strings.Contains(s.out.String(), secretValue) {
			t.Fatal("a secret value appears in fjord's output")
		}
	})
}
