package fsyncgate

import (
	"errors"
	"fmt"
	"time"
)

// Mode says what the gate does with a slow disk.
type Mode string

const (
	// ModeEnforce refuses to start on a disk whose p99 fdatasync latency
	// exceeds the limit.
	ModeEnforce Mode = "enforce"
	// ModeWarn measures and logs a warning on a slow disk, then starts anyway.
	// It is unsafe: etcd on a slow disk loses leader elections and times out.
	ModeWarn Mode = "warn"
	// ModeOff does not measure at all.
	ModeOff Mode = "off"
)

// ParseMode returns the Mode named s, or an error naming the valid modes.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeEnforce, ModeWarn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("%q is not one of enforce, warn, off", s)
}

// Workload defaults: the fio command of etcd's hardware guidance.
const (
	// DefaultSize is the size of a full run, fio's --size=22m.
	DefaultSize int64 = 22 << 20
	// DefaultBlockSize is the size of one write, fio's --bs=2300, about the
	// size of an etcd WAL entry.
	DefaultBlockSize = 2300
	// DefaultP99Max is the limit etcd's guidance gives for the p99 of
	// fdatasync latency.
	DefaultP99Max = 10 * time.Millisecond
	// DefaultMaxDuration caps one measurement at the gate.
	DefaultMaxDuration = 30 * time.Second
	// DefaultCacheTTL is how long a pass is reused within one boot.
	DefaultCacheTTL = 24 * time.Hour
)

// Config is the gate's section of the server configuration. It is inlined into
// the appliance configuration, so its keys are flat (`fsync-gate`,
// `fsync-p99-max`, …) and are also the flag names.
type Config struct {
	// Mode is enforce (refuse to start on a slow disk), warn (log and start)
	// or off (do not measure).
	Mode Mode `yaml:"fsync-gate" json:"fsync-gate"`
	// P99Max is the largest acceptable p99 fdatasync latency.
	P99Max time.Duration `yaml:"fsync-p99-max" json:"fsync-p99-max"`
	// CacheTTL is how long a pass is reused instead of measuring again, for
	// the same device, filesystem and boot. Zero never caches.
	CacheTTL time.Duration `yaml:"fsync-gate-cache-ttl" json:"fsync-gate-cache-ttl"`
	// Rerun measures even when a cached pass is valid.
	Rerun bool `yaml:"fsync-gate-rerun" json:"fsync-gate-rerun"`
	// Size is the number of bytes a full run writes (fio's --size).
	Size int64 `yaml:"fsync-gate-size" json:"fsync-gate-size"`
	// BlockSize is the size of each write (fio's --bs).
	BlockSize int `yaml:"fsync-gate-block-size" json:"fsync-gate-block-size"`
	// MaxDuration caps the measurement; when it passes before the verdict is
	// clear, the disk fails (it was not shown within the limit).
	MaxDuration time.Duration `yaml:"fsync-gate-max-duration" json:"fsync-gate-max-duration"`
	// FullRun writes all of Size even when the verdict is clear earlier (the
	// time cap still applies).
	FullRun bool `yaml:"fsync-gate-full-run" json:"fsync-gate-full-run"`
}

// Default returns the gate's defaults: enforce a 10ms p99 with the fio
// workload (22 MiB in 2300-byte writes), stop early when the verdict is
// clear, cap a measurement at 30s, and reuse a pass for 24h within a boot.
func Default() Config {
	return Config{
		Mode:        ModeEnforce,
		P99Max:      DefaultP99Max,
		CacheTTL:    DefaultCacheTTL,
		Size:        DefaultSize,
		BlockSize:   DefaultBlockSize,
		MaxDuration: DefaultMaxDuration,
	}
}

// Validate reports every problem in c at once, each naming its key. It has no
// side effects.
func (c Config) Validate() error {
	var errs []error
	if _, err := ParseMode(string(c.Mode)); err != nil {
		errs = append(errs, fmt.Errorf("fsync-gate: %w", err))
	}
	if c.P99Max <= 0 {
		errs = append(errs, fmt.Errorf("fsync-p99-max: %s must be positive", c.P99Max))
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("fsync-gate-cache-ttl: %s must not be negative (0 disables the cache)", c.CacheTTL))
	}
	if c.MaxDuration <= 0 {
		errs = append(errs, fmt.Errorf("fsync-gate-max-duration: %s must be positive", c.MaxDuration))
	}
	sizeOK := c.Size > 0
	if !sizeOK {
		errs = append(errs, fmt.Errorf("fsync-gate-size: %d bytes must be positive", c.Size))
	}
	blockOK := c.BlockSize > 0
	if !blockOK {
		errs = append(errs, fmt.Errorf("fsync-gate-block-size: %d bytes must be positive", c.BlockSize))
	}
	if sizeOK && blockOK {
		if n := c.Size / int64(c.BlockSize); n < DefaultMinSamples {
			errs = append(errs, fmt.Errorf("fsync-gate-size: %d bytes in %d-byte blocks is %d fdatasyncs, fewer than the %d a p99 needs",
				c.Size, c.BlockSize, n, DefaultMinSamples))
		}
	}
	return errors.Join(errs...)
}

// measureOptions turns the configuration into one measurement at the gate.
func (c Config) measureOptions() MeasureOptions {
	return MeasureOptions{
		Size:        c.Size,
		BlockSize:   c.BlockSize,
		Limit:       c.P99Max,
		EarlyStop:   !c.FullRun,
		MaxDuration: c.MaxDuration,
	}
}
