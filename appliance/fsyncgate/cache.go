package fsyncgate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// cacheVersion changes when the cache file's meaning does; other versions
// are ignored. Version 2: measured in a child, with a margin, and passed only
// when the p99 is shown within the limit (version 1's in-process passes read
// low).
const cacheVersion = 2

// cacheEntry is the content of the cache file: one pass, and what it is valid
// for.
type cacheEntry struct {
	Version    int       `json:"version"`
	Device     string    `json:"device"`
	Filesystem string    `json:"filesystem"`
	BootID     string    `json:"boot_id"`
	MeasuredAt time.Time `json:"measured_at"`
	Report     Report    `json:"report"`
}

// cacheKey is what a cached pass must match to be reused.
type cacheKey struct {
	device, filesystem, bootID string
	blockSize                  int
	limit                      time.Duration
}

// missReason says why the entry cannot be reused now, or "" when it can. A
// pass under a limit at most as strict as the current one counts; a pass under
// a looser limit does not.
func (e cacheEntry) missReason(k cacheKey, now time.Time, ttl time.Duration) string {
	switch {
	case e.Version != cacheVersion:
		return fmt.Sprintf("version %d is not %d", e.Version, cacheVersion)
	case !e.Report.Passed:
		return "not a pass"
	case e.BootID != k.bootID:
		return "measured in another boot"
	case e.Device != k.device:
		return fmt.Sprintf("measured on device %s, not %s", e.Device, k.device)
	case e.Filesystem != k.filesystem:
		return fmt.Sprintf("measured on %s, not %s", e.Filesystem, k.filesystem)
	case e.Report.BlockSize != k.blockSize:
		return fmt.Sprintf("measured with %d-byte blocks, not %d", e.Report.BlockSize, k.blockSize)
	case e.Report.Limit > k.limit:
		return fmt.Sprintf("passed a %s limit, looser than %s", FormatLatency(e.Report.Limit), FormatLatency(k.limit))
	case now.Before(e.MeasuredAt):
		return "measured in the future (clock changed)"
	case now.Sub(e.MeasuredAt) >= ttl:
		return fmt.Sprintf("expired (measured %s ago, ttl %s)", now.Sub(e.MeasuredAt).Round(time.Second), ttl)
	}
	return ""
}

// readCache reads the cache file; a missing file is os.ErrNotExist.
func readCache(path string) (cacheEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return cacheEntry{}, err
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return cacheEntry{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return e, nil
}

// writeCache replaces the cache file atomically (temporary file, fsync,
// rename, fsync of the directory) with mode 0600, creating its directory
// (0700) when missing.
func writeCache(path string, e cacheEntry) (err error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the rename happened; only its durability is unknown
	}
	defer d.Close()
	return d.Sync()
}
