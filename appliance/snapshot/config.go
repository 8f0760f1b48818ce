// Package snapshot is Fjord's disaster recovery: a snapshot is one file
// that bundles the datastore (an etcd snapshot or an online SQLite backup)
// with what a restore needs and Git does not hold (the encryption-at-rest
// config, the PKI's CAs, the service-account key) and a manifest of sha256
// hashes. This package holds the file format, its checks, the snapshot
// directory (list, retention) and the schedule; the datastore-specific dump
// and restore live in appliance/datastore.
package snapshot

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/robfig/cron/v3"
)

// Config is the snapshot section of the server configuration.
type Config struct {
	// Schedule is when snapshots are taken, in cron syntax (five fields, or
	// @every 12h, @daily…); empty turns scheduled snapshots off.
	Schedule string `yaml:"snapshot.schedule"`
	// Retention is how many scheduled snapshots are kept; the oldest go first.
	Retention int `yaml:"snapshot.retention"`
	// Dir holds the snapshots; empty means <data-dir>/snapshots.
	Dir string `yaml:"snapshot.dir"`
	// RestoreFrom is a snapshot file restored at the first start, when the
	// data dir holds no datastore yet (a replacement VM); ignored after that.
	RestoreFrom string `yaml:"snapshot.restore-from"`
}

// Default is k3s's: every 12 hours, five kept.
func Default() Config {
	return Config{Schedule: "0 */12 * * *", Retention: 5}
}

// DirFor returns the snapshot directory for a data dir.
func (c Config) DirFor(dataDir string) string {
	if c.Dir != "" {
		return c.Dir
	}
	return filepath.Join(dataDir, "snapshots")
}

// parser reads standard five-field cron lines and the @ descriptors.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a snapshot.schedule value.
func ParseSchedule(s string) (cron.Schedule, error) {
	return parser.Parse(s)
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Schedule != "" {
		if _, err := ParseSchedule(c.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("snapshot.schedule: %q is not a cron schedule (e.g. \"0 */12 * * *\", \"@every 6h\"): %v", c.Schedule, err))
		}
	}
	if c.Retention < 1 {
		errs = append(errs, fmt.Errorf("snapshot.retention: %d; keep at least 1", c.Retention))
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("snapshot.dir: %q must be an absolute path", c.Dir))
	}
	if c.RestoreFrom != "" && !filepath.IsAbs(c.RestoreFrom) {
		errs = append(errs, fmt.Errorf("snapshot.restore-from: %q must be an absolute path", c.RestoreFrom))
	}
	return errors.Join(errs...)
}
