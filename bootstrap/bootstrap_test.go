package bootstrap

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
)

var testHosts = Hosts{IPs: []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("127.0.0.1")}, DNSNames: []string{"kubernetes.default.svc", "node1"}}

func TestEnsurePKI(t *testing.T) {
	dir := t.TempDir()
	p, err := EnsurePKI(dir, testHosts, "node1")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("private keys are 0600", func(t *testing.T) {
		for _, kp := range []KeyPair{p.CA, p.EtcdCA, p.APIServer, p.Admin, p.ServiceAccount, p.EtcdClient} {
			st, err := os.Stat(kp.Key)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v", kp.Key, st.Mode().Perm())
			}
		}
	})
	t.Run("the serving certificate covers every host and is signed by the CA", func(t *testing.T) {
		certs, err := certutil.CertsFromFile(p.APIServer.Cert)
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := certutil.CertsFromFile(p.CA.Cert)
		if err := certs[0].CheckSignatureFrom(ca[0]); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"10.0.0.5", "127.0.0.1", "kubernetes.default.svc", "node1"} {
			if err := certs[0].VerifyHostname(h); err != nil {
				t.Errorf("not valid for %s: %v", h, err)
			}
		}
	})
	t.Run("client certificates carry the identities RBAC expects", func(t *testing.T) {
		for kp, want := range map[KeyPair]string{p.Admin: "system:masters", p.Kubelet: "system:nodes"} {
			certs, _ := certutil.CertsFromFile(kp.Cert)
			if !strings.Contains(strings.Join(certs[0].Subject.Organization, ","), want) {
				t.Errorf("%s: organisations %v, want %s", kp.Cert, certs[0].Subject.Organization, want)
			}
		}
		certs, _ := certutil.CertsFromFile(p.Kubelet.Cert)
		if certs[0].Subject.CommonName != "system:node:node1" {
			t.Errorf("kubelet CN %q", certs[0].Subject.CommonName)
		}
	})
	t.Run("a restart reuses every file", func(t *testing.T) {
		before := readAll(t, p)
		if _, err := EnsurePKI(dir, testHosts, "node1"); err != nil {
			t.Fatal(err)
		}
		after := readAll(t, p)
		for path, b := range before {
			if !bytes.Equal(b, after[path]) {
				t.Errorf("%s changed on restart", path)
			}
		}
	})
	t.Run("a new node IP re-issues only the serving certificate", func(t *testing.T) {
		caBefore, _ := os.ReadFile(p.CA.Cert)
		moved := Hosts{IPs: []net.IP{net.ParseIP("10.0.0.9")}, DNSNames: testHosts.DNSNames}
		if _, err := EnsurePKI(dir, moved, "node1"); err != nil {
			t.Fatal(err)
		}
		certs, _ := certutil.CertsFromFile(p.APIServer.Cert)
		if err := certs[0].VerifyHostname("10.0.0.9"); err != nil {
			t.Fatal(err)
		}
		caAfter, _ := os.ReadFile(p.CA.Cert)
		if !bytes.Equal(caBefore, caAfter) {
			t.Fatal("the CA changed")
		}
	})
	t.Run("a corrupt file is an error naming it, and is left alone", func(t *testing.T) {
		garbage := []byte("not a certificate")
		if err := os.WriteFile(p.CA.Cert, garbage, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := EnsurePKI(dir, testHosts, "node1")
		if err == nil || !strings.Contains(err.Error(), p.CA.Cert) {
			t.Fatalf("got %v", err)
		}
		if b, _ := os.ReadFile(p.CA.Cert); !bytes.Equal(b, garbage) {
			t.Fatal("the corrupt file was overwritten")
		}
	})
}

func readAll(t *testing.T, p PKI) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(p.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	p, err := EnsurePKI(dir, testHosts, "node1")
	if err != nil {
		t.Fatal(err)
	}
	k, err := WriteKubeconfigs(dir, "https://127.0.0.1:6443", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{k.Admin, k.ControllerManager, k.Scheduler, k.Kubelet} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", path, st.Mode().Perm())
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cfg.Host != "https://127.0.0.1:6443" {
			t.Errorf("%s: host %q", path, cfg.Host)
		}
	}
	if k.Admin != filepath.Join(dir, "kubeconfig.yaml") {
		t.Errorf("admin kubeconfig at %s", k.Admin)
	}
}

func TestEncryptionConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := EnsureEncryptionConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if !bytes.Contains(first, []byte("secretbox")) || !bytes.Contains(first, []byte("secrets")) {
		t.Fatalf("unexpected config:\n%s", first)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if _, err := EnsureEncryptionConfig(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(first, again) {
		t.Fatal("the key changed on restart: stored Secrets would be unreadable")
	}
	if err := os.WriteFile(path, []byte("garbage: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureEncryptionConfig(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
}
