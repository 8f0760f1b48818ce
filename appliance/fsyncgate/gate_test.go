package fsyncgate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const thisBoot = "0b8f5e9c-1d2a-4c3b-9e8f-7a6b5c4d3e2f"

// testGate is a gate on a scripted disk with a fake clock and boot id.
func testGate(clock *fakeClock, disk *scriptedDisk, info fsInfo) gate {
	return gate{
		m:      fakeMeasurer(clock, disk, info),
		bootID: func() (string, error) { return thisBoot, nil },
	}
}

func TestRunModes(t *testing.T) {
	ms := time.Millisecond
	tmpfs := fsInfo{device: "0:45", fsType: "tmpfs", nonDurable: true}
	tests := []struct {
		name     string
		mode     Mode
		script   func(int) time.Duration
		info     fsInfo
		verdict  Verdict
		failed   bool   // want a *FailedError
		log      string // a line of the log must contain this
		measured bool
		cached   bool // want a cache file afterwards
	}{
		{
			name: "off skips without measuring and says so", mode: ModeOff, script: constant(ms), info: ext4,
			verdict: VerdictSkipped, log: `level=INFO msg="fsync gate skipped`,
		},
		{
			name: "enforce passes a fast disk and caches the pass", mode: ModeEnforce, script: constant(ms), info: ext4,
			verdict: VerdictPass, log: `level=INFO msg="fsync gate passed"`, measured: true, cached: true,
		},
		{
			name: "enforce refuses a slow disk with a FailedError", mode: ModeEnforce, script: constant(15 * ms), info: ext4,
			verdict: VerdictFail, failed: true, measured: true,
		},
		{
			name: "warn starts on a slow disk after a loud warning", mode: ModeWarn, script: constant(15 * ms), info: ext4,
			verdict: VerdictFail, log: `level=WARN msg="FSYNC GATE FAILED: starting anyway because fsync-gate=warn; this is unsafe`, measured: true,
		},
		{
			name: "warn passes a fast disk like enforce", mode: ModeWarn, script: constant(ms), info: ext4,
			verdict: VerdictPass, measured: true, cached: true,
		},
		{
			name: "enforce starts on tmpfs without measuring but warns that it is not durable", mode: ModeEnforce, script: constant(ms), info: tmpfs,
			verdict: VerdictNonDurable, log: `level=WARN msg="the datastore is on a non-durable filesystem: fdatasync is free there and all data is lost on reboot`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "db")
			cacheFile := filepath.Join(parent, "fsync-gate.json")
			disk := &scriptedDisk{latency: tt.script}
			log, logs := testLogger()
			cfg := Default()
			cfg.Mode = tt.mode

			res, err := testGate(newFakeClock(), disk, tt.info).run(t.Context(), log, dir, cfg, Options{CacheFile: cacheFile})

			var ferr *FailedError
			if tt.failed != errors.As(err, &ferr) || (!tt.failed && err != nil) {
				t.Fatalf("error %v; want a FailedError: %v", err, tt.failed)
			}
			if res.Verdict != tt.verdict || res.Mode != tt.mode || res.Limit != 10*ms {
				t.Errorf("verdict %s, mode %s, limit %s; want %s, %s, 10ms", res.Verdict, res.Mode, res.Limit, tt.verdict, tt.mode)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log does not contain %q:\n%s", tt.log, logs)
			}
			if measured := disk.syncs > 0; measured != tt.measured {
				t.Errorf("measured: %v; want %v", measured, tt.measured)
			}
			if _, err := os.Stat(cacheFile); (err == nil) != tt.cached {
				t.Errorf("cache file exists: %v; want %v", err == nil, tt.cached)
			}
			if tt.mode != ModeOff {
				assertEmptyDir(t, dir)
			}
			if ferr != nil {
				msg := ferr.Error()
				want := "fsync gate: p99 fdatasync 17.3ms (raw 15ms × 1.15) exceeds the 10ms limit on " + dir + " (device 8:1, ext4, 300 samples); " +
					"etcd will lose leader elections and time out on this disk. " +
					"Move --data-dir to a local NVMe or SSD disk, or start with --fsync-gate=warn (unsafe) to run anyway"
				if msg != want {
					t.Errorf("error message\n%s\nwant\n%s", msg, want)
				}
				if ferr.Report.P99 != res.Report.P99 {
					t.Errorf("FailedError report differs from the result's")
				}
			}
		})
	}
}

func TestRunDirectory(t *testing.T) {
	t.Run("creates a missing directory 0700 and leaves it empty", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "var", "db")
		g := testGate(newFakeClock(), &scriptedDisk{latency: constant(time.Millisecond)}, ext4)
		if _, err := g.run(t.Context(), nil, dir, Default(), Options{}); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("stat %s: %v, mode %v; want a 0700 directory", dir, err, st.Mode())
		}
		assertEmptyDir(t, dir)
	})
	t.Run("caches next to the directory by default", func(t *testing.T) {
		parent := t.TempDir()
		g := testGate(newFakeClock(), &scriptedDisk{latency: constant(time.Millisecond)}, ext4)
		if _, err := g.run(t.Context(), nil, filepath.Join(parent, "db"), Default(), Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(parent, CacheFileName)); err != nil {
			t.Errorf("no cache file next to the directory: %v", err)
		}
	})
	t.Run("removes a test file left by a killed run", func(t *testing.T) {
		dir := t.TempDir()
		stale := filepath.Join(dir, tempPrefix+"123456")
		if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		keep := filepath.Join(dir, "member")
		if err := os.Mkdir(keep, 0o700); err != nil {
			t.Fatal(err)
		}
		log, logs := testLogger()
		g := testGate(newFakeClock(), &scriptedDisk{latency: constant(time.Millisecond)}, ext4)
		if _, err := g.run(t.Context(), log, dir, Default(), Options{CacheFile: filepath.Join(t.TempDir(), "c.json")}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale test file still there: %v", err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("the datastore's own entry was touched: %v", err)
		}
		if !strings.Contains(logs.String(), "removed a test file left by an interrupted fsync gate") {
			t.Errorf("removal not logged:\n%s", logs)
		}
	})
	t.Run("returns a measurement error in warn mode too", func(t *testing.T) {
		dir := t.TempDir()
		cfg := Default()
		cfg.Mode = ModeWarn
		disk := &scriptedDisk{latency: constant(time.Millisecond), writeErr: failAt(3, errors.New("input/output error"))}
		_, err := testGate(newFakeClock(), disk, ext4).run(t.Context(), nil, dir, cfg, Options{CacheFile: filepath.Join(t.TempDir(), "c.json")})
		if err == nil || !strings.HasPrefix(err.Error(), "measuring fsync: writing block 4 of 10029: input/output error") {
			t.Errorf("error %v; want the write error wrapped", err)
		}
		assertEmptyDir(t, dir)
	})
	t.Run("returns cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := testGate(newFakeClock(), &scriptedDisk{latency: constant(time.Millisecond)}, ext4).
			run(ctx, nil, t.TempDir(), Default(), Options{CacheFile: filepath.Join(t.TempDir(), "c.json")})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v; want context.Canceled", err)
		}
	})
	t.Run("refuses an invalid configuration before touching the disk", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		cfg := Default()
		cfg.P99Max = 0
		_, err := testGate(newFakeClock(), &scriptedDisk{latency: constant(time.Millisecond)}, ext4).run(t.Context(), nil, dir, cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), "fsync-p99-max") {
			t.Errorf("error %v; want one naming fsync-p99-max", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("directory created despite the invalid configuration")
		}
	})
}

func TestRunCache(t *testing.T) {
	ms := time.Millisecond
	pass := Report{Dir: "/old", Device: "8:1", Filesystem: "ext4", BlockSize: 2300, Limit: 10 * ms,
		P99: 2 * ms, Samples: 1000, Passed: true, StopReason: StopDecided}
	entry := func(age time.Duration, edit func(*cacheEntry)) func(now time.Time) *cacheEntry {
		return func(now time.Time) *cacheEntry {
			e := cacheEntry{Version: cacheVersion, Device: "8:1", Filesystem: "ext4", BootID: thisBoot, MeasuredAt: now.Add(-age), Report: pass}
			if edit != nil {
				edit(&e)
			}
			return &e
		}
	}
	tests := []struct {
		name     string
		entry    func(now time.Time) *cacheEntry // nil: no cache file
		corrupt  bool
		cfg      func(*Config)
		script   func(int) time.Duration
		cached   bool
		reason   string // logged reason for a miss
		fileLeft bool   // a cache file exists afterwards
	}{
		{name: "no cache file measures and writes one", script: constant(ms), fileLeft: true},
		{name: "a fresh pass from this boot is reused without measuring", entry: entry(time.Hour, nil), cached: true, fileLeft: true},
		{name: "an expired pass is measured again", entry: entry(25*time.Hour, nil), script: constant(ms), reason: "expired", fileLeft: true},
		{
			name: "a pass from another boot is measured again", entry: entry(time.Hour, func(e *cacheEntry) { e.BootID = "other" }),
			script: constant(ms), reason: "another boot", fileLeft: true,
		},
		{
			name: "a pass on another device is measured again", entry: entry(time.Hour, func(e *cacheEntry) { e.Device = "259:1" }),
			script: constant(ms), reason: "device 259:1", fileLeft: true,
		},
		{
			name: "a pass under a looser limit is measured again", entry: entry(time.Hour, func(e *cacheEntry) { e.Report.Limit = 20 * ms }),
			script: constant(ms), reason: "looser", fileLeft: true,
		},
		{
			name: "a pass under a stricter limit is reused", entry: entry(time.Hour, func(e *cacheEntry) { e.Report.Limit = 5 * ms }),
			cached: true, fileLeft: true,
		},
		{
			name: "rerun measures despite a fresh pass", entry: entry(time.Hour, nil), cfg: func(c *Config) { c.Rerun = true },
			script: constant(ms), reason: "fsync-gate-rerun", fileLeft: true,
		},
		{
			name: "a zero ttl neither reads nor writes the cache", cfg: func(c *Config) { c.CacheTTL = 0 },
			script: constant(ms),
		},
		{name: "a corrupt cache file is replaced", corrupt: true, script: constant(ms), reason: "unreadable", fileLeft: true},
		{
			name: "a failure is not cached", cfg: func(c *Config) { c.Mode = ModeWarn },
			script: constant(15 * ms),
		},
		{
			name: "a failure does not replace an expired pass", entry: entry(25*time.Hour, nil), cfg: func(c *Config) { c.Mode = ModeWarn },
			script: constant(15 * ms), reason: "expired", fileLeft: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			dir := t.TempDir()
			cacheFile := filepath.Join(t.TempDir(), "data", "fsync-gate.json")
			var before *cacheEntry
			switch {
			case tt.corrupt:
				if err := os.MkdirAll(filepath.Dir(cacheFile), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cacheFile, []byte("{not json"), 0o600); err != nil {
					t.Fatal(err)
				}
			case tt.entry != nil:
				before = tt.entry(clock.now())
				if err := writeCache(cacheFile, *before); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Default()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			script := tt.script
			if script == nil {
				script = func(int) time.Duration { t.Fatal("measured despite a valid cache"); return 0 }
			}
			disk := &scriptedDisk{latency: script}
			log, logs := testLogger()

			res, err := testGate(clock, disk, ext4).run(t.Context(), log, dir, cfg, Options{CacheFile: cacheFile})
			if err != nil {
				t.Fatal(err)
			}
			if res.Cached != tt.cached {
				t.Errorf("cached %v; want %v", res.Cached, tt.cached)
			}
			if tt.cached && (res.Verdict != VerdictPass || res.Report.P99 != pass.P99 || res.Report.Dir != "/old") {
				t.Errorf("cached result %+v; want the cached pass", res)
			}
			if tt.reason != "" && !strings.Contains(logs.String(), tt.reason) {
				t.Errorf("log does not give the reason %q:\n%s", tt.reason, logs)
			}
			after, err := readCache(cacheFile)
			if (err == nil) != tt.fileLeft {
				t.Fatalf("reading the cache afterwards: %v; want a file: %v", err, tt.fileLeft)
			}
			if err != nil {
				return
			}
			if st, err := os.Stat(cacheFile); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("cache file mode %v (%v); want 0600", st.Mode(), err)
			}
			entries, _ := os.ReadDir(filepath.Dir(cacheFile))
			if len(entries) != 1 {
				t.Errorf("cache directory holds %d entries; want only the cache file", len(entries))
			}
			switch {
			case res.Verdict == VerdictPass && !res.Cached:
				if !after.MeasuredAt.Equal(res.Report.Started) || after.BootID != thisBoot || after.Report.Samples != res.Report.Samples {
					t.Errorf("cache holds %+v; want the new pass", after)
				}
			case before != nil:
				if !after.MeasuredAt.Equal(before.MeasuredAt) {
					t.Errorf("cache rewritten to %+v; want it unchanged", after)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	ms := time.Millisecond
	rep := Report{P99: 4100 * time.Microsecond, Samples: 812, Wall: 1234 * ms, Passed: true}
	tests := []struct {
		name string
		res  Result
		want string
	}{
		{
			name: "a pass gives the p99, the limit and the effort",
			res:  Result{Verdict: VerdictPass, Mode: ModeEnforce, Limit: 10 * ms, Report: rep},
			want: "fsync p99 4.1ms ≤ 10ms (pass, 812 samples, 1.2s)",
		},
		{
			name: "a cached pass says so",
			res:  Result{Verdict: VerdictPass, Mode: ModeEnforce, Limit: 10 * ms, Report: rep, Cached: true},
			want: "fsync p99 4.1ms ≤ 10ms (pass, cached, 812 samples, 1.2s)",
		},
		{
			name: "an ignored inconclusive failure says both",
			res: Result{Verdict: VerdictFail, Mode: ModeWarn, Limit: 10 * ms,
				Report: Report{P99: 12840 * time.Microsecond, Samples: 10029, Wall: 27100 * ms, Inconclusive: true}},
			want: "fsync p99 12.8ms > 10ms (fail, ignored: fsync-gate=warn, inconclusive, 10029 samples, 27.1s)",
		},
		{
			name: "a failure close to the limit gives the upper bound that failed it",
			res: Result{Verdict: VerdictFail, Mode: ModeEnforce, Limit: 10 * ms,
				Report: Report{Limit: 10 * ms, P99: 9300 * time.Microsecond, P99Upper: 10400 * time.Microsecond, Samples: 10029, Wall: 27100 * ms, Inconclusive: true}},
			want: "fsync p99 9.3ms not clearly ≤ 10ms (fail, upper bound 10.4ms, 10029 samples, 27.1s)",
		},
		{
			name: "a margin shows the raw p99 beside the corrected one",
			res: Result{Verdict: VerdictPass, Mode: ModeEnforce, Limit: 10 * ms,
				Report: Report{RawP99: 4 * ms, Margin: 1.25, P99: 5 * ms, Samples: 1000, Wall: 1234 * ms, Passed: true}},
			want: "fsync p99 5ms (raw 4ms × 1.25) ≤ 10ms (pass, 1000 samples, 1.2s)",
		},
		{
			name: "a fast run gives its wall time in milliseconds",
			res:  Result{Verdict: VerdictPass, Limit: 10 * ms, Report: Report{P99: 412 * time.Microsecond, Samples: 1000, Wall: 312 * ms}},
			want: "fsync p99 412µs ≤ 10ms (pass, 1000 samples, 312ms)",
		},
		{
			name: "non-durable names the filesystem",
			res:  Result{Verdict: VerdictNonDurable, Report: Report{Filesystem: "tmpfs"}},
			want: "fsync not measured: tmpfs is non-durable (data is lost on reboot)",
		},
		{name: "off says so", res: Result{Verdict: VerdictSkipped}, want: "fsync gate off (not measured)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Summary(); got != tt.want {
				t.Errorf("Summary() = %q; want %q", got, tt.want)
			}
		})
	}
}
