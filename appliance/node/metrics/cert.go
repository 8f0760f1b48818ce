package metrics

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/fjord-dev/fjord/bootstrap"
)

const (
	certValidity = 365 * 24 * time.Hour
	// certRenewBefore re-issues the serving certificate this long before it
	// expires; the server reloads the files when they change.
	certRenewBefore = 90 * 24 * time.Hour
)

// servingPair is the metrics server's certificate and key in dataDir.
func servingPair(dataDir string) bootstrap.KeyPair {
	dir := CertDir(dataDir)
	return bootstrap.KeyPair{Cert: filepath.Join(dir, "serving.crt"), Key: filepath.Join(dir, "serving.key")}
}

// servingHosts are the names the aggregation layer checks (it dials the
// endpoint but verifies <service>.<namespace>.svc) and the node IP, for a
// direct look with curl.
func servingHosts(nodeIP net.IP) ([]string, []net.IP) {
	return []string{ServiceName, ServiceName + "." + Namespace, ServiceName + "." + Namespace + ".svc"}, []net.IP{nodeIP}
}

// ensureServingCert makes sure pair holds a serving certificate from ca that
// covers nodeIP and the Service's names and is not close to expiry, issuing
// a new one otherwise. It reports whether it issued one. A certificate that
// cannot be read is replaced: it is derived state, nothing else refers to it.
func ensureServingCert(pair bootstrap.KeyPair, ca bootstrap.KeyPair, nodeIP net.IP, now time.Time) (bool, error) {
	caCerts, err := certutil.CertsFromFile(ca.Cert)
	if err != nil {
		return false, fmt.Errorf("reading CA certificate %s: %w", ca.Cert, err)
	}
	dns, ips := servingHosts(nodeIP)
	if current, err := readCert(pair); err == nil && usable(current, caCerts[0], dns, ips, now) {
		return false, nil
	}
	caKey, err := keyutil.PrivateKeyFromFile(ca.Key)
	if err != nil {
		return false, fmt.Errorf("reading CA key %s: %w", ca.Key, err)
	}
	signer, ok := caKey.(crypto.Signer)
	if !ok {
		return false, fmt.Errorf("reading CA key %s: not a signing key", ca.Key)
	}
	certPEM, keyPEM, err := issueServingCert(caCerts[0], signer, dns, ips, now)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(pair.Cert), 0o700); err != nil {
		return false, fmt.Errorf("creating %s: %w", filepath.Dir(pair.Cert), err)
	}
	// The key first: a crash in between leaves a certificate that does not
	// match its key, which readCert rejects and the next start re-issues.
	if err := bootstrap.WriteFileAtomic(pair.Key, keyPEM, 0o600); err != nil {
		return false, err
	}
	if err := bootstrap.WriteFileAtomic(pair.Cert, certPEM, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// readCert returns the certificate of pair if its key belongs to it.
func readCert(pair bootstrap.KeyPair) (*x509.Certificate, error) {
	certs, err := certutil.CertsFromFile(pair.Cert)
	if err != nil {
		return nil, err
	}
	key, err := keyutil.PrivateKeyFromFile(pair.Key)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := certs[0].PublicKey.(equaler); !ok || !pub.Equal(signer.Public()) {
		return nil, errors.New("key does not belong to certificate")
	}
	return certs[0], nil
}

// usable reports whether cert was signed by ca, covers every name and
// address, and stays valid for longer than certRenewBefore after now.
func usable(cert, ca *x509.Certificate, dns []string, ips []net.IP, now time.Time) bool {
	if cert.CheckSignatureFrom(ca) != nil || cert.NotAfter.Sub(now) <= certRenewBefore || now.Before(cert.NotBefore) {
		return false
	}
	for _, n := range dns {
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// issueServingCert signs a server-only certificate (no client auth: the CA
// also vouches for the API server's clients) and returns it and a new key,
// PEM-encoded.
func issueServingCert(ca *x509.Certificate, caKey crypto.Signer, dns []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating metrics-server key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: ServiceName + "." + Namespace + ".svc"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing metrics-server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = certutil.EncodeCertificates(cert); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}
