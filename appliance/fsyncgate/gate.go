package fsyncgate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CacheFileName is the cache file's name when Options.CacheFile is empty; it
// is placed next to the measured directory.
const CacheFileName = "fsync-gate.json"

// Options are the gate's inputs that are not configuration.
type Options struct {
	// CacheFile is where a pass is cached; empty means CacheFileName in the
	// parent of the measured directory.
	CacheFile string
	// Progress, when set, is called as the measurement goes (see
	// MeasureOptions).
	Progress func(Progress)
	// Child starts the measuring process; nil means the running fjord binary
	// (see MeasureOptions).
	Child *ChildCommand
}

// Verdict is the gate's decision.
type Verdict string

const (
	// VerdictPass means the p99 fdatasync latency is within the limit.
	VerdictPass Verdict = "pass"
	// VerdictFail means it exceeds the limit.
	VerdictFail Verdict = "fail"
	// VerdictNonDurable means the directory is on a filesystem held in memory
	// (tmpfs, ramfs) where the latency means nothing: it was not measured.
	VerdictNonDurable Verdict = "non-durable"
	// VerdictSkipped means the gate is off.
	VerdictSkipped Verdict = "skipped"
)

// Result is what the gate decided and on what grounds; it is a value so that
// it can feed a metric and a status line.
type Result struct {
	// Verdict is the decision.
	Verdict Verdict
	// Mode is the mode the gate ran in.
	Mode Mode
	// Limit is the p99 limit applied.
	Limit time.Duration
	// Report is the measurement the verdict rests on: the cached one when
	// Cached, only the directory's identity for non-durable, zero when skipped.
	Report Report
	// Cached is set when Report comes from the cache file.
	Cached bool
}

// Summary is a one-line description for a log or status line, such as
// "fsync p99 4.1ms ≤ 10ms (pass, 1000 samples, 0.4s)".
func (r Result) Summary() string {
	switch r.Verdict {
	case VerdictSkipped:
		return "fsync gate off (not measured)"
	case VerdictNonDurable:
		return fmt.Sprintf("fsync not measured: %s is non-durable (data is lost on reboot)", r.Report.Filesystem)
	case VerdictPass, VerdictFail:
	default:
		return fmt.Sprintf("fsync gate: %s", r.Verdict)
	}
	cmp := "≤"
	if r.Verdict == VerdictFail {
		cmp = ">"
	}
	notes := []string{string(r.Verdict)}
	if r.Verdict == VerdictFail && r.Mode == ModeWarn {
		notes = append(notes, "ignored: fsync-gate=warn")
	}
	if r.Cached {
		notes = append(notes, "cached")
	}
	switch {
	case r.Report.closeCall():
		cmp = "not clearly ≤"
		notes = append(notes, "upper bound "+FormatLatency(r.Report.P99Upper))
	case r.Report.Inconclusive:
		notes = append(notes, "inconclusive")
	}
	notes = append(notes, fmt.Sprintf("%d samples", r.Report.Samples), formatWall(r.Report.Wall))
	return fmt.Sprintf("fsync p99 %s %s %s (%s)", r.Report.p99Text(), cmp, FormatLatency(r.Limit), strings.Join(notes, ", "))
}

// formatWall prints a run's duration: 0.1s resolution from 1s up, 1ms below.
func formatWall(d time.Duration) string {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// FailedError is returned by Run in enforce mode when the disk is too slow.
// Its message is one line that says what was measured, where, and what to do.
type FailedError struct {
	// Report is the measurement that failed; Report.Limit is the limit.
	Report Report
}

// Error is the one-line message described on FailedError.
func (e *FailedError) Error() string {
	r := e.Report
	return fmt.Sprintf("fsync gate: %s on %s (device %s, %s, %d samples); "+
		"etcd will lose leader elections and time out on this disk. "+
		"Move --data-dir to a local NVMe or SSD disk, or start with --fsync-gate=warn (unsafe) to run anyway",
		r.Problem(), r.Dir, r.Device, r.Filesystem, r.Samples)
}

// Run is the startup gate for the datastore directory dir; the server calls it
// before the datastore writes anything. It validates cfg, then:
//
//   - off: logs that the gate is skipped and returns VerdictSkipped.
//   - It creates dir (0700) if missing, and removes test files left in it by a
//     killed run. It leaves nothing else behind: the test file is removed.
//   - tmpfs, ramfs (or an overlay whose upper directory is on one): logs a
//     warning that fdatasync is free there and data is lost on reboot and
//     returns VerdictNonDurable without measuring, in every mode. It does not
//     refuse to start: such directories are legitimate for throwaway clusters
//     and tests, and the gate is about latency, not durability.
//   - A pass cached in opts.CacheFile is reused, without measuring, when it
//     is younger than cfg.CacheTTL and was measured in this boot on the same
//     device and filesystem, with the same block size and a limit at least as
//     strict; cfg.Rerun always measures. Only passes are cached.
//   - Otherwise it measures (cfg.Size, cfg.BlockSize, early stop unless
//     cfg.FullRun, capped at cfg.MaxDuration) in a child process (opts.Child,
//     the running fjord binary by default). A pass (the p99, times the
//     margin, shown within the limit) is logged and cached. A failure
//     returns a *FailedError in enforce mode, and is logged as a warning and
//     returns a nil error in warn mode.
//
// A measurement that cannot run (the directory is not writable, the disk is
// full, ctx is canceled) returns an error wrapping the cause in both enforce
// and warn modes: warn only overrides a slow disk. The Result is valid
// whenever Verdict is set, including with a *FailedError.
func Run(ctx context.Context, log *slog.Logger, dir string, cfg Config, opts Options) (Result, error) {
	return newGate().run(ctx, log, dir, cfg, opts)
}

// gate holds Run's replaceable dependencies.
type gate struct {
	m      measurer
	bootID func() (string, error)
}

func newGate() gate { return gate{m: newMeasurer(), bootID: readBootID} }

func (g gate) run(ctx context.Context, log *slog.Logger, dir string, cfg Config, opts Options) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("fsync gate: invalid configuration: %w", err)
	}
	res := Result{Mode: cfg.Mode, Limit: cfg.P99Max}
	if cfg.Mode == ModeOff {
		log.Info("fsync gate skipped: fdatasync latency is not measured", "fsync-gate", cfg.Mode, "dir", dir)
		res.Verdict = VerdictSkipped
		return res, nil
	}
	if dir == "" {
		return res, errors.New("fsync gate: no directory to measure")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("measuring fsync: %w", err)
	}
	info, err := g.m.stat(dir)
	if err != nil {
		return res, fmt.Errorf("measuring fsync: %w", err)
	}
	removeStale(log, dir)

	if info.nonDurable {
		log.Warn("the datastore is on a non-durable filesystem: fdatasync is free there and all data is lost on reboot; not measuring",
			"dir", dir, "device", info.device, "filesystem", info.fsType)
		res.Verdict = VerdictNonDurable
		res.Report = Report{Dir: dir, Device: info.device, Filesystem: info.fsType, NonDurable: true, Limit: cfg.P99Max}
		return res, nil
	}

	cacheFile := opts.CacheFile
	if cacheFile == "" {
		cacheFile = filepath.Join(filepath.Dir(filepath.Clean(dir)), CacheFileName)
	}
	key := cacheKey{device: info.device, filesystem: info.fsType, blockSize: cfg.BlockSize, limit: cfg.P99Max}
	useCache := cfg.CacheTTL > 0
	if useCache {
		if key.bootID, err = g.bootID(); err != nil || key.bootID == "" {
			log.Debug("fsync gate cache disabled: no boot id", "error", err)
			useCache = false
		}
	}
	switch {
	case useCache && cfg.Rerun:
		log.Debug("fsync gate cache ignored: fsync-gate-rerun is set", "cache", cacheFile)
	case useCache:
		if e, err := readCache(cacheFile); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn("fsync gate cache unreadable; measuring", "cache", cacheFile, "error", err)
			}
		} else if reason := e.missReason(key, g.m.now(), cfg.CacheTTL); reason != "" {
			log.Debug("fsync gate cache not used", "cache", cacheFile, "reason", reason)
		} else {
			res.Verdict, res.Report, res.Cached = VerdictPass, e.Report, true
			log.Info("fsync gate passed (cached)", append(reportAttrs(e.Report), "measured_at", e.MeasuredAt, "cache", cacheFile)...)
			return res, nil
		}
	}

	mopts := cfg.measureOptions()
	mopts.Progress, mopts.Child = opts.Progress, opts.Child
	log.Info("measuring fdatasync latency before starting the datastore",
		"dir", dir, "device", info.device, "filesystem", info.fsType,
		"size", cfg.Size, "block_size", cfg.BlockSize, "p99_max", cfg.P99Max, "max_duration", cfg.MaxDuration)
	rep, err := g.m.measure(ctx, dir, mopts)
	res.Report = rep
	if err != nil {
		return res, fmt.Errorf("measuring fsync: %w", err)
	}

	if rep.Passed {
		res.Verdict = VerdictPass
		log.Info("fsync gate passed", reportAttrs(rep)...)
		if useCache {
			e := cacheEntry{Version: cacheVersion, Device: info.device, Filesystem: info.fsType, BootID: key.bootID, MeasuredAt: rep.Started, Report: rep}
			if err := writeCache(cacheFile, e); err != nil {
				log.Warn("could not cache the fsync gate's pass; it will measure again next start", "cache", cacheFile, "error", err)
			}
		}
		return res, nil
	}
	res.Verdict = VerdictFail
	ferr := &FailedError{Report: rep}
	if cfg.Mode == ModeEnforce {
		return res, ferr
	}
	log.Warn("FSYNC GATE FAILED: starting anyway because fsync-gate=warn; this is unsafe, etcd will lose leader elections and time out on this disk",
		append(reportAttrs(rep), "p99_max", rep.Limit, "fix", "move --data-dir to a local NVMe or SSD disk")...)
	return res, nil
}

// reportAttrs are the log attributes of a report.
func reportAttrs(r Report) []any {
	return []any{
		"dir", r.Dir, "device", r.Device, "filesystem", r.Filesystem,
		"p50", r.P50, "p99", r.P99, "raw_p99", r.RawP99, "margin", r.Margin, "p99_upper", r.P99Upper, "p99_9", r.P999, "max", r.Max,
		"samples", r.Samples, "wall", r.Wall, "stop", r.StopReason, "inconclusive", r.Inconclusive,
	}
}

// removeStale deletes test files that a killed measurement left in dir; only
// files with the gate's own prefix are touched.
func removeStale(log *slog.Logger, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			log.Warn("could not remove a test file left by an interrupted fsync gate", "file", p, "error", err)
			continue
		}
		log.Info("removed a test file left by an interrupted fsync gate", "file", p)
	}
}
