package sealing

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Where and how keys are kept: upstream's layout, so its backups restore
// here and Fjord's restore there.
const (
	KeyNamespace = "kube-system"
	KeyPrefix    = "sealed-secrets-key"
	keyActive    = "active"
)

// Key is one sealing key pair with its self-signed certificate.
type Key struct {
	Private *rsa.PrivateKey
	Cert    *x509.Certificate
	// Secret is the name of the Secret the key lives in ("" until stored).
	Secret string
}

// Fingerprint names the key.
func (k *Key) Fingerprint() string { return Fingerprint(&k.Private.PublicKey) }

// CertPEM is the certificate, PEM-encoded, as /v1/cert.pem serves it.
func (k *Key) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: k.Cert.Raw})
}

// GenerateKey makes an RSA key of bits and a self-signed certificate valid
// for validFor from now, as the upstream controller does.
func GenerateKey(bits int, validFor time.Duration, cn string) (*Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		Issuer:                pkix.Name{CommonName: cn},
		NotBefore:             now,
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageEncipherOnly,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Key{Private: priv, Cert: cert}, nil
}

// KeySecret is the kubernetes.io/tls Secret a key is stored in.
func KeySecret(k *Key) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    KeyNamespace,
			GenerateName: KeyPrefix,
			Labels:       map[string]string{KeyLabel: keyActive},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: keyutil.RSAPrivateKeyBlockType, Bytes: x509.MarshalPKCS1PrivateKey(k.Private)}),
			corev1.TLSCertKey:       k.CertPEM(),
		},
	}
}

// ParseKeySecret reads a key Secret. The error names the Secret and the
// field, never the key material.
func ParseKeySecret(s *corev1.Secret) (*Key, error) {
	where := s.Namespace + "/" + s.Name
	raw, err := keyutil.ParsePrivateKeyPEM(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("key Secret %s: %s is not a PEM private key", where, corev1.TLSPrivateKeyKey)
	}
	priv, ok := raw.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key Secret %s: %s is not an RSA key", where, corev1.TLSPrivateKeyKey)
	}
	certs, err := certutil.ParseCertsPEM(s.Data[corev1.TLSCertKey])
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("key Secret %s: %s is not a PEM certificate", where, corev1.TLSCertKey)
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&priv.PublicKey) {
		return nil, fmt.Errorf("key Secret %s: the certificate does not belong to the private key", where)
	}
	return &Key{Private: priv, Cert: certs[0], Secret: s.Name}, nil
}

// ParseCertPEM reads a sealing certificate (kubeseal --cert, /v1/cert.pem).
func ParseCertPEM(b []byte) (*rsa.PublicKey, error) {
	certs, err := certutil.ParseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("not a PEM certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate found")
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the certificate's key is not RSA")
	}
	return pub, nil
}

// Ring is the set of keys the controller knows: all of them decrypt, the
// newest (by certificate NotBefore, as upstream orders them) seals.
type Ring struct {
	mu   sync.RWMutex
	keys map[string]*Key // by fingerprint
}

// NewRing returns an empty ring.
func NewRing() *Ring { return &Ring{keys: map[string]*Key{}} }

// Add puts k in the ring and reports whether it was new.
func (r *Ring) Add(k *Key) bool {
	fp := k.Fingerprint()
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.keys[fp]; ok {
		if old.Secret == "" {
			old.Secret = k.Secret
		}
		return false
	}
	r.keys[fp] = k
	return true
}

// Remove drops the key stored in the named Secret.
func (r *Ring) Remove(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for fp, k := range r.keys {
		if k.Secret == secret {
			delete(r.keys, fp)
		}
	}
}

// Active is the key new secrets are sealed with; nil when the ring is empty.
func (r *Ring) Active() *Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var newest *Key
	for _, k := range r.keys {
		if newest == nil || k.Cert.NotBefore.After(newest.Cert.NotBefore) ||
			(k.Cert.NotBefore.Equal(newest.Cert.NotBefore) && k.Fingerprint() > newest.Fingerprint()) {
			newest = k
		}
	}
	return newest
}

// Private returns every private key, newest first (the likeliest to open a
// fresh ciphertext).
func (r *Ring) Private() []*rsa.PrivateKey {
	r.mu.RLock()
	keys := make([]*Key, 0, len(r.keys))
	for _, k := range r.keys {
		keys = append(keys, k)
	}
	r.mu.RUnlock()
	slices.SortFunc(keys, func(a, b *Key) int { return b.Cert.NotBefore.Compare(a.Cert.NotBefore) })
	out := make([]*rsa.PrivateKey, len(keys))
	for i, k := range keys {
		out[i] = k.Private
	}
	return out
}

// Len is the number of keys.
func (r *Ring) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.keys)
}
