package sealing

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The goldens are SealedSecrets made by upstream's kubeseal code for the
// committed test key, and the Secrets upstream unseals them into; the
// sealcompat module (e2e/sealcompat) writes them with -update and checks
// that upstream still agrees.
var goldens = []string{"strict", "namespace-wide", "cluster-wide", "template", "v1"}

func TestGoldensUnseal(t *testing.T) {
	setAcceptV1Data(t, true)
	var keySecret corev1.Secret
	readYAML(t, filepath.Join("testdata", "key.yaml"), &keySecret)
	key, err := ParseKeySecret(&keySecret)
	if err != nil {
		t.Fatalf("the golden key: %v", err)
	}
	for _, name := range goldens {
		t.Run(name, func(t *testing.T) {
			var ss SealedSecret
			readYAML(t, filepath.Join("testdata", "golden-"+name+".yaml"), &ss)
			var want corev1.Secret
			readYAML(t, filepath.Join("testdata", "golden-"+name+".expected.yaml"), &want)
			// Upstream prints apiVersion and kind; Unseal leaves TypeMeta empty.
			want.TypeMeta = metav1.TypeMeta{}

			got, err := Unseal(&ss, []*rsa.PrivateKey{key.Private})
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Unseal differs from upstream's golden-%s.expected.yaml:\n%s", name, yamlDiff(t, &want, got))
			}
			if err := Verify(&ss, []*rsa.PrivateKey{key.Private}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (cd e2e/sealcompat && go test -run Golden -update writes the goldens)", err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// yamlDiff is a unified diff of want and got as YAML.
func yamlDiff(t *testing.T, want, got any) string {
	t.Helper()
	w, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(w)), B: difflib.SplitLines(string(g)),
		FromFile: "upstream", ToFile: "Unseal", Context: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
