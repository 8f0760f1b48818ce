package fsyncgate

import (
	"fmt"
	"math"
	"time"
)

// DefaultMargin is the factor the measured p99 is multiplied by before the
// verdict: the residual difference between Fjord's measurement and fio's.
// Over 18 calibration runs of e2e/bench/fsync the median ratio of Fjord's p99
// to fio's was 0.94, and 0.89 with a CPU-heavy process beside them; 1/0.89 is
// 1.12, rounded up (see "Margin" in the package documentation and
// docs/benchmarks.md).
const DefaultMargin = 1.15

// applyMargin returns d times margin, rounded to the nanosecond.
func applyMargin(d time.Duration, margin float64) time.Duration {
	if d == 0 || margin == 1 {
		return d
	}
	return time.Duration(math.Round(float64(d) * margin))
}

// withMargin returns the interval with both bounds times margin; a missing
// bound stays missing.
func (iv interval) withMargin(margin float64) interval {
	return interval{Lower: applyMargin(iv.Lower, margin), Upper: applyMargin(iv.Upper, margin)}
}

// CorrectionString says how the report's p99 was derived from the
// measurement, for people: "none" or "p99 × 1.25 (raw 8.0ms)".
func (r Report) CorrectionString() string {
	if r.Margin == 0 || r.Margin == 1 {
		return "none (the p99 is as measured)"
	}
	return fmt.Sprintf("p99 × %g margin (raw %s → %s)", r.Margin, FormatLatency(r.RawP99), FormatLatency(r.P99))
}

// Problem says why a failed report failed, for an error message: "p99
// fdatasync 13ms (raw 11.3ms × 1.15) exceeds the 10ms limit", or, when the
// point estimate is within the limit but its upper bound is not, "… is not
// clearly within the 10ms limit (its upper bound is 10.4ms)".
func (r Report) Problem() string {
	if r.closeCall() {
		return fmt.Sprintf("p99 fdatasync %s is not clearly within the %s limit (its upper bound is %s)",
			r.p99Text(), FormatLatency(r.Limit), FormatLatency(r.P99Upper))
	}
	return fmt.Sprintf("p99 fdatasync %s exceeds the %s limit", r.p99Text(), FormatLatency(r.Limit))
}

// p99Text is the report's p99 for a message: "9.3ms", or "9.3ms (raw 8.5ms
// × 1.1)" when a margin applies.
func (r Report) p99Text() string {
	if r.Margin > 1 {
		return fmt.Sprintf("%s (raw %s × %g)", FormatLatency(r.P99), FormatLatency(r.RawP99), r.Margin)
	}
	return FormatLatency(r.P99)
}
