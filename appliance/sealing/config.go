package sealing

import (
	"errors"
	"fmt"
	"time"
)

// Config is the sealed-secrets section of the server configuration.
type Config struct {
	// Disable turns the sealed-secrets controller off.
	Disable bool `yaml:"sealing.disable"`
	// KeyRotationPeriod is how often a new sealing key is made; older keys
	// keep decrypting. 0 turns rotation off.
	KeyRotationPeriod time.Duration `yaml:"sealing.key-rotation-period"`
	// KeyBits is the RSA size of new keys.
	KeyBits int `yaml:"sealing.key-bits"`
	// KeyTTL is how long a new key's certificate is valid.
	KeyTTL time.Duration `yaml:"sealing.key-ttl"`
	// ImportKeys is a key backup (from `fjord sealing-keys export` or
	// upstream's `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`)
	// imported at start, before any key is generated, so a rebuilt VM
	// decrypts the same repository.
	ImportKeys string `yaml:"sealing.import-keys"`
	// Port is where /v1/cert.pem, /v1/verify and /v1/rotate are served, on
	// the node IP, for the API server's service proxy (kubeseal).
	Port int `yaml:"sealing.port"`
	// AcceptV1Data accepts the deprecated spec.data form.
	AcceptV1Data bool `yaml:"sealing.accept-v1-data"`
}

// Default returns upstream's defaults: 4096-bit keys valid ten years, a new
// one every 30 days, port 8080.
func Default() Config {
	return Config{
		KeyRotationPeriod: 720 * time.Hour,
		KeyBits:           4096,
		KeyTTL:            10 * 365 * 24 * time.Hour,
		Port:              8080,
		AcceptV1Data:      true,
	}
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.KeyRotationPeriod < 0 {
		errs = append(errs, fmt.Errorf("sealing.key-rotation-period: %s is negative (0 turns rotation off)", c.KeyRotationPeriod))
	} else if c.KeyRotationPeriod > 0 && c.KeyRotationPeriod < time.Second {
		errs = append(errs, fmt.Errorf("sealing.key-rotation-period: %s is shorter than 1s", c.KeyRotationPeriod))
	}
	if c.KeyBits < 2048 || c.KeyBits > 16384 {
		errs = append(errs, fmt.Errorf("sealing.key-bits: %d is not in 2048-16384", c.KeyBits))
	}
	if c.KeyTTL < time.Hour {
		errs = append(errs, fmt.Errorf("sealing.key-ttl: %s is shorter than 1h", c.KeyTTL))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("sealing.port: %d is not a port (1-65535)", c.Port))
	}
	return errors.Join(errs...)
}
