package fsyncgate

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// StopReason says why a measurement ended.
type StopReason string

const (
	// StopSize means Size bytes were written: a full, fio-equivalent run.
	StopSize StopReason = "size"
	// StopDecided means the p99's confidence interval lay entirely on one
	// side of the limit before Size was reached.
	StopDecided StopReason = "decided"
	// StopTimeLimit means MaxDuration passed before Size was reached or the
	// verdict was clear.
	StopTimeLimit StopReason = "time-limit"
	// StopCanceled means the context was canceled.
	StopCanceled StopReason = "canceled"
	// StopError means a write or fdatasync failed.
	StopError StopReason = "error"
)

// describe says what the stop reason means, for people.
func (s StopReason) describe() string {
	switch s {
	case StopSize:
		return "full run"
	case StopDecided:
		return "early, the verdict was clear"
	case StopTimeLimit:
		return "at the time cap"
	}
	return string(s)
}

// Report is the result of one measurement. Latencies are of fdatasync calls
// alone, the "sync" latencies of fio. In JSON every duration is a float number
// of milliseconds in a field ending in _ms (p99_ms: 4.1), and the other
// fields are snake_case.
type Report struct {
	// Dir is the directory measured.
	Dir string
	// Device is Dir's device as "major:minor" (st_dev).
	Device string
	// Filesystem names Dir's filesystem ("ext4", "overlay on tmpfs", or the
	// statfs magic in hex when unknown).
	Filesystem string
	// NonDurable is set on filesystems held in memory (tmpfs, ramfs), where
	// fdatasync costs nothing and data is lost on reboot.
	NonDurable bool
	// Size is the number of bytes of a full run.
	Size int64
	// BlockSize is the size of one write.
	BlockSize int
	// Limit is the p99 the verdict compared against.
	Limit time.Duration
	// Confidence is the confidence of the early-stop decision and of
	// P99Lower and P99Upper.
	Confidence float64
	// Started is when the first write was issued.
	Started time.Time

	// Samples is the number of fdatasyncs measured.
	Samples int
	// BytesWritten is the number of bytes written and synced.
	BytesWritten int64
	// Wall is the time from the first write to the end of the last fdatasync.
	Wall time.Duration
	// IOPS is Samples per second of Wall (each a write and an fdatasync).
	IOPS float64
	// Mean, P50, P90, P999 and Max summarise the fdatasync latencies as
	// measured; percentiles are nearest-rank.
	Mean, P50, P90, P999, Max time.Duration
	// RawP99 is the p99 as measured.
	RawP99 time.Duration
	// Margin is the factor RawP99 and its bounds were multiplied by (see
	// "Margin" in the package documentation); 1 is none.
	Margin float64
	// P99 is RawP99 times Margin: the figure the verdict compares with Limit
	// and the one every message and metric shows as the p99.
	P99 time.Duration
	// P99Lower and P99Upper bound the true p99, each with probability at
	// least Confidence (they use the stricter per-look level of the early
	// stop), times Margin. A zero P99Upper means too few samples for an upper
	// bound.
	P99Lower, P99Upper time.Duration

	// EarlyStop is set when the run ended before Size bytes were written.
	EarlyStop bool
	// StopReason says why the run ended.
	StopReason StopReason
	// Passed reports whether the p99 is shown to be at most Limit: whether
	// P99Upper is at most Limit. A disk that cannot be shown to be within the
	// limit fails, whatever its point estimate (see "Verdict").
	Passed bool
	// Inconclusive is set when the interval still contained Limit at the end
	// (or there were too few samples for an upper bound): the run failed
	// because it could not show the p99 within the limit, not because it
	// showed it above.
	Inconclusive bool
}

// summarize fills the statistics from the latencies, which it sorts.
func (r *Report) summarize(lat []time.Duration, wall time.Duration, alpha float64) {
	slices.Sort(lat)
	r.Samples = len(lat)
	r.BytesWritten = int64(len(lat)) * int64(r.BlockSize)
	r.Wall = wall
	if wall > 0 {
		r.IOPS = float64(len(lat)) / wall.Seconds()
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	if len(lat) > 0 {
		r.Mean = sum / time.Duration(len(lat))
		r.Max = lat[len(lat)-1]
	}
	r.P50, r.P90, r.RawP99, r.P999 = quantile(lat, 0.50), quantile(lat, 0.90), quantile(lat, 0.99), quantile(lat, 0.999)
	if r.Margin == 0 {
		r.Margin = 1
	}
	r.P99 = applyMargin(r.RawP99, r.Margin)
	iv := p99Interval(lat, alpha).withMargin(r.Margin)
	r.P99Lower, r.P99Upper = iv.Lower, iv.Upper
	switch {
	case len(lat) == 0:
		r.Passed, r.Inconclusive = false, true
	case iv.clearPass(r.Limit):
		r.Passed = true
	case iv.clearFail(r.Limit):
		r.Passed = false
	default:
		// The gate errs on the safe side: near the limit a second run, or
		// fio, may well read above it.
		r.Passed, r.Inconclusive = false, true
	}
	r.EarlyStop = r.BytesWritten < r.Size/int64(max(r.BlockSize, 1))*int64(r.BlockSize)
}

// closeCall reports whether the run failed only because it could not show
// the p99 within the limit: its point estimate is within.
func (r Report) closeCall() bool { return r.Inconclusive && r.P99 <= r.Limit }

// String is a multi-line human summary of the report.
func (r Report) String() string {
	verdict := fmt.Sprintf("PASS: p99 %s ≤ %s", FormatLatency(r.P99), FormatLatency(r.Limit))
	switch {
	case r.closeCall() && r.P99Upper == 0:
		verdict = fmt.Sprintf("FAIL: p99 %s, but too few samples to show it within %s", FormatLatency(r.P99), FormatLatency(r.Limit))
	case r.closeCall():
		verdict = fmt.Sprintf("FAIL: p99 %s is not clearly within %s (its upper bound %s is not): a disk this close to the limit is refused",
			FormatLatency(r.P99), FormatLatency(r.Limit), FormatLatency(r.P99Upper))
	case r.Inconclusive:
		verdict = fmt.Sprintf("FAIL: p99 %s > %s (inconclusive: the interval still contains the limit)", FormatLatency(r.P99), FormatLatency(r.Limit))
	case !r.Passed:
		verdict = fmt.Sprintf("FAIL: p99 %s > %s", FormatLatency(r.P99), FormatLatency(r.Limit))
	}
	ci := fmt.Sprintf("%s – %s (each ≥ %g%% confidence)", FormatLatency(r.P99Lower), FormatLatency(r.P99Upper), r.Confidence*100)
	if r.Margin > 1 {
		ci = fmt.Sprintf("%s – %s (× margin, each ≥ %g%% confidence)", FormatLatency(r.P99Lower), FormatLatency(r.P99Upper), r.Confidence*100)
	}
	if r.P99Upper == 0 {
		ci = fmt.Sprintf("%s – ? (too few samples for an upper bound)", FormatLatency(r.P99Lower))
	}
	p99 := fmt.Sprintf("p99 %s", FormatLatency(r.RawP99))
	margin := ""
	if r.Margin > 1 {
		p99 = fmt.Sprintf("p99 %s (raw)", FormatLatency(r.RawP99))
		margin = fmt.Sprintf("gate p99    %s = raw %s × %g margin (Fjord's measurement reads lower than fio's; see docs/benchmarks.md)\n",
			FormatLatency(r.P99), FormatLatency(r.RawP99), r.Margin)
	}
	s := fmt.Sprintf(
		"directory   %s (device %s, %s)\n"+
			"workload    %s in %d-byte writes, fdatasync after each\n"+
			"samples     %d (%s written in %s, %.0f IOPS), stopped: %s\n"+
			"fdatasync   p50 %s  p90 %s  %s  p99.9 %s  max %s  mean %s\n"+
			"%s"+
			"p99 bounds  %s\n"+
			"verdict     %s\n",
		r.Dir, r.Device, r.Filesystem,
		formatBytes(r.Size), r.BlockSize,
		r.Samples, formatBytes(r.BytesWritten), r.Wall.Round(time.Millisecond), r.IOPS, r.StopReason.describe(),
		FormatLatency(r.P50), FormatLatency(r.P90), p99, FormatLatency(r.P999), FormatLatency(r.Max), FormatLatency(r.Mean),
		margin,
		ci,
		verdict)
	if r.NonDurable {
		s += fmt.Sprintf("warning     %s is not durable: fdatasync is free there and data is lost on reboot\n", r.Filesystem)
	}
	return s
}

// FormatLatency prints a latency the way the gate's messages do: 0.1ms
// resolution from 1ms up (12.8ms), 1µs below (412µs).
func FormatLatency(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}

// millis is a duration that is a float number of milliseconds in JSON.
type millis time.Duration

func (m millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/1e6, 'f', -1, 64), nil
}

func (m *millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration in milliseconds: %w", err)
	}
	*m = millis(math.Round(f * 1e6))
	return nil
}

type reportJSON struct {
	Dir          string     `json:"dir"`
	Device       string     `json:"device"`
	Filesystem   string     `json:"filesystem"`
	NonDurable   bool       `json:"non_durable"`
	Size         int64      `json:"size_bytes"`
	BlockSize    int        `json:"block_size_bytes"`
	Limit        millis     `json:"p99_max_ms"`
	Confidence   float64    `json:"confidence"`
	Started      time.Time  `json:"started"`
	Samples      int        `json:"samples"`
	BytesWritten int64      `json:"bytes_written"`
	Wall         millis     `json:"wall_ms"`
	IOPS         float64    `json:"iops"`
	Mean         millis     `json:"mean_ms"`
	P50          millis     `json:"p50_ms"`
	P90          millis     `json:"p90_ms"`
	P99          millis     `json:"p99_ms"`
	RawP99       millis     `json:"raw_p99_ms"`
	Margin       float64    `json:"margin"`
	P999         millis     `json:"p99_9_ms"`
	Max          millis     `json:"max_ms"`
	P99Lower     millis     `json:"p99_lower_ms"`
	P99Upper     millis     `json:"p99_upper_ms"`
	EarlyStop    bool       `json:"early_stop"`
	StopReason   StopReason `json:"stop_reason"`
	Passed       bool       `json:"passed"`
	Inconclusive bool       `json:"inconclusive"`
}

// MarshalJSON writes durations as float milliseconds (fields ending in _ms).
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(reportJSON{
		Dir: r.Dir, Device: r.Device, Filesystem: r.Filesystem, NonDurable: r.NonDurable,
		Size: r.Size, BlockSize: r.BlockSize, Limit: millis(r.Limit), Confidence: r.Confidence,
		Started: r.Started, Samples: r.Samples, BytesWritten: r.BytesWritten, Wall: millis(r.Wall),
		IOPS: math.Round(r.IOPS*10) / 10, Mean: millis(r.Mean), P50: millis(r.P50), P90: millis(r.P90),
		P99: millis(r.P99), RawP99: millis(r.RawP99), Margin: r.Margin, P999: millis(r.P999), Max: millis(r.Max),
		P99Lower: millis(r.P99Lower), P99Upper: millis(r.P99Upper),
		EarlyStop: r.EarlyStop, StopReason: r.StopReason, Passed: r.Passed, Inconclusive: r.Inconclusive,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var j reportJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Report{
		Dir: j.Dir, Device: j.Device, Filesystem: j.Filesystem, NonDurable: j.NonDurable,
		Size: j.Size, BlockSize: j.BlockSize, Limit: time.Duration(j.Limit), Confidence: j.Confidence,
		Started: j.Started, Samples: j.Samples, BytesWritten: j.BytesWritten, Wall: time.Duration(j.Wall),
		IOPS: j.IOPS, Mean: time.Duration(j.Mean), P50: time.Duration(j.P50), P90: time.Duration(j.P90),
		P99: time.Duration(j.P99), RawP99: time.Duration(j.RawP99), Margin: j.Margin, P999: time.Duration(j.P999), Max: time.Duration(j.Max),
		P99Lower: time.Duration(j.P99Lower), P99Upper: time.Duration(j.P99Upper),
		EarlyStop: j.EarlyStop, StopReason: j.StopReason, Passed: j.Passed, Inconclusive: j.Inconclusive,
	}
	return nil
}
