package fsyncgate

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullSamples is the number of fdatasyncs of a full default run.
const fullSamples = int(DefaultSize / DefaultBlockSize) // 10029

func TestMeasureDecides(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		script func(int) time.Duration
		opts   MeasureOptions
		// want
		passed, inconclusive bool
		stop                 StopReason
		samples              int           // 0: only checked to be below a full run when the stop is early
		p99, max             time.Duration // p99 as measured, before the margin
	}{
		{
			// 0.99^n ≤ 1%/99 looks first holds at n = 916; looks are every 100
			// samples from 300, so the run stops at 1000.
			name:   "a fast disk passes as soon as the interval is clear",
			script: constant(ms),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true},
			passed: true, stop: StopDecided, samples: 1000, p99: ms, max: ms,
		},
		{
			name:   "a slow disk fails after the minimum samples",
			script: constant(15 * ms),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true},
			passed: false, stop: StopDecided, samples: DefaultMinSamples, p99: 15 * ms, max: 15 * ms,
		},
		{
			// Exactly 1% of the samples are slow: the true p99 sits on the edge,
			// the interval never clears the limit, and the nearest-rank p99 of
			// the full run is the fast value. The gate cannot show the p99
			// within the limit, so it fails the disk.
			name:   "a borderline disk runs the full size and fails because it cannot show the p99 within the limit",
			script: withOutliers(ms, 20*ms, 100),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true, MaxDuration: 30 * time.Second},
			passed: false, inconclusive: true, stop: StopSize, samples: fullSamples, p99: ms, max: 20 * ms,
		},
		{
			// 5s at about 1.2ms a sample is about 4200 samples, of which 1.1% are
			// slow: the point estimate is the slow value, and the interval
			// still contains the limit.
			name:   "a borderline disk stops at the time cap and fails",
			script: withOutliers(ms, 20*ms, 90),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true, MaxDuration: 5 * time.Second},
			passed: false, inconclusive: true, stop: StopTimeLimit, p99: 20 * ms, max: 20 * ms,
		},
		{
			// 0.5% of fdatasyncs at 200ms are above the p99, not at it: the p99
			// is the fast value, and the interval clears once enough samples
			// show that fewer than 1% are slow.
			name:   "rare huge outliers below 1% pass",
			script: withOutliers(ms, 200*ms, 200),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true},
			passed: true, stop: StopDecided, p99: ms, max: 200 * ms,
		},
		{
			name:   "huge outliers in 2% of fdatasyncs fail",
			script: withOutliers(ms, 200*ms, 50),
			opts:   MeasureOptions{Limit: 10 * ms, EarlyStop: true},
			passed: false, stop: StopDecided, p99: 200 * ms, max: 200 * ms,
		},
		{
			name:   "a full run measures all of the size even when the verdict is clear",
			script: constant(ms),
			opts:   MeasureOptions{Limit: 10 * ms},
			passed: true, stop: StopSize, samples: fullSamples, p99: ms, max: ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock()
			disk := &scriptedDisk{latency: tt.script}
			rep, err := fakeMeasurer(clock, disk, ext4).measure(t.Context(), dir, tt.opts)
			if err != nil {
				t.Fatalf("measure: %v", err)
			}
			assertEmptyDir(t, dir)
			t.Logf("%d samples in %s: p99 %s (raw %s) in [%s, %s]", rep.Samples, rep.Wall, rep.P99, rep.RawP99, rep.P99Lower, rep.P99Upper)
			if rep.Passed != tt.passed || rep.Inconclusive != tt.inconclusive || rep.StopReason != tt.stop {
				t.Errorf("passed %v, inconclusive %v, stop %s; want %v, %v, %s",
					rep.Passed, rep.Inconclusive, rep.StopReason, tt.passed, tt.inconclusive, tt.stop)
			}
			if tt.samples != 0 && rep.Samples != tt.samples {
				t.Errorf("samples %d; want %d", rep.Samples, tt.samples)
			}
			if early := tt.stop != StopSize; rep.EarlyStop != early || (early && rep.Samples >= fullSamples) {
				t.Errorf("early stop %v after %d samples; want %v", rep.EarlyStop, rep.Samples, early)
			}
			if rep.RawP99 != tt.p99 || rep.Max != tt.max {
				t.Errorf("raw p99 %s, max %s; want %s, %s", rep.RawP99, rep.Max, tt.p99, tt.max)
			}
			if rep.Margin != DefaultMargin || rep.P99 != applyMargin(rep.RawP99, DefaultMargin) {
				t.Errorf("p99 %s with margin %g; want the raw %s times %g", rep.P99, rep.Margin, rep.RawP99, DefaultMargin)
			}
			if rep.Samples != disk.syncs || rep.BytesWritten != int64(disk.syncs)*DefaultBlockSize {
				t.Errorf("%d samples, %d bytes for %d fdatasyncs", rep.Samples, rep.BytesWritten, disk.syncs)
			}
			if want := clock.now().Sub(rep.Started); rep.Wall != want {
				t.Errorf("wall %s; want %s", rep.Wall, want)
			}
			if !(rep.P50 <= rep.P90 && rep.P90 <= rep.RawP99 && rep.RawP99 <= rep.P999 && rep.P999 <= rep.Max) {
				t.Errorf("percentiles out of order: %+v", rep)
			}
			if rep.Device != "8:1" || rep.Filesystem != "ext4" || rep.Dir != dir {
				t.Errorf("device %s, filesystem %s, dir %s", rep.Device, rep.Filesystem, rep.Dir)
			}
		})
	}
}

func TestMeasureErrors(t *testing.T) {
	eio := errors.New("input/output error")
	tests := []struct {
		name    string
		disk    func(cancel context.CancelFunc) *scriptedDisk
		wantIs  error
		wantMsg string
		samples int
		stop    StopReason
	}{
		{
			name: "a write error stops the run and is returned",
			disk: func(context.CancelFunc) *scriptedDisk {
				return &scriptedDisk{latency: constant(time.Millisecond), writeErr: failAt(50, eio)}
			},
			wantIs: eio, wantMsg: "writing block 51 of 10029: input/output error", samples: 50, stop: StopError,
		},
		{
			name: "a full disk says how much space the measurement needs",
			disk: func(context.CancelFunc) *scriptedDisk {
				return &scriptedDisk{latency: constant(time.Millisecond),
					writeErr: failAt(10, &os.PathError{Op: "write", Path: "f", Err: unix.ENOSPC})}
			},
			wantIs: unix.ENOSPC, wantMsg: "no space left on device (the measurement needs 22 MiB free in ", samples: 10, stop: StopError,
		},
		{
			name: "an fdatasync error stops the run and is returned",
			disk: func(context.CancelFunc) *scriptedDisk {
				return &scriptedDisk{latency: constant(time.Millisecond), syncErr: failAt(7, eio)}
			},
			wantIs: eio, wantMsg: "fdatasync after block 8 of 10029", samples: 7, stop: StopError,
		},
		{
			name: "a canceled context stops the run",
			disk: func(cancel context.CancelFunc) *scriptedDisk {
				return &scriptedDisk{latency: func(i int) time.Duration {
					if i == 99 {
						cancel()
					}
					return time.Millisecond
				}}
			},
			wantIs: context.Canceled, wantMsg: "context canceled", samples: 100, stop: StopCanceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			disk := tt.disk(cancel)
			rep, err := fakeMeasurer(newFakeClock(), disk, ext4).measure(ctx, dir, MeasureOptions{EarlyStop: true})
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v; want one wrapping %v and containing %q", err, tt.wantIs, tt.wantMsg)
			}
			assertEmptyDir(t, dir)
			if rep.Samples != tt.samples || rep.StopReason != tt.stop {
				t.Errorf("%d samples, stop %s; want %d, %s", rep.Samples, rep.StopReason, tt.samples, tt.stop)
			}
		})
	}
}

// failAt returns err from the i-th call.
func failAt(i int, err error) func(int) error {
	return func(n int) error {
		if n == i {
			return err
		}
		return nil
	}
}

func TestMeasureOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    MeasureOptions
		wantErr string
	}{
		{name: "zero options take the fio workload", opts: MeasureOptions{}},
		{name: "a block larger than the size is refused", opts: MeasureOptions{Size: 100, BlockSize: 200}, wantErr: "block size"},
		{name: "a negative limit is refused", opts: MeasureOptions{Limit: -1}, wantErr: "limit"},
		{name: "a confidence of 1 is refused", opts: MeasureOptions{Confidence: 1}, wantErr: "confidence"},
		{name: "a negative time cap is refused", opts: MeasureOptions{MaxDuration: -time.Second}, wantErr: "max duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.opts.withDefaults()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.Size != 22<<20 || o.BlockSize != 2300 || o.Limit != 10*time.Millisecond || o.MinSamples != 300 || o.Confidence != 0.99 {
					t.Errorf("defaults %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v; want one about %q", err, tt.wantErr)
			}
		})
	}
}

// TestMeasureRealDisk runs a tiny measurement on the real disk under the test
// directory, in this process. It checks that the report is sane, not that the
// disk is fast.
func TestMeasureRealDisk(t *testing.T) {
	dir := t.TempDir()
	var progress []Progress
	rep, err := MeasureInProcess(t.Context(), dir, MeasureOptions{
		Size:     64 << 10,
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("measure: %v", err)
	}
	assertEmptyDir(t, dir)
	const samples = (64 << 10) / 2300 // 28
	if rep.Samples != samples || rep.BytesWritten != samples*2300 || rep.StopReason != StopSize || rep.EarlyStop {
		t.Errorf("%d samples, %d bytes, stop %s, early %v; want %d samples of 2300 bytes and a full run",
			rep.Samples, rep.BytesWritten, rep.StopReason, rep.EarlyStop, samples)
	}
	if len(progress) != samples || progress[samples-1].BytesWritten != rep.BytesWritten {
		t.Errorf("%d progress calls; want %d ending at %d bytes", len(progress), samples, rep.BytesWritten)
	}
	if !(0 < rep.P50 && rep.P50 <= rep.P90 && rep.P90 <= rep.RawP99 && rep.RawP99 <= rep.P999 && rep.P999 <= rep.Max) {
		t.Errorf("percentiles not positive and ordered: p50 %s p90 %s p99 %s p99.9 %s max %s", rep.P50, rep.P90, rep.RawP99, rep.P999, rep.Max)
	}
	if rep.Wall < time.Duration(samples)*rep.P50/2 || rep.IOPS <= 0 {
		t.Errorf("wall %s, %.0f IOPS for %d samples", rep.Wall, rep.IOPS, samples)
	}
	if !regexp.MustCompile(`^\d+:\d+$`).MatchString(rep.Device) || rep.Filesystem == "" {
		t.Errorf("device %q, filesystem %q", rep.Device, rep.Filesystem)
	}
	if rep.P99Upper != 0 {
		t.Errorf("p99 upper bound %s from %d samples; want none", rep.P99Upper, samples)
	}
	// Without an upper bound only a clear failure is conclusive, and a disk
	// that is not shown to be within the limit fails.
	switch {
	case rep.Inconclusive && rep.Passed:
		t.Errorf("inconclusive, passed with p99 %s and limit %s", rep.P99, rep.Limit)
	case !rep.Inconclusive && (rep.Passed || rep.P99Lower <= rep.Limit):
		t.Errorf("conclusive, passed %v with p99 lower bound %s and limit %s", rep.Passed, rep.P99Lower, rep.Limit)
	}
}
