package bootstrap

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"
)

// EncryptionConfigPath is where the API server's EncryptionConfiguration of
// dataDir lives.
func EncryptionConfigPath(dataDir string) string {
	return filepath.Join(dataDir, "encryption", "config.yaml")
}

// EnsureEncryptionConfig makes sure dataDir has an EncryptionConfiguration
// that encrypts Secrets at rest with secretbox (XSalsa20-Poly1305) and a
// generated 32-byte key, reading what is stored in plain text too (identity)
// so a cluster that predates encryption keeps working. An existing file is
// kept as it is: replacing its key would make every stored Secret unreadable.
func EnsureEncryptionConfig(dataDir string) (string, error) {
	path := EncryptionConfigPath(dataDir)
	if data, err := os.ReadFile(path); err == nil {
		var cfg apiserverv1.EncryptionConfiguration
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil || len(cfg.Resources) == 0 {
			return "", fmt.Errorf("reading %s: not a valid EncryptionConfiguration (restore it from a backup: without its key, stored Secrets cannot be read)", path)
		}
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	cfg := apiserverv1.EncryptionConfiguration{
		TypeMeta: metav1.TypeMeta{Kind: "EncryptionConfiguration", APIVersion: apiserverv1.SchemeGroupVersion.String()},
		Resources: []apiserverv1.ResourceConfiguration{{
			Resources: []string{"secrets"},
			Providers: []apiserverv1.ProviderConfiguration{
				{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: []apiserverv1.Key{{Name: "fjord-1", Secret: base64.StdEncoding.EncodeToString(key)}}}},
				{Identity: &apiserverv1.IdentityConfiguration{}},
			},
		}},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	return path, WriteFileAtomic(path, data, 0o600)
}
