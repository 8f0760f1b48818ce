package fsyncgate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMinSamples is how many fdatasyncs are measured before the early-stop
// decision is first considered; fewer say little about a p99.
const DefaultMinSamples = 300

// DefaultConfidence is the probability that an early verdict is the one the
// true p99 gives, over the whole run.
const DefaultConfidence = 0.99

// tempPattern names the test file; the gate removes leftovers of a killed run
// by this prefix.
const (
	tempPrefix  = ".fjord-fsync-gate-"
	tempPattern = tempPrefix + "*"
)

// MeasureOptions describe one measurement. Zero values take the defaults of
// the fio workload (22 MiB in 2300-byte blocks), a 10ms limit, 300 minimum
// samples and 99% confidence; a zero MaxDuration means no time cap.
type MeasureOptions struct {
	// Size is the number of bytes of a full run; it is rounded down to whole
	// blocks, as fio does.
	Size int64
	// BlockSize is the size of one write.
	BlockSize int
	// Limit is the p99 the verdict compares against.
	Limit time.Duration
	// EarlyStop ends the run as soon as the p99's confidence interval lies
	// entirely on one side of Limit (see the package documentation).
	EarlyStop bool
	// MinSamples is the number of samples before early stop is considered.
	MinSamples int
	// Confidence is the probability, over the whole run, that an early verdict
	// is the one the true p99 gives; it also sets the reported interval.
	Confidence float64
	// MaxDuration caps the run; a run whose interval is not clear by then
	// fails (see "Verdict"). Zero means no cap.
	MaxDuration time.Duration
	// Progress, when set, is called with the state of the run: after every
	// sample in process, every 100ms from a child. It must be quick.
	Progress func(Progress)
	// Margin multiplies the measured p99 and its bounds before they are
	// compared with Limit; 0 means DefaultMargin, 1 none.
	Margin float64
	// Child starts the measuring process; nil means the running fjord binary
	// (FjordChild). Programs other than fjord set it to themselves.
	Child *ChildCommand
}

// Progress is the state of a running measurement.
type Progress struct {
	// Samples is the number of fdatasyncs measured so far.
	Samples int
	// BytesWritten is Samples times the block size.
	BytesWritten int64
	// Size is the number of bytes of a full run.
	Size int64
	// Elapsed is the time since the first write.
	Elapsed time.Duration
}

// withDefaults fills zero fields and rejects impossible ones.
func (o MeasureOptions) withDefaults() (MeasureOptions, error) {
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.Limit == 0 {
		o.Limit = DefaultP99Max
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	var errs []error
	if o.Size < 0 || o.BlockSize < 0 || int64(o.BlockSize) > o.Size {
		errs = append(errs, fmt.Errorf("size %d and block size %d: need 0 < block size ≤ size", o.Size, o.BlockSize))
	}
	if o.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %s must be positive", o.Limit))
	}
	if o.MinSamples < 0 {
		errs = append(errs, fmt.Errorf("minimum samples %d must be positive", o.MinSamples))
	}
	if o.Confidence <= 0.5 || o.Confidence >= 1 {
		errs = append(errs, fmt.Errorf("confidence %g must be between 0.5 and 1", o.Confidence))
	}
	if o.Margin < 1 || o.Margin > 10 {
		errs = append(errs, fmt.Errorf("margin %g must be between 1 and 10", o.Margin))
	}
	if o.MaxDuration < 0 {
		errs = append(errs, fmt.Errorf("max duration %s must not be negative", o.MaxDuration))
	}
	return o, errors.Join(errs...)
}

// Measure runs the fio-equivalent fdatasync workload (see the package
// documentation) on a new temporary file in dir, which must exist, and
// returns the report. The writes and fdatasyncs are issued by a child process
// started with opts.Child (the running fjord binary when nil), which does
// nothing else (see "One quiet thread"). The file is removed before Measure
// returns, whatever happens. On an error or cancellation the report holds
// what was measured until then, when the child could say. Measure does not
// refuse non-durable filesystems; it marks them in the report.
func Measure(ctx context.Context, dir string, opts MeasureOptions) (Report, error) {
	return newMeasurer().measure(ctx, dir, opts)
}

// MeasureInProcess is Measure without the child process: the calling
// goroutine writes and fdatasyncs. Its p99 reads lower than fio's, by a
// factor of up to five on a loaded machine (see "One quiet thread"), so the
// gate does not use it; it is kept for comparisons.
func MeasureInProcess(ctx context.Context, dir string, opts MeasureOptions) (Report, error) {
	m := newMeasurer()
	m.inProcess = true
	return m.measure(ctx, dir, opts)
}

// syncer is the file under test: tests replace it to script latencies.
type syncer interface {
	Write(p []byte) (int, error)
	Sync() error
}

// fileSyncer is a real file whose Sync is fdatasync(2), like fio's
// --fdatasync=1 (os.File.Sync is fsync, which also flushes metadata).
type fileSyncer struct {
	f  *os.File
	fd int
}

func (s fileSyncer) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s fileSyncer) Sync() error {
	for {
		err := unix.Fdatasync(s.fd)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: s.f.Name(), Err: err}
			}
			return nil
		}
	}
}

func newFileSyncer(f *os.File) syncer { return fileSyncer{f: f, fd: int(f.Fd())} }

// measurer runs measurements; its clock and file are replaceable so that
// tests can script latencies without sleeping.
type measurer struct {
	now  func() time.Time
	wrap func(*os.File) syncer
	stat func(dir string) (fsInfo, error)
	// inProcess measures in the calling process instead of a child.
	inProcess bool
}

func newMeasurer() measurer {
	return measurer{now: time.Now, wrap: newFileSyncer, stat: statFS}
}

// newReport is the report of a measurement with opts before it starts.
func newReport(dir string, opts MeasureOptions) Report {
	return Report{
		Dir:        dir,
		Size:       opts.Size,
		BlockSize:  opts.BlockSize,
		Limit:      opts.Limit,
		Confidence: opts.Confidence,
		Margin:     opts.Margin,
	}
}

func (m measurer) measure(ctx context.Context, dir string, opts MeasureOptions) (rep Report, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return Report{Dir: dir}, fmt.Errorf("invalid options: %w", err)
	}
	rep = newReport(dir, opts)
	info, err := m.stat(dir)
	if err != nil {
		return rep, err
	}
	rep.Device, rep.Filesystem, rep.NonDurable = info.device, info.fsType, info.nonDurable

	// A new file every run, as fio unlinks and recreates its own: a file
	// that already holds the blocks would make every fdatasync cheaper.
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return rep, fmt.Errorf("creating test file: %w", err)
	}
	defer func() {
		cerr := f.Close()
		if rerr := os.Remove(f.Name()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing test file: %w", rerr))
		} else if err == nil && cerr != nil {
			err = fmt.Errorf("closing test file: %w", cerr)
		}
	}()
	if m.inProcess {
		return m.run(ctx, f, opts, rep)
	}
	child := opts.Child
	if child == nil {
		c, err := FjordChild()
		if err != nil {
			return rep, err
		}
		child = &c
	}
	return child.run(ctx, f, opts, rep)
}

// run preallocates f, which must be empty, and measures on it in the calling
// goroutine; opts have their defaults. rep is the report so far.
func (m measurer) run(ctx context.Context, f *os.File, opts MeasureOptions, rep Report) (Report, error) {
	blocks := int(opts.Size / int64(opts.BlockSize))
	total := int64(blocks) * int64(opts.BlockSize)
	if err := preallocate(f, total); err != nil {
		return rep, fmt.Errorf("preallocating %s test file: %w", formatBytes(opts.Size), withSpaceHint(err, opts.Size, rep.Dir))
	}

	s := m.wrap(f)
	buf := testData(opts.BlockSize)
	alpha := (1 - opts.Confidence) / float64(looks(blocks, opts.MinSamples))
	lat := make([]time.Duration, 0, blocks)
	start := m.now()
	rep.Started = start
	rep.StopReason = StopSize
	for i := range blocks {
		if cerr := context.Cause(ctx); cerr != nil {
			rep.summarize(lat, m.now().Sub(start), alpha)
			rep.StopReason = StopCanceled
			return rep, cerr
		}
		if _, err := s.Write(buf); err != nil {
			rep.summarize(lat, m.now().Sub(start), alpha)
			rep.StopReason = StopError
			return rep, fmt.Errorf("writing block %d of %d: %w", i+1, blocks, withSpaceHint(err, opts.Size, rep.Dir))
		}
		t0 := m.now()
		if err := s.Sync(); err != nil {
			rep.summarize(lat, m.now().Sub(start), alpha)
			rep.StopReason = StopError
			return rep, fmt.Errorf("fdatasync after block %d of %d: %w", i+1, blocks, withSpaceHint(err, opts.Size, rep.Dir))
		}
		t1 := m.now()
		lat = append(lat, t1.Sub(t0))
		n := len(lat)
		if opts.Progress != nil {
			opts.Progress(Progress{Samples: n, BytesWritten: int64(n) * int64(opts.BlockSize), Size: opts.Size, Elapsed: t1.Sub(start)})
		}
		if opts.EarlyStop && n >= opts.MinSamples && (n-opts.MinSamples)%ciCheckEvery == 0 {
			// The order of the samples does not matter, and sorting in place
			// keeps the next sort cheap (pdqsort on nearly sorted data).
			slices.Sort(lat)
			if iv := p99Interval(lat, alpha).withMargin(opts.Margin); iv.clearPass(opts.Limit) || iv.clearFail(opts.Limit) {
				rep.StopReason = StopDecided
				break
			}
		}
		if opts.MaxDuration > 0 && t1.Sub(start) >= opts.MaxDuration && n < blocks {
			rep.StopReason = StopTimeLimit
			break
		}
	}
	rep.summarize(lat, m.now().Sub(start), alpha)
	return rep, nil
}

// preallocate gives the file its full size up front, as fio's default
// --fallocate=native does, so that each fdatasync commits the same metadata
// as fio's (unwritten extents turning written) rather than a growing size.
func preallocate(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP || err == unix.ENOSYS:
			return nil // fio falls back to no preallocation too
		case err != nil:
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
		return nil
	}
}

// withSpaceHint adds what to do to an out-of-space error.
func withSpaceHint(err error, size int64, dir string) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w (the measurement needs %s free in %s)", err, formatBytes(size), dir)
	}
	return err
}

// testData returns one block of incompressible bytes, as fio writes, so that
// compressing filesystems cannot make the writes smaller.
func testData(n int) []byte {
	r := rand.NewChaCha8([32]byte{'f', 'j', 'o', 'r', 'd'})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// formatBytes prints a size in binary units (22 MiB).
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
