package fsyncgate

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that only moves when the fake disk says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// writeCost is what every fake write takes.
const writeCost = 10 * time.Microsecond

// scriptedDisk is a syncer whose fdatasync latencies come from a script; it
// advances the fake clock instead of sleeping.
type scriptedDisk struct {
	clock *fakeClock
	// latency returns the latency of the i-th fdatasync (from 0).
	latency func(i int) time.Duration
	// writeErr and syncErr, when set, may fail the i-th call.
	writeErr func(i int) error
	syncErr  func(i int) error

	writes, syncs int
}

func (d *scriptedDisk) Write(p []byte) (int, error) {
	if d.writeErr != nil {
		if err := d.writeErr(d.writes); err != nil {
			return 0, err
		}
	}
	d.writes++
	d.clock.advance(writeCost)
	return len(p), nil
}

func (d *scriptedDisk) Sync() error {
	if d.syncErr != nil {
		if err := d.syncErr(d.syncs); err != nil {
			return err
		}
	}
	d.clock.advance(d.latency(d.syncs))
	d.syncs++
	return nil
}

// constant is a script of equal latencies.
func constant(d time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return d }
}

// withOutliers is a script where every period-th fdatasync takes outlier and
// the others base.
func withOutliers(base, outlier time.Duration, period int) func(int) time.Duration {
	return func(i int) time.Duration {
		if i%period == period-1 {
			return outlier
		}
		return base
	}
}

var ext4 = fsInfo{device: "8:1", fsType: "ext4"}

// fakeMeasurer measures disk with the fake clock on a filesystem that stat
// reports as info. The test file is still created (and must be removed) in
// the real directory.
func fakeMeasurer(clock *fakeClock, disk *scriptedDisk, info fsInfo) measurer {
	disk.clock = clock
	return measurer{
		now:  clock.now,
		wrap: func(*os.File) syncer { return disk },
		stat: func(string) (fsInfo, error) { return info, nil },
		// The scripted disk is in this process.
		inProcess: true,
	}
}

// assertEmptyDir fails when dir holds anything, such as a test file left behind.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	for _, e := range entries {
		t.Errorf("%s holds %s; want it empty", dir, e.Name())
	}
}

// testLogger returns a logger that writes text to the returned buffer.
func testLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}
