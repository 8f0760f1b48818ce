package fsyncgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FioJobName is the --name of the fio job that RunFio runs; fio names its
// file FioJobName+".0.0" in the directory.
const FioJobName = "fjord-gate"

// FioOptions describe one fio run of etcd's command.
type FioOptions struct {
	// Bin is the fio program; empty means "fio" on $PATH.
	Bin string
	// Dir is the directory fio writes its file in.
	Dir string
	// Size and BlockSize are fio's --size and --bs; zero takes the defaults
	// (22 MiB, 2300 bytes).
	Size      int64
	BlockSize int
}

// FioResult is fio's view of one run: its fdatasync ("sync") latencies.
type FioResult struct {
	// Version is fio's version ("fio-3.33").
	Version string
	// Samples is the number of fdatasyncs fio measured.
	Samples int64
	// Mean, P50, P90, P99, P999 and Max summarise the fdatasync latencies.
	// fio's percentiles come from its histogram: within about 1.6 % of the
	// exact sample.
	Mean, P50, P90, P99, P999, Max time.Duration
	// Runtime is fio's job runtime, without process start and file layout.
	Runtime time.Duration
}

// ErrFioNotFound is returned by RunFio when the fio program is not installed.
var ErrFioNotFound = errors.New("fio is not installed (Debian, Ubuntu: apt-get install fio; Fedora, RHEL: dnf install fio)")

// FioArgs returns the arguments of etcd's fio command for opts, the same
// workload Measure runs:
//
//	fio --name=fjord-gate --directory=DIR --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300 --output-format=json
func FioArgs(opts FioOptions) []string {
	size, bs := opts.Size, opts.BlockSize
	if size == 0 {
		size = DefaultSize
	}
	if bs == 0 {
		bs = DefaultBlockSize
	}
	sizeArg := fmt.Sprint(size)
	if size%(1<<20) == 0 {
		sizeArg = fmt.Sprintf("%dm", size>>20) // fio's m is MiB
	}
	return []string{
		"--name=" + FioJobName, "--directory=" + opts.Dir, "--rw=write", "--ioengine=sync", "--fdatasync=1",
		"--size=" + sizeArg, fmt.Sprintf("--bs=%d", bs), "--output-format=json",
	}
}

// RunFio runs etcd's fio command (FioArgs) in opts.Dir and returns fio's
// fdatasync latencies. It removes the file fio leaves behind. A missing fio
// program is ErrFioNotFound.
func RunFio(ctx context.Context, opts FioOptions) (FioResult, error) {
	bin := opts.Bin
	if bin == "" {
		bin = "fio"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return FioResult{}, ErrFioNotFound
		}
		return FioResult{}, fmt.Errorf("finding fio: %w", err)
	}
	defer os.Remove(filepath.Join(opts.Dir, FioJobName+".0.0"))
	cmd := exec.CommandContext(ctx, path, FioArgs(opts)...)
	// fio's job is a process in a session of its own: killing fio would
	// leave it writing. On SIGINT fio stops its jobs and exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			return FioResult{}, cerr
		}
		return FioResult{}, fmt.Errorf("running fio: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return ParseFioJSON(out)
}

// fioJSON is the part of fio's --output-format=json that RunFio reads.
type fioJSON struct {
	Version string `json:"fio version"`
	Jobs    []struct {
		Name       string `json:"jobname"`
		Error      int    `json:"error"`
		JobRuntime int64  `json:"job_runtime"` // milliseconds
		Sync       struct {
			TotalIOs int64 `json:"total_ios"`
			Lat      struct {
				N          int64              `json:"N"`
				Min        int64              `json:"min"`
				Max        int64              `json:"max"`
				Mean       float64            `json:"mean"`
				Percentile map[string]float64 `json:"percentile"`
			} `json:"lat_ns"`
		} `json:"sync"`
	} `json:"jobs"`
}

// ParseFioJSON reads the fdatasync latencies of the first job from fio's
// --output-format=json: jobs[0].sync.lat_ns, whose percentile keys are
// "50.000000", "99.000000" and so on. fio may print warnings before the
// JSON; they are skipped.
func ParseFioJSON(b []byte) (FioResult, error) {
	if i := bytes.IndexByte(b, '{'); i > 0 {
		b = b[i:]
	}
	var j fioJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return FioResult{}, fmt.Errorf("parsing fio's JSON: %w", err)
	}
	if len(j.Jobs) == 0 {
		return FioResult{}, errors.New("fio's JSON has no job")
	}
	job := j.Jobs[0]
	if job.Error != 0 {
		return FioResult{}, fmt.Errorf("fio job %s failed with error %d", job.Name, job.Error)
	}
	lat := job.Sync.Lat
	if lat.N == 0 {
		return FioResult{}, errors.New("fio reported no fdatasync latencies (was it run with --fdatasync=1?)")
	}
	r := FioResult{
		Version: j.Version,
		Samples: lat.N,
		Mean:    time.Duration(lat.Mean),
		Max:     time.Duration(lat.Max),
		Runtime: time.Duration(job.JobRuntime) * time.Millisecond,
	}
	for _, p := range []struct {
		key string
		dst *time.Duration
	}{{"50.000000", &r.P50}, {"90.000000", &r.P90}, {"99.000000", &r.P99}, {"99.900000", &r.P999}} {
		v, ok := lat.Percentile[p.key]
		if !ok {
			return FioResult{}, fmt.Errorf("fio reported no %s percentile of fdatasync latency", strings.TrimRight(strings.TrimRight(p.key, "0"), "."))
		}
		*p.dst = time.Duration(v)
	}
	return r, nil
}

// MarshalJSON writes durations as float milliseconds (fields ending in _ms),
// like Report's.
func (r FioResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Version string `json:"version"`
		Samples int64  `json:"samples"`
		Mean    millis `json:"mean_ms"`
		P50     millis `json:"p50_ms"`
		P90     millis `json:"p90_ms"`
		P99     millis `json:"p99_ms"`
		P999    millis `json:"p99_9_ms"`
		Max     millis `json:"max_ms"`
		Runtime millis `json:"runtime_ms"`
	}{r.Version, r.Samples, millis(r.Mean), millis(r.P50), millis(r.P90), millis(r.P99), millis(r.P999), millis(r.Max), millis(r.Runtime)})
}

// FormatComparison prints Fjord's report and fio's result side by side, with
// each one's verdict against the report's limit and a line that says whether
// they agree.
func FormatComparison(rep Report, fio FioResult) string {
	var b strings.Builder
	row := func(name, fjord, fio string) { fmt.Fprintf(&b, "%-18s %-16s %s\n", name, fjord, fio) }
	verdict := func(p99 time.Duration) string {
		if p99 <= rep.Limit {
			return "pass"
		}
		return "fail"
	}
	row("", "fjord", fio.Version)
	row("fdatasyncs", fmt.Sprint(rep.Samples), fmt.Sprint(fio.Samples))
	row("p50", FormatLatency(rep.P50), FormatLatency(fio.P50))
	row("p90", FormatLatency(rep.P90), FormatLatency(fio.P90))
	if rep.Margin > 1 {
		row("p99 as measured", FormatLatency(rep.RawP99), FormatLatency(fio.P99))
		row(fmt.Sprintf("p99 × %g margin", rep.Margin), FormatLatency(rep.P99), "")
	} else {
		row("p99", FormatLatency(rep.P99), FormatLatency(fio.P99))
	}
	row("p99.9", FormatLatency(rep.P999), FormatLatency(fio.P999))
	row("max", FormatLatency(rep.Max), FormatLatency(fio.Max))
	fjordVerdict := "fail"
	switch {
	case rep.Passed:
		fjordVerdict = "pass"
	case rep.closeCall():
		fjordVerdict = "fail (not clearly within)"
	}
	row("verdict ("+FormatLatency(rep.Limit)+")", fjordVerdict, verdict(fio.P99))
	ratio := float64(rep.P99) / float64(max(fio.P99, 1))
	switch {
	case rep.Passed && fio.P99 > rep.Limit:
		fmt.Fprintf(&b, "DISAGREE: Fjord passes a disk that fio fails (p99 ratio %.2f); please report it with both outputs\n", ratio)
	case !rep.Passed && fio.P99 <= rep.Limit:
		fmt.Fprintf(&b, "disagree: Fjord fails a disk that fio passes (p99 ratio %.2f), which errs on the safe side; "+
			"a disk near the limit, or whose latency varies from run to run, reads either way: run both again\n", ratio)
	default:
		fmt.Fprintf(&b, "agree: both %s (p99 ratio fjord/fio %.2f)\n", verdict(fio.P99), ratio)
	}
	return b.String()
}
