// Package bootstrap prepares what a Fjord server needs before anything starts:
// the PKI, kubeconfigs and the encryption-at-rest key. Everything is generated
// once into the data dir and reused on restart; private keys are 0600.
package bootstrap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore regenerates a leaf certificate this long before it expires.
	renewBefore = 90 * 24 * time.Hour
)

// KeyPair names a certificate and its private key on disk.
type KeyPair struct {
	Cert string
	Key  string
}

// PKI holds the paths of every certificate and key of one data dir.
type PKI struct {
	Dir string

	CA                KeyPair // signs serving and client certificates of the cluster
	RequestHeaderCA   KeyPair // signs the front-proxy client (aggregation layer)
	EtcdCA            KeyPair // signs the embedded etcd's server and client certificates
	APIServer         KeyPair // kube-apiserver serving certificate
	Admin             KeyPair // cluster-admin client (system:masters)
	ControllerManager KeyPair
	Scheduler         KeyPair
	Kubelet           KeyPair // the node's client certificate, for the node agent
	KubeletServing    KeyPair // the kubelet's serving certificate (logs, exec, port-forward, metrics)
	KubeProxy         KeyPair // kube-proxy's client certificate (system:node-proxier)
	APIServerKubelet  KeyPair // kube-apiserver → kubelet client
	FrontProxyClient  KeyPair
	EtcdServer        KeyPair // also the peer certificate of the single member
	EtcdClient        KeyPair // kube-apiserver → etcd client
	ServiceAccount    KeyPair // Cert holds the public key, Key the signing key
}

// PKIPaths returns where the PKI of dataDir lives, without touching the disk.
func PKIPaths(dataDir string) PKI {
	dir := filepath.Join(dataDir, "tls")
	kp := func(name string) KeyPair {
		return KeyPair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	}
	return PKI{
		Dir:               dir,
		CA:                kp("ca"),
		RequestHeaderCA:   kp("request-header-ca"),
		EtcdCA:            kp("etcd/ca"),
		APIServer:         kp("serving-kube-apiserver"),
		Admin:             kp("client-admin"),
		ControllerManager: kp("client-kube-controller-manager"),
		Scheduler:         kp("client-kube-scheduler"),
		Kubelet:           kp("client-kubelet"),
		KubeletServing:    kp("serving-kubelet"),
		KubeProxy:         kp("client-kube-proxy"),
		APIServerKubelet:  kp("client-kube-apiserver-kubelet"),
		FrontProxyClient:  kp("client-front-proxy"),
		EtcdServer:        kp("etcd/server"),
		EtcdClient:        kp("etcd/client"),
		ServiceAccount:    KeyPair{Cert: filepath.Join(dir, "service-account.pub"), Key: filepath.Join(dir, "service-account.key")},
	}
}

// Hosts are the names and addresses the API server's certificate is valid for.
type Hosts struct {
	IPs      []net.IP
	DNSNames []string
}

// EnsurePKI makes sure every certificate and key of dataDir exists and is
// usable, generating what is missing. Existing files are reused; a file that
// cannot be parsed is an error naming it (nothing is overwritten). The API
// server's serving certificate is re-issued when hosts are not all covered or
// it is close to expiry, so a changed node IP does not break TLS.
func EnsurePKI(dataDir string, apiserver Hosts, nodeName string) (PKI, error) {
	p := PKIPaths(dataDir)
	for _, d := range []string{p.Dir, filepath.Join(p.Dir, "etcd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return p, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	ca, err := ensureCA(p.CA, "fjord-ca")
	if err != nil {
		return p, err
	}
	rhCA, err := ensureCA(p.RequestHeaderCA, "fjord-request-header-ca")
	if err != nil {
		return p, err
	}
	etcdCA, err := ensureCA(p.EtcdCA, "fjord-etcd-ca")
	if err != nil {
		return p, err
	}
	loopback := Hosts{IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"}}
	leaves := []struct {
		kp   KeyPair
		ca   *authority
		spec leafSpec
	}{
		{p.APIServer, ca, leafSpec{cn: "kube-apiserver", server: true, hosts: apiserver}},
		{p.Admin, ca, leafSpec{cn: "fjord-admin", orgs: []string{"system:masters"}}},
		{p.ControllerManager, ca, leafSpec{cn: "system:kube-controller-manager"}},
		{p.Scheduler, ca, leafSpec{cn: "system:kube-scheduler"}},
		{p.Kubelet, ca, leafSpec{cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}}},
		{p.KubeletServing, ca, leafSpec{cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}, server: true, hosts: apiserver}},
		{p.KubeProxy, ca, leafSpec{cn: "system:kube-proxy"}},
		{p.APIServerKubelet, ca, leafSpec{cn: "system:kube-apiserver", orgs: []string{"system:masters"}}},
		{p.FrontProxyClient, rhCA, leafSpec{cn: "system:auth-proxy"}},
		{p.EtcdServer, etcdCA, leafSpec{cn: "etcd-server", server: true, client: true, hosts: loopback}},
		{p.EtcdClient, etcdCA, leafSpec{cn: "etcd-client"}},
	}
	for _, l := range leaves {
		if err := ensureLeaf(l.kp, l.ca, l.spec); err != nil {
			return p, err
		}
	}
	if err := ensureServiceAccountKey(p.ServiceAccount); err != nil {
		return p, err
	}
	return p, nil
}

type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type leafSpec struct {
	cn     string
	orgs   []string
	server bool
	client bool
	hosts  Hosts
}

func ensureCA(kp KeyPair, cn string) (*authority, error) {
	if exists(kp.Cert) || exists(kp.Key) {
		cert, key, err := loadPair(kp)
		if err != nil {
			return nil, err
		}
		return &authority{cert: cert, key: key}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key for %s: %w", cn, err)
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: fmt.Sprintf("%s@%d", cn, time.Now().Unix())}, key)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", cn, err)
	}
	if err := writePair(kp, cert, key); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

func ensureLeaf(kp KeyPair, ca *authority, spec leafSpec) error {
	if exists(kp.Cert) || exists(kp.Key) {
		cert, _, err := loadPair(kp)
		if err != nil {
			return err
		}
		if covers(cert, spec.hosts) && time.Until(cert.NotAfter) > renewBefore && cert.CheckSignatureFrom(ca.cert) == nil {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating key for %s: %w", spec.cn, err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.cn, Organization: spec.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses:  spec.hosts.IPs,
		DNSNames:     spec.hosts.DNSNames,
	}
	if spec.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if spec.client || !spec.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("signing certificate for %s: %w", spec.cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	return writePair(kp, cert, key)
}

// covers reports whether cert is valid for every host in h.
func covers(cert *x509.Certificate, h Hosts) bool {
	for _, ip := range h.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, n := range h.DNSNames {
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

func ensureServiceAccountKey(kp KeyPair) error {
	if exists(kp.Key) {
		key, err := keyutil.PrivateKeyFromFile(kp.Key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", kp.Key, err)
		}
		if _, err := keyutil.PublicKeysFromFile(kp.Cert); err == nil {
			return nil
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return fmt.Errorf("reading %s: not a signing key", kp.Key)
		}
		return writePublicKey(kp.Cert, signer.Public())
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating service-account key: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(kp.Key, keyPEM, 0o600); err != nil {
		return err
	}
	return writePublicKey(kp.Cert, key.Public())
}

func writePublicKey(path string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: keyutil.PublicKeyBlockType, Bytes: der})
	return WriteFileAtomic(path, data, 0o600)
}

func loadPair(kp KeyPair) (*x509.Certificate, crypto.Signer, error) {
	certs, err := certutil.CertsFromFile(kp.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate %s: %w (remove it and its key to regenerate)", kp.Cert, err)
	}
	key, err := keyutil.PrivateKeyFromFile(kp.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("reading key %s: %w (remove it and its certificate to regenerate)", kp.Key, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("reading key %s: not a signing key", kp.Key)
	}
	if !publicKeysEqual(certs[0].PublicKey, signer.Public()) {
		return nil, nil, fmt.Errorf("key %s does not belong to certificate %s", kp.Key, kp.Cert)
	}
	return certs[0], signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func writePair(kp KeyPair, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", kp.Key, err)
	}
	if err := WriteFileAtomic(kp.Key, keyPEM, 0o600); err != nil {
		return err
	}
	certPEM, err := certutil.EncodeCertificates(cert)
	if err != nil {
		return fmt.Errorf("encoding certificate %s: %w", kp.Cert, err)
	}
	return WriteFileAtomic(kp.Cert, certPEM, 0o644)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsynced and renamed, so a crash never leaves half a file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content that is streamed: write fills
// the temporary file; unless it and the fsync succeed, path is untouched
// and the temporary file is removed. The directory is fsynced after the
// rename so the new name survives a crash too.
func WriteAtomic(path string, perm os.FileMode, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
