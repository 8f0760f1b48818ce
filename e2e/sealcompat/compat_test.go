package sealcompat

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ssv1alpha1 "github.com/bitnami/sealed-secrets/pkg/apis/sealedsecrets/v1alpha1"
	"github.com/bitnami/sealed-secrets/pkg/crypto"
	"github.com/bitnami/sealed-secrets/pkg/kubeseal"
	"github.com/fjord-dev/fjord/appliance/sealing"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/yaml"
)

func TestLabelsAreUpstreams(t *testing.T) {
	for _, sc := range scopes {
		for _, nn := range [][2]string{{"shop", "db"}, {"", "db"}, {"shop", ""}, {"", ""}, {"a/b", "c"}} {
			got := sealing.Label(sc.fjord, nn[0], nn[1])
			want := ssv1alpha1.EncryptionLabel(nn[0], nn[1], sc.upstream)
			if !bytes.Equal(got, want) {
				t.Errorf("Label(%s, %q, %q) = %q, upstream %q", sc.fjord, nn[0], nn[1], got, want)
			}
		}
		s := sc.upstream
		if got, want := sc.fjord.String(), s.String(); got != want {
			t.Errorf("scope %d is called %q, upstream %q", sc.fjord, got, want)
		}
		if got := sealing.ScopeOf(sc.annotations); got != sc.fjord {
			t.Errorf("ScopeOf(%v) = %s", sc.annotations, got)
		}
	}
	both := map[string]string{ssv1alpha1.SealedSecretNamespaceWideAnnotation: "true", ssv1alpha1.SealedSecretClusterWideAnnotation: "true"}
	if got, want := sealing.ScopeOf(both), ssv1alpha1.SecretScope(&metav1.ObjectMeta{Annotations: both}); int(got) != int(want) {
		t.Errorf("with both annotations the scope is %s, upstream %d", got, want)
	}
}

// The same randomness gives the same ciphertext: the two formats agree byte
// for byte, not only in what they can open.
func TestEncryptIsHybridEncryptByteForByte(t *testing.T) {
	key, _ := fjordKeys(t)
	for _, plaintext := range [][]byte{nil, []byte("s3cr3t"), bytes.Repeat([]byte{0xa5}, 70000)} {
		for _, label := range [][]byte{nil, []byte("shop"), []byte("shop/db")} {
			seed := [32]byte{byte(len(plaintext)), byte(len(label))}
			got, err := sealing.Encrypt(mathrand.NewChaCha8(seed), &key.Private.PublicKey, plaintext, label)
			if err != nil {
				t.Fatal(err)
			}
			want, err := crypto.HybridEncrypt(mathrand.NewChaCha8(seed), &key.Private.PublicKey, plaintext, label)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%d bytes with label %q: Encrypt and upstream's HybridEncrypt differ", len(plaintext), label)
			}
		}
	}
}

func TestUpstreamSealsFjordUnseals(t *testing.T) {
	key, other := fjordKeys(t)
	// kubeseal reads the certificate Fjord serves at /v1/cert.pem.
	pub, err := kubeseal.ParseKey(bytes.NewReader(key.CertPEM()))
	if err != nil {
		t.Fatalf("kubeseal parsing Fjord's certificate: %v", err)
	}
	for _, sc := range scopes {
		t.Run(sc.fjord.String()+" scope from the Secret's annotations", func(t *testing.T) {
			in := shopSecret(sc.annotations)
			sealed := upstreamSeal(t, pub, in, shopTemplates())
			// A raw value (kubeseal --raw) pasted into the same SealedSecret.
			var raw bytes.Buffer
			if err := kubeseal.EncryptSecretItem(&raw, in.Name, in.Namespace, []byte("tok-123"), sc.upstream, pub); err != nil {
				t.Fatal(err)
			}
			up := decodeUpstream(t, sealed)
			up.Spec.EncryptedData["token"] = raw.String()
			sealed = encodeUpstream(t, up, ssv1alpha1.SchemeGroupVersion)

			got, err := sealing.Unseal(decodeFjord(t, sealed), privateKeys(other, key))
			if err != nil {
				t.Fatalf("Unseal: %v\n%s", err, sealed)
			}
			want, err := decodeUpstream(t, sealed).Unseal(scheme.Codecs, upstreamKeys(t, key))
			if err != nil {
				t.Fatalf("upstream Unseal: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Fjord and upstream unseal differently\nFjord:\n%s\nupstream:\n%s", asYAML(t, got), asYAML(t, want))
			}
			if err := dataDiff(got.Data, map[string][]byte{
				"username": []byte("admin"),
				"password": []byte("s3cr3t-p@ss"),
				"blob":     {0x00, 0xff, 0x10, 0x80},
				"empty":    nil,
				"token":    []byte("tok-123"),
				"dsn":      []byte("postgres://admin:s3cr3t-p%40ss@db:5432/orders"),
				"dbname":   []byte("orders"),
				"shout":    []byte("ADMIN"),
			}); err != nil {
				t.Error(err)
			}
			if got.Type != corev1.SecretTypeBasicAuth || got.Labels["app"] != "shop" || got.Annotations["team"] != "payments" {
				t.Errorf("the template's type and metadata are lost: type %q, labels %v, annotations %v", got.Type, got.Labels, got.Annotations)
			}
			if got.Namespace != "shop" || got.Name != "db" {
				t.Errorf("unsealed into %s/%s", got.Namespace, got.Name)
			}
			if err := sealing.Verify(decodeFjord(t, sealed), privateKeys(key)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestFjordSealsUpstreamUnseals(t *testing.T) {
	key, other := fjordKeys(t)
	for _, sc := range scopes {
		for _, how := range []string{"annotations", "argument"} {
			t.Run(sc.fjord.String()+" scope from the "+how, func(t *testing.T) {
				in, scope := shopSecret(sc.annotations), sealing.Strict
				if how == "argument" {
					in, scope = shopSecret(nil), sc.fjord
				}
				ss, err := sealing.Seal(rand.Reader, &key.Private.PublicKey, in, scope)
				if err != nil {
					t.Fatalf("Seal: %v", err)
				}
				token, err := sealing.SealValue(rand.Reader, &key.Private.PublicKey, []byte("tok-123"), sc.fjord, in.Namespace, in.Name)
				if err != nil {
					t.Fatalf("SealValue: %v", err)
				}
				ss.Spec.EncryptedData["token"] = token
				ss.Spec.Template.Data = shopTemplates()
				sealed, err := yaml.Marshal(ss)
				if err != nil {
					t.Fatal(err)
				}

				up := decodeUpstream(t, sealed)
				if err := up.ValidateEncryptedData(upstreamKeys(t, key)); err != nil {
					t.Errorf("upstream ValidateEncryptedData: %v", err)
				}
				if err := up.ValidateEncryptedData(upstreamKeys(t, other)); err == nil {
					t.Error("upstream ValidateEncryptedData accepts another key")
				}
				got, err := up.Unseal(scheme.Codecs, upstreamKeys(t, other, key))
				if err != nil {
					t.Fatalf("upstream Unseal: %v\n%s", err, sealed)
				}
				want, err := sealing.Unseal(decodeFjord(t, sealed), privateKeys(key))
				if err != nil {
					t.Fatalf("Unseal: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("upstream and Fjord unseal differently\nupstream:\n%s\nFjord:\n%s", asYAML(t, got), asYAML(t, want))
				}
				if got.Data["token"] == nil || string(got.Data["dsn"]) != "postgres://admin:s3cr3t-p%40ss@db:5432/orders" {
					t.Errorf("upstream unsealed token %q, dsn %q", got.Data["token"], got.Data["dsn"])
				}
				if up.Scope() != sc.upstream {
					s := up.Scope()
					t.Errorf("upstream reads the scope as %s", s.String())
				}
			})
		}
	}
}

func TestSealValueIsKubesealRaw(t *testing.T) {
	key, _ := fjordKeys(t)
	for _, sc := range scopes {
		t.Run(sc.fjord.String(), func(t *testing.T) {
			v, err := sealing.SealValue(rand.Reader, &key.Private.PublicKey, []byte("raw value"), sc.fjord, "shop", "db")
			if err != nil {
				t.Fatal(err)
			}
			c, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := crypto.HybridDecrypt(rand.Reader, upstreamKeys(t, key), c, ssv1alpha1.EncryptionLabel("shop", "db", sc.upstream))
			if err != nil || string(plain) != "raw value" {
				t.Errorf("upstream HybridDecrypt = %q, %v", plain, err)
			}

			var raw bytes.Buffer
			if err := kubeseal.EncryptSecretItem(&raw, "db", "shop", []byte("raw value"), sc.upstream, &key.Private.PublicKey); err != nil {
				t.Fatal(err)
			}
			c, err = base64.StdEncoding.DecodeString(raw.String())
			if err != nil {
				t.Fatal(err)
			}
			plain, err = sealing.Decrypt(privateKeys(key), c, sealing.Label(sc.fjord, "shop", "db"))
			if err != nil || string(plain) != "raw value" {
				t.Errorf("Decrypt of kubeseal --raw = %q, %v", plain, err)
			}
		})
	}
}

// Seal writes what kubeseal writes, ciphertexts apart.
func TestSealIsKubesealsShape(t *testing.T) {
	key, _ := fjordKeys(t)
	for _, sc := range scopes {
		t.Run(sc.fjord.String(), func(t *testing.T) {
			in := shopSecret(nil)
			var out bytes.Buffer
			err := kubeseal.Seal(localNamespace("default"), "yaml", bytes.NewReader(secretYAML(t, in)), &out,
				scheme.Codecs, &key.Private.PublicKey, sc.upstream, false, "", "")
			if err != nil {
				t.Fatalf("kubeseal: %v", err)
			}
			ss, err := sealing.Seal(rand.Reader, &key.Private.PublicKey, in, sc.fjord)
			if err != nil {
				t.Fatal(err)
			}
			fjord, err := yaml.Marshal(ss)
			if err != nil {
				t.Fatal(err)
			}
			got, want := maskCiphertexts(t, fjord), maskCiphertexts(t, out.Bytes())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Seal and kubeseal differ\nSeal:\n%s\nkubeseal:\n%s", asYAML(t, got), asYAML(t, want))
			}
		})
	}
}

// maskCiphertexts reads a SealedSecret generically and replaces each
// ciphertext with a mark, so that two sealings of one Secret compare.
func maskCiphertexts(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	spec, _ := m["spec"].(map[string]any)
	enc, _ := spec["encryptedData"].(map[string]any)
	for k := range enc {
		enc[k] = "<sealed>"
	}
	return m
}

func TestLegacyV1DataUnseals(t *testing.T) {
	withV1Data(t)
	key, other := fjordKeys(t)
	for _, sc := range scopes {
		t.Run(sc.fjord.String(), func(t *testing.T) {
			in := shopSecret(sc.annotations)
			ss, err := ssv1alpha1.NewSealedSecretV1(scheme.Codecs, &key.Private.PublicKey, in)
			if err != nil {
				t.Fatalf("upstream NewSealedSecretV1: %v", err)
			}
			sealed := encodeUpstream(t, ss, ssv1alpha1.SchemeGroupVersion)
			got, err := sealing.Unseal(decodeFjord(t, sealed), privateKeys(other, key))
			if err != nil {
				t.Fatalf("Unseal: %v\n%s", err, sealed)
			}
			want, err := decodeUpstream(t, sealed).Unseal(scheme.Codecs, upstreamKeys(t, key))
			if err != nil {
				t.Fatalf("upstream Unseal: %v", err)
			}
			// Upstream keeps the blob's apiVersion and kind; Fjord returns
			// every Secret without TypeMeta, as the encryptedData form does.
			want.TypeMeta = metav1.TypeMeta{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Fjord and upstream unseal differently\nFjord:\n%s\nupstream:\n%s", asYAML(t, got), asYAML(t, want))
			}
			// A v1 blob is the whole Secret as JSON: stringData stays as it was.
			if err := dataDiff(got.Data, in.Data); err != nil {
				t.Error(err)
			}
			if got.StringData["note"] != "two\nlines" || got.Type != corev1.SecretTypeBasicAuth || got.Labels["app"] != "shop" {
				t.Errorf("the sealed Secret's fields are lost: %s", asYAML(t, got))
			}
		})
	}
}

// A value sealed for one place does not open in another, in Fjord as in
// upstream.
func TestScopeBindsTheValue(t *testing.T) {
	key, _ := fjordKeys(t)
	wide := map[sealing.Scope]map[string]string{}
	for _, sc := range scopes {
		wide[sc.fjord] = sc.annotations
	}
	tests := []struct {
		name           string
		sealed, opened sealing.Scope
		namespace      string
		secret         string
		opens          bool
	}{
		{"strict opens where it was sealed", sealing.Strict, sealing.Strict, "a", "x", true},
		{"strict does not open under another name", sealing.Strict, sealing.Strict, "a", "y", false},
		{"strict does not open in another namespace", sealing.Strict, sealing.Strict, "b", "x", false},
		{"namespace-wide opens under another name", sealing.NamespaceWide, sealing.NamespaceWide, "a", "y", true},
		{"namespace-wide does not open in another namespace", sealing.NamespaceWide, sealing.NamespaceWide, "b", "x", false},
		{"cluster-wide opens anywhere", sealing.ClusterWide, sealing.ClusterWide, "b", "y", true},
		{"namespace-wide annotated cluster-wide does not open", sealing.NamespaceWide, sealing.ClusterWide, "a", "x", false},
		{"cluster-wide annotated strict does not open", sealing.ClusterWide, sealing.Strict, "a", "x", false},
		{"strict annotated namespace-wide does not open", sealing.Strict, sealing.NamespaceWide, "a", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var up ssv1alpha1.SealingScope
			for _, sc := range scopes {
				if sc.fjord == tt.sealed {
					up = sc.upstream
				}
			}
			var raw bytes.Buffer
			if err := kubeseal.EncryptSecretItem(&raw, "x", "a", []byte("s3cr3t"), up, &key.Private.PublicKey); err != nil {
				t.Fatal(err)
			}
			sealed, err := yaml.Marshal(map[string]any{
				"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
				"metadata": map[string]any{"name": tt.secret, "namespace": tt.namespace, "annotations": wide[tt.opened]},
				"spec":     map[string]any{"encryptedData": map[string]string{"password": raw.String()}},
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := sealing.Unseal(decodeFjord(t, sealed), privateKeys(key))
			_, upErr := decodeUpstream(t, sealed).Unseal(scheme.Codecs, upstreamKeys(t, key))
			if (err == nil) != (upErr == nil) {
				t.Errorf("Fjord and upstream disagree: Fjord %v, upstream %v", err, upErr)
			}
			switch {
			case tt.opens && err != nil:
				t.Errorf("Unseal: %v", err)
			case tt.opens && string(got.Data["password"]) != "s3cr3t":
				t.Errorf("password = %q", got.Data["password"])
			case !tt.opens && err == nil:
				t.Errorf("Unseal opened it: %q", got.Data["password"])
			case !tt.opens && (!strings.Contains(err.Error(), `"password"`) || strings.Contains(err.Error(), "s3cr3t")):
				t.Errorf("the error should name the key and nothing secret: %v", err)
			}
		})
	}
}

// What Fjord stores a key in, upstream reads: both the controller's
// readKey (keyutil and cert) and kubeseal --recovery-unseal.
func TestKeySecretReadsUpstream(t *testing.T) {
	key, other := fjordKeys(t)
	ks := sealing.KeySecret(key)
	if got, want := sealing.Fingerprint(&key.Private.PublicKey), mustFingerprint(t, &key.Private.PublicKey); got != want || key.Fingerprint() != want {
		t.Errorf("fingerprint %q, upstream %q", got, want)
	}

	t.Run("as the controller reads it", func(t *testing.T) {
		if ks.Type != corev1.SecretTypeTLS || ks.Namespace != "kube-system" || ks.Labels["sealedsecrets.bitnami.com/sealed-secrets-key"] != "active" {
			t.Errorf("not where upstream's controller looks: %s/%s type %s labels %v", ks.Namespace, ks.GenerateName, ks.Type, ks.Labels)
		}
		priv, err := keyutil.ParsePrivateKeyPEM(ks.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			t.Fatalf("keyutil: %v", err)
		}
		if rsaKey, ok := priv.(*rsa.PrivateKey); !ok || !rsaKey.Equal(key.Private) {
			t.Errorf("tls.key reads as a different %T", priv)
		}
		certs, err := certutil.ParseCertsPEM(ks.Data[corev1.TLSCertKey])
		if err != nil || len(certs) != 1 || !certs[0].Equal(key.Cert) {
			t.Errorf("tls.crt reads as %d certificates, %v", len(certs), err)
		}
	})

	t.Run("as kubeseal --recovery-unseal reads it, alone or in a List", func(t *testing.T) {
		dir := t.TempDir()
		ks.Name = "sealed-secrets-key1"
		single := filepath.Join(dir, "key.yaml")
		writeYAML(t, single, ks)
		ks2 := sealing.KeySecret(other)
		ks2.Name = "sealed-secrets-key2"
		list := filepath.Join(dir, "keys.yaml")
		writeYAML(t, list, map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{ks2, ks}})

		sealed := upstreamSeal(t, &key.Private.PublicKey, shopSecret(nil), nil)
		for _, file := range []string{single, list} {
			var out bytes.Buffer
			if err := kubeseal.UnsealSealedSecret(&out, bytes.NewReader(sealed), []string{file}, "yaml", scheme.Codecs); err != nil {
				t.Fatalf("kubeseal with %s: %v", filepath.Base(file), err)
			}
			var got corev1.Secret
			if err := yaml.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Data["password"]) != "s3cr3t-p@ss" {
				t.Errorf("kubeseal with %s unsealed %s", filepath.Base(file), out.Bytes())
			}
		}
	})
}

// What upstream's controller stores, Fjord reads and seals for.
func TestUpstreamKeyReadsInFjord(t *testing.T) {
	priv, cert, err := crypto.GeneratePrivateKeyAndCert(2048, 24*time.Hour, "sealed-secret")
	if err != nil {
		t.Fatal(err)
	}
	// The layout of upstream's writeKey (pkg/controller/keys.go).
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-system", Name: "sealed-secrets-keyabcde",
			Labels: map[string]string{sealing.KeyLabel: "active"},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: keyutil.RSAPrivateKeyBlockType, Bytes: x509.MarshalPKCS1PrivateKey(priv)}),
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: cert.Raw}),
		},
	}
	k, err := sealing.ParseKeySecret(s)
	if err != nil {
		t.Fatalf("ParseKeySecret: %v", err)
	}
	if !k.Private.Equal(priv) || !k.Cert.Equal(cert) || k.Secret != s.Name {
		t.Errorf("ParseKeySecret read another key, or lost the Secret name %q", k.Secret)
	}
	pub, err := sealing.ParseCertPEM(s.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatalf("ParseCertPEM: %v", err)
	}
	ss, err := sealing.Seal(rand.Reader, pub, shopSecret(nil), sealing.Strict)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := yaml.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeUpstream(t, sealed).Unseal(scheme.Codecs, map[string]*rsa.PrivateKey{"k": priv})
	if err != nil || string(got.Data["password"]) != "s3cr3t-p@ss" {
		t.Errorf("upstream Unseal with its own key: %v", err)
	}
}

// Fjord's certificates carry what upstream's do.
func TestGenerateKeyIsUpstreams(t *testing.T) {
	key, _ := fjordKeys(t)
	_, want, err := crypto.GeneratePrivateKeyAndCert(2048, 24*time.Hour, "sealed-secret")
	if err != nil {
		t.Fatal(err)
	}
	got := key.Cert
	if got.KeyUsage != want.KeyUsage || got.IsCA != want.IsCA || got.BasicConstraintsValid != want.BasicConstraintsValid ||
		got.Subject.String() != want.Subject.String() || got.Issuer.String() != want.Issuer.String() ||
		got.SignatureAlgorithm != want.SignatureAlgorithm || got.SerialNumber.BitLen() > 128 ||
		got.NotAfter.Sub(got.NotBefore) != want.NotAfter.Sub(want.NotBefore) {
		t.Errorf("certificates differ\nFjord:    %+v\nupstream: %+v", summary(got), summary(want))
	}
}

func summary(c *x509.Certificate) map[string]any {
	return map[string]any{
		"keyUsage": c.KeyUsage, "isCA": c.IsCA, "basicConstraints": c.BasicConstraintsValid,
		"subject": c.Subject.String(), "issuer": c.Issuer.String(), "sigAlg": c.SignatureAlgorithm.String(),
		"serialBits": c.SerialNumber.BitLen(), "validFor": c.NotAfter.Sub(c.NotBefore).String(),
	}
}

func mustFingerprint(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	fp, err := crypto.PublicKeyFingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func asYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprintf("(unprintable: %v) %+v", err, v))
	}
	return b
}

// kubeseal --allow-empty-data makes a SealedSecret without encryptedData.
// Upstream's controller unseals it into a Secret without data; Fjord
// refuses it on purpose (e2e/sealing_test.go expects the refusal). This
// test records the difference so that a change on either side shows.
func TestEmptySealedSecretIsAKnownDifference(t *testing.T) {
	key, _ := fjordKeys(t)
	in := shopSecret(nil)
	in.Data, in.StringData = nil, nil
	var out bytes.Buffer
	err := kubeseal.Seal(localNamespace("default"), "yaml", bytes.NewReader(secretYAML(t, in)), &out,
		scheme.Codecs, &key.Private.PublicKey, ssv1alpha1.StrictScope, true, "", "")
	if err != nil {
		t.Fatalf("kubeseal --allow-empty-data: %v", err)
	}
	up, err := decodeUpstream(t, out.Bytes()).Unseal(scheme.Codecs, upstreamKeys(t, key))
	if err != nil || len(up.Data) != 0 || up.Name != "db" {
		t.Errorf("upstream Unseal = %v, %v; want a Secret without data", up, err)
	}
	if _, err := sealing.Unseal(decodeFjord(t, out.Bytes()), privateKeys(key)); err == nil || !strings.Contains(err.Error(), "spec.encryptedData is empty") {
		t.Errorf("Unseal = %v, want Fjord's refusal", err)
	}
}
