package sealcompat

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fjord-dev/fjord/appliance/sealing"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kubesealCLI is the kubeseal CLI, built at most once per test binary from
// the version go.mod pins (the build cache makes it cheap after the first
// run), in dir.
var kubesealCLI struct {
	once sync.Once
	dir  string
	err  error
}

func buildKubeseal() (string, error) {
	kubesealCLI.once.Do(func() {
		dir, err := os.MkdirTemp("", "sealcompat-kubeseal-")
		if err != nil {
			kubesealCLI.err = err
			return
		}
		kubesealCLI.dir = dir
		out, err := exec.Command("go", "build", "-o", dir, "github.com/bitnami/sealed-secrets/cmd/kubeseal").CombinedOutput()
		if err != nil {
			kubesealCLI.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	return filepath.Join(kubesealCLI.dir, "kubeseal"), kubesealCLI.err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kubesealCLI.dir != "" {
		os.RemoveAll(kubesealCLI.dir)
	}
	os.Exit(code)
}

// runKubeseal runs the real CLI, away from any kubeconfig.
func runKubeseal(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	bin, err := buildKubeseal()
	if err != nil {
		t.Fatalf("building kubeseal: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubeseal %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func TestKubesealCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kubeseal CLI")
	}
	key, _ := fjordKeys(t)
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, key.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ks := sealing.KeySecret(key)
	ks.Name = "sealed-secrets-key1"
	keyFile := filepath.Join(dir, "key.yaml")
	writeYAML(t, keyFile, ks)

	for _, sc := range scopes {
		t.Run("kubeseal --scope "+sc.fjord.String()+" unseals in Fjord", func(t *testing.T) {
			sealed := runKubeseal(t, secretYAML(t, shopSecret(nil)), "--cert", cert, "--scope", sc.fjord.String(), "-o", "yaml")
			got, err := sealing.Unseal(decodeFjord(t, sealed), privateKeys(key))
			if err != nil {
				t.Fatalf("Unseal: %v\n%s", err, sealed)
			}
			if string(got.Data["password"]) != "s3cr3t-p@ss" || got.Type != corev1.SecretTypeBasicAuth {
				t.Errorf("unsealed %s", asYAML(t, got))
			}
		})
		t.Run("kubeseal --raw --scope "+sc.fjord.String()+" decrypts in Fjord", func(t *testing.T) {
			raw := runKubeseal(t, []byte("raw value"), "--raw", "--cert", cert, "--scope", sc.fjord.String(),
				"--namespace", "shop", "--name", "db", "--from-file=/dev/stdin")
			got, err := sealing.Unseal(&sealing.SealedSecret{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", Annotations: sc.annotations},
				Spec:       sealing.Spec{EncryptedData: map[string]string{"v": string(raw)}},
			}, privateKeys(key))
			if err != nil || string(got.Data["v"]) != "raw value" {
				t.Errorf("Unseal of kubeseal --raw output %q: %v", raw, err)
			}
		})
		t.Run("Fjord's "+sc.fjord.String()+" Seal opens with kubeseal --recovery-unseal", func(t *testing.T) {
			ss, err := sealing.Seal(rand.Reader, &key.Private.PublicKey, shopSecret(nil), sc.fjord)
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := yaml.Marshal(ss)
			if err != nil {
				t.Fatal(err)
			}
			out := runKubeseal(t, sealed, "--recovery-unseal", "--recovery-private-key", keyFile, "-o", "yaml")
			var got corev1.Secret
			if err := yaml.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if err := dataDiff(got.Data, map[string][]byte{
				"username": []byte("admin"), "password": []byte("s3cr3t-p@ss"), "blob": {0x00, 0xff, 0x10, 0x80},
				"empty": nil, "note": []byte("two\nlines"),
			}); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}
}
