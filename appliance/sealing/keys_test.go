package sealing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestGenerateKey(t *testing.T) {
	k := sealingKeys(t)[0]
	if got := k.Private.N.BitLen(); got != 2048 {
		t.Errorf("key of %d bits", got)
	}
	c := k.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage != x509.KeyUsageEncipherOnly || c.Subject.CommonName != "sealed-secret" {
		t.Errorf("certificate fields are not upstream's: CA %v, usage %v, subject %q", c.IsCA, c.KeyUsage, c.Subject)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != time.Hour {
		t.Errorf("valid for %s, want 1h", got)
	}
	if !c.PublicKey.(*rsa.PublicKey).Equal(&k.Private.PublicKey) {
		t.Error("the certificate is for another key")
	}
	// CheckSignatureFrom would refuse: like upstream's, the certificate
	// is a CA whose only key usage is encipher-only.
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	pub, err := ParseCertPEM(k.CertPEM())
	if err != nil || !pub.Equal(&k.Private.PublicKey) {
		t.Errorf("ParseCertPEM(CertPEM()) = %v", err)
	}
}

func TestKeySecretRoundTrip(t *testing.T) {
	k := sealingKeys(t)[0]
	s := KeySecret(k)
	if s.Namespace != KeyNamespace || s.GenerateName != KeyPrefix || s.Type != corev1.SecretTypeTLS || s.Labels[KeyLabel] != "active" {
		t.Errorf("not upstream's layout: %s/%s* type %s labels %v", s.Namespace, s.GenerateName, s.Type, s.Labels)
	}
	s.Name = "sealed-secrets-keyx7k2p"
	got, err := ParseKeySecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Private.Equal(k.Private) || !got.Cert.Equal(k.Cert) || got.Secret != s.Name {
		t.Errorf("ParseKeySecret(KeySecret(k)) read another key, or Secret %q", got.Secret)
	}
}

func TestParseKeySecretRejects(t *testing.T) {
	keys := sealingKeys(t)
	good := KeySecret(keys[0])
	good.Name = "sealed-secrets-keyabcde"
	other := KeySecret(keys[1])
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecTmpl := &x509.Certificate{SerialNumber: keys[0].Cert.SerialNumber, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	ecCert, err := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ec.PublicKey, ec)
	if err != nil {
		t.Fatal(err)
	}
	// A PEM block whose body is not a key: a parser that quotes what it
	// could not read would put this in the error.
	garbagePEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("MIIEpAIBAAKCAQEA-not-really-a-key-but-private")})

	tests := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"garbage in tls.key", map[string][]byte{corev1.TLSPrivateKeyKey: []byte("-----BEGIN RSA PRIVATE KEY-----\nhunter2hunter2\n"), corev1.TLSCertKey: good.Data[corev1.TLSCertKey]}, "tls.key is not a PEM private key"},
		{"a PEM block that is not a key", map[string][]byte{corev1.TLSPrivateKeyKey: garbagePEM, corev1.TLSCertKey: good.Data[corev1.TLSCertKey]}, "tls.key is not a PEM private key"},
		{"no tls.key", map[string][]byte{corev1.TLSCertKey: good.Data[corev1.TLSCertKey]}, "tls.key is not a PEM private key"},
		{"an EC key", map[string][]byte{corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), corev1.TLSCertKey: good.Data[corev1.TLSCertKey]}, "tls.key is not an RSA key"},
		{"garbage in tls.crt", map[string][]byte{corev1.TLSPrivateKeyKey: good.Data[corev1.TLSPrivateKeyKey], corev1.TLSCertKey: []byte("not a certificate")}, "tls.crt is not a PEM certificate"},
		{"no tls.crt", map[string][]byte{corev1.TLSPrivateKeyKey: good.Data[corev1.TLSPrivateKeyKey]}, "tls.crt is not a PEM certificate"},
		{"the certificate of another key", map[string][]byte{corev1.TLSPrivateKeyKey: good.Data[corev1.TLSPrivateKeyKey], corev1.TLSCertKey: other.Data[corev1.TLSCertKey]}, "the certificate does not belong to the private key"},
		{"an EC certificate", map[string][]byte{corev1.TLSPrivateKeyKey: good.Data[corev1.TLSPrivateKeyKey], corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecCert})}, "the certificate does not belong to the private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good.DeepCopy()
			s.Data = tt.data
			_, err := ParseKeySecret(s)
			if err == nil {
				t.Fatal("ParseKeySecret accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "kube-system/sealed-secrets-keyabcde") {
				t.Errorf("error %q should name the Secret and say %q", err, tt.want)
			}
			for _, secret := range []string{"hunter2", "not-really-a-key-but-private", "PRIVATE KEY", "MII"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes key material (%q): %v", secret, err)
				}
			}
		})
	}
}

func TestParseCertPEMRejects(t *testing.T) {
	for _, in := range []string{"", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParseCertPEM([]byte(in)); err == nil {
			t.Errorf("ParseCertPEM(%q) accepted it", in)
		}
	}
}

// withNotBefore is k with a certificate that only differs in NotBefore,
// which is all the ring orders by.
func withNotBefore(k *Key, nb time.Time, secret string) *Key {
	c := *k.Cert
	c.NotBefore = nb
	return &Key{Private: k.Private, Cert: &c, Secret: secret}
}

func TestRing(t *testing.T) {
	keys := sealingKeys(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	oldest := withNotBefore(keys[0], t0, "k-oldest")
	middle := withNotBefore(keys[1], t0.Add(time.Hour), "k-middle")
	newest := withNotBefore(keys[2], t0.Add(2*time.Hour), "k-newest")

	t.Run("an empty ring has no active key", func(t *testing.T) {
		r := NewRing()
		if r.Active() != nil || r.Len() != 0 || len(r.Private()) != 0 {
			t.Errorf("empty ring: active %v, len %d", r.Active(), r.Len())
		}
	})

	for _, order := range [][]*Key{{oldest, middle, newest}, {newest, middle, oldest}, {middle, newest, oldest}} {
		t.Run("the newest NotBefore is active whatever the order of adding", func(t *testing.T) {
			r := NewRing()
			for _, k := range order {
				if !r.Add(k) {
					t.Errorf("Add(%s) reports it known", k.Secret)
				}
			}
			if got := r.Active(); got != newest {
				t.Errorf("Active = %s, want k-newest", got.Secret)
			}
			want := []*rsa.PrivateKey{newest.Private, middle.Private, oldest.Private}
			if got := r.Private(); !slices.EqualFunc(got, want, func(a, b *rsa.PrivateKey) bool { return a.Equal(b) }) {
				t.Error("Private is not newest first")
			}
		})
	}

	t.Run("adding a known key changes nothing but a missing Secret name", func(t *testing.T) {
		r := NewRing()
		r.Add(withNotBefore(keys[0], t0, ""))
		if r.Add(withNotBefore(keys[0], t0.Add(time.Hour), "k-stored")) {
			t.Error("Add of a known key reports it new")
		}
		if r.Len() != 1 || r.Active().Secret != "k-stored" || !r.Active().Cert.NotBefore.Equal(t0) {
			t.Errorf("len %d, active %q from %s", r.Len(), r.Active().Secret, r.Active().Cert.NotBefore)
		}
	})

	t.Run("removing the active key makes the next newest active", func(t *testing.T) {
		r := NewRing()
		for _, k := range []*Key{oldest, middle, newest} {
			r.Add(k)
		}
		r.Remove("k-newest")
		r.Remove("no-such-secret")
		if r.Len() != 2 || r.Active() != middle {
			t.Errorf("len %d, active %s", r.Len(), r.Active().Secret)
		}
	})

	t.Run("a tie in NotBefore is broken the same way every time", func(t *testing.T) {
		a, b := withNotBefore(keys[0], t0, "a"), withNotBefore(keys[1], t0, "b")
		r1, r2 := NewRing(), NewRing()
		r1.Add(a)
		r1.Add(b)
		r2.Add(b)
		r2.Add(a)
		if r1.Active().Fingerprint() != r2.Active().Fingerprint() {
			t.Error("the active key depends on the order of adding")
		}
	})
}
