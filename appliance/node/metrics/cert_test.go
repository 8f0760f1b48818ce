package metrics

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/fjord-dev/fjord/bootstrap"
)

// newCA writes a self-signed CA into dir, as bootstrap.EnsurePKI would.
func newCA(t *testing.T, dir, name string) bootstrap.KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: name}, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := certutil.EncodeCertificates(cert)
	if err != nil {
		t.Fatal(err)
	}
	kp := bootstrap.KeyPair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(kp.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.Cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return kp
}

// verify checks cert against ca the way the aggregation layer does: by the
// Service's DNS name, for server authentication.
func verify(t *testing.T, pair, ca bootstrap.KeyPair, name string, usage x509.ExtKeyUsage, now time.Time) error {
	t.Helper()
	certs, err := certutil.CertsFromFile(pair.Cert)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := certutil.NewPool(ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
	return err
}

func TestEnsureServingCert(t *testing.T) {
	nodeIP := net.ParseIP("192.0.2.10")
	// A minute ahead: the subtests' CAs are made later and valid from the
	// second they are made (certutil), so "now" must not fall before them.
	now := time.Now().Add(time.Minute)

	t.Run("issues a certificate the aggregation layer accepts", func(t *testing.T) {
		dir := t.TempDir()
		ca := newCA(t, dir, "ca")
		pair := servingPair(dir)
		issued, err := ensureServingCert(pair, ca, nodeIP, now)
		if err != nil || !issued {
			t.Fatalf("ensureServingCert() = %v, %v; want true, nil", issued, err)
		}
		for _, name := range []string{"metrics-server.kube-system.svc", "192.0.2.10"} {
			if err := verify(t, pair, ca, name, x509.ExtKeyUsageServerAuth, now); err != nil {
				t.Errorf("verifying for %s: %v", name, err)
			}
		}
		if err := verify(t, pair, ca, "metrics-server.kube-system.svc", x509.ExtKeyUsageClientAuth, now); err == nil {
			t.Error("the serving certificate also authenticates clients; the CA is the API server's client CA")
		}
		if fi, err := os.Stat(pair.Key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
		}
	})

	t.Run("keeps a usable certificate", func(t *testing.T) {
		dir := t.TempDir()
		ca := newCA(t, dir, "ca")
		pair := servingPair(dir)
		if _, err := ensureServingCert(pair, ca, nodeIP, now); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(pair.Cert)
		issued, err := ensureServingCert(pair, ca, nodeIP, now.Add(24*time.Hour))
		after, _ := os.ReadFile(pair.Cert)
		if err != nil || issued || string(before) != string(after) {
			t.Errorf("ensureServingCert() = %v, %v and changed=%v; want false, nil, unchanged", issued, err, string(before) != string(after))
		}
	})

	reissues := []struct {
		name   string
		change func(t *testing.T, dir string, pair bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time)
	}{
		{"re-issues when the node IP changes", func(t *testing.T, dir string, _ bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time) {
			return bootstrap.KeyPair{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}, net.ParseIP("192.0.2.11"), now
		}},
		{"re-issues close to expiry", func(t *testing.T, dir string, _ bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time) {
			return bootstrap.KeyPair{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}, nodeIP, now.Add(certValidity - certRenewBefore)
		}},
		{"re-issues when the CA changed", func(t *testing.T, dir string, _ bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time) {
			return newCA(t, dir, "other-ca"), nodeIP, now
		}},
		{"replaces a key that does not belong to the certificate", func(t *testing.T, dir string, pair bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			pem, _ := keyutil.MarshalPrivateKeyToPEM(key)
			if err := os.WriteFile(pair.Key, pem, 0o600); err != nil {
				t.Fatal(err)
			}
			return bootstrap.KeyPair{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}, nodeIP, now
		}},
		{"replaces a certificate that cannot be read", func(t *testing.T, dir string, pair bootstrap.KeyPair) (bootstrap.KeyPair, net.IP, time.Time) {
			if err := os.WriteFile(pair.Cert, []byte("not a certificate"), 0o644); err != nil {
				t.Fatal(err)
			}
			return bootstrap.KeyPair{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}, nodeIP, now
		}},
	}
	for _, tt := range reissues {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newCA(t, dir, "ca")
			pair := servingPair(dir)
			if _, err := ensureServingCert(pair, ca, nodeIP, now); err != nil {
				t.Fatal(err)
			}
			ca, ip, at := tt.change(t, dir, pair)
			issued, err := ensureServingCert(pair, ca, ip, at)
			if err != nil || !issued {
				t.Fatalf("ensureServingCert() = %v, %v; want true, nil", issued, err)
			}
			if err := verify(t, pair, ca, ip.String(), x509.ExtKeyUsageServerAuth, at); err != nil {
				t.Errorf("the new certificate does not verify: %v", err)
			}
		})
	}

	t.Run("fails without the CA key, naming the file", func(t *testing.T) {
		dir := t.TempDir()
		ca := newCA(t, dir, "ca")
		os.Remove(ca.Key)
		_, err := ensureServingCert(servingPair(dir), ca, nodeIP, now)
		if err == nil || !strings.Contains(err.Error(), ca.Key) {
			t.Errorf("ensureServingCert() = %v, want an error naming %s", err, ca.Key)
		}
	})
}
