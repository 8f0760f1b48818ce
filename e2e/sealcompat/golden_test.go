package sealcompat

import (
	"bytes"
	"crypto/rsa"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	ssv1alpha1 "github.com/bitnami/sealed-secrets/pkg/apis/sealedsecrets/v1alpha1"
	"github.com/bitnami/sealed-secrets/pkg/kubeseal"
	"github.com/fjord-dev/fjord/appliance/sealing"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "reseal the golden files in appliance/sealing/testdata with upstream (the key is kept if present)")

// goldenDir is where appliance/sealing's own tests read the goldens.
const goldenDir = "../../appliance/sealing/testdata"

// goldenKeyFile is the committed test key; its Secret name is fixed so
// that the file does not change between updates.
const goldenKeyFile = "key.yaml"

// goldenSecret is the plaintext of the goldens: nothing here is a secret.
func goldenSecret(annotations map[string]string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop",
			Labels:      map[string]string{"app.kubernetes.io/name": "shop"},
			Annotations: annotations,
		},
		Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{
			"username": []byte("golden-user"),
			"password": []byte("golden-p@ss w0rd"),
			"blob":     {0x00, 0xff, 0xfe, 0x0a},
			"empty":    {},
		},
		StringData: map[string]string{"note": "golden\nnote"},
	}
}

// goldenCases make each golden SealedSecret the way a user of upstream
// would have: with kubeseal's own code, from a Secret.
var goldenCases = []struct {
	name string
	seal func(t *testing.T, pub *rsa.PublicKey) []byte
}{
	{"strict", func(t *testing.T, pub *rsa.PublicKey) []byte {
		return kubesealLib(t, pub, goldenSecret(nil), ssv1alpha1.StrictScope)
	}},
	{"namespace-wide", func(t *testing.T, pub *rsa.PublicKey) []byte {
		return kubesealLib(t, pub, goldenSecret(map[string]string{ssv1alpha1.SealedSecretNamespaceWideAnnotation: "true"}), ssv1alpha1.StrictScope)
	}},
	{"cluster-wide", func(t *testing.T, pub *rsa.PublicKey) []byte {
		return kubesealLib(t, pub, goldenSecret(nil), ssv1alpha1.ClusterWideScope)
	}},
	{"template", func(t *testing.T, pub *rsa.PublicKey) []byte {
		in := goldenSecret(map[string]string{ssv1alpha1.SealedSecretSkipSetOwnerReferencesAnnotation: "true"})
		in.StringData = nil
		ss := decodeUpstream(t, kubesealLib(t, pub, in, ssv1alpha1.StrictScope))
		s := func(v string) *string { return &v }
		ss.Spec.Template.Data = map[string]*string{
			"dsn":      s("postgres://{{ .username }}:{{ .password | urlquery }}@{{ .host }}:5432/shop"),
			"host":     s("db.shop.svc"),
			"auth":     s(`{{ printf "%s:%s" .username .password | b64enc }}`),
			"user-sha": s("{{ .username | sha256sum }}"),
			"blob":     nil,
		}
		return append([]byte("---\n"), encodeUpstream(t, ss, ssv1alpha1.SchemeGroupVersion)...)
	}},
	{"v1", func(t *testing.T, pub *rsa.PublicKey) []byte {
		ss, err := ssv1alpha1.NewSealedSecretV1(scheme.Codecs, pub, goldenSecret(nil))
		if err != nil {
			t.Fatalf("NewSealedSecretV1: %v", err)
		}
		return append([]byte("---\n"), encodeUpstream(t, ss, ssv1alpha1.SchemeGroupVersion)...)
	}},
}

// kubesealLib is `kubeseal --cert … --scope … -o yaml < secret.yaml`.
func kubesealLib(t *testing.T, pub *rsa.PublicKey, secret *corev1.Secret, scope ssv1alpha1.SealingScope) []byte {
	t.Helper()
	var out bytes.Buffer
	err := kubeseal.Seal(localNamespace("default"), "yaml", bytes.NewReader(secretYAML(t, secret)), &out, scheme.Codecs, pub, scope, false, "", "")
	if err != nil {
		t.Fatalf("kubeseal: %v", err)
	}
	return out.Bytes()
}

// TestGoldensUnsealUpstream writes the goldens with -update, and checks
// that kubeseal --recovery-unseal still opens the committed ones with the
// committed key into exactly the committed plaintext.
func TestGoldensUnsealUpstream(t *testing.T) {
	withV1Data(t)
	keyPath := filepath.Join(goldenDir, goldenKeyFile)
	if *update {
		writeGoldens(t, keyPath)
	}
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			sealed, err := os.ReadFile(filepath.Join(goldenDir, "golden-"+gc.name+".yaml"))
			if err != nil {
				t.Fatalf("reading the golden (run with -update to create it): %v", err)
			}
			want, err := os.ReadFile(filepath.Join(goldenDir, "golden-"+gc.name+".expected.yaml"))
			if err != nil {
				t.Fatalf("reading the expected Secret (run with -update to create it): %v", err)
			}
			var got bytes.Buffer
			if err := kubeseal.UnsealSealedSecret(&got, bytes.NewReader(sealed), []string{keyPath}, "yaml", scheme.Codecs); err != nil {
				t.Fatalf("kubeseal --recovery-unseal: %v", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("upstream unseals golden-%s.yaml into\n%s\nwant\n%s", gc.name, got.Bytes(), want)
			}
		})
	}
}

// writeGoldens reseals every golden with the committed key, making the key
// first if there is none, and records what upstream unseals them into.
func writeGoldens(t *testing.T, keyPath string) {
	t.Helper()
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyPath); os.IsNotExist(err) {
		// Upstream's size; the validity only matters to kubeseal --cert.
		k, err := sealing.GenerateKey(4096, 100*365*24*time.Hour, "sealed-secret")
		if err != nil {
			t.Fatal(err)
		}
		ks := sealing.KeySecret(k)
		ks.Name, ks.GenerateName = "sealed-secrets-keygolden", ""
		b, err := yaml.Marshal(ks)
		if err != nil {
			t.Fatal(err)
		}
		b = append([]byte("# The key of the golden SealedSecrets beside it, made by e2e/sealcompat\n"+
			"# (go test -update). It is public test data and protects nothing.\n"), b...)
		if err := os.WriteFile(keyPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var ks corev1.Secret
	if err := yaml.Unmarshal(b, &ks); err != nil {
		t.Fatal(err)
	}
	pub, err := kubeseal.ParseKey(bytes.NewReader(ks.Data[corev1.TLSCertKey]))
	if err != nil {
		t.Fatalf("kubeseal reading the golden certificate: %v", err)
	}
	for _, gc := range goldenCases {
		sealed := gc.seal(t, pub)
		var plain bytes.Buffer
		if err := kubeseal.UnsealSealedSecret(&plain, bytes.NewReader(sealed), []string{keyPath}, "yaml", scheme.Codecs); err != nil {
			t.Fatalf("%s: kubeseal --recovery-unseal: %v", gc.name, err)
		}
		for file, b := range map[string][]byte{
			"golden-" + gc.name + ".yaml":          sealed,
			"golden-" + gc.name + ".expected.yaml": plain.Bytes(),
		} {
			if err := os.WriteFile(filepath.Join(goldenDir, file), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
