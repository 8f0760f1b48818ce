package localpath

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Config is the local storage section of the server configuration.
type Config struct {
	// LocalStoragePath is the directory that holds one directory per
	// volume of the local-path StorageClass; <data-dir>/storage when empty.
	LocalStoragePath string `yaml:"local-storage-path"`
	// DisableLocalStorage turns the provisioner off: no local-path
	// StorageClass is installed and no claim of it is provisioned.
	DisableLocalStorage bool `yaml:"disable-local-storage"`
}

// Default returns k3s's behaviour: local storage on, under the data dir.
func Default() Config { return Config{} }

// Validate reports every problem in c at once. It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if p := c.LocalStoragePath; p != "" {
		switch {
		case !filepath.IsAbs(p):
			errs = append(errs, fmt.Errorf("local-storage-path: %q must be an absolute path", p))
		case filepath.Clean(p) == "/":
			// Delete removes directories inside it; never the root's.
			errs = append(errs, errors.New("local-storage-path: must not be the root directory"))
		}
	}
	return errors.Join(errs...)
}

// dir is where the volumes live, given the server's data dir.
func (c Config) dir(dataDir string) string {
	if c.LocalStoragePath != "" {
		return filepath.Clean(c.LocalStoragePath)
	}
	return filepath.Join(dataDir, "storage")
}
