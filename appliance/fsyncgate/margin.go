package fsyncgate

import (
	"fmt"
	"math"
	"time"
)

// DefaultMargin is the factor the measured p99 is multiplied by before the
// verdict: the residual difference between Fjord's measurement and fio's,
// measured with e2e/bench/fsync (see "Margin" in the package documentation
// and docs/benchmarks.md).
const DefaultMargin = 1.0

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

// p99Text is the report's p99 for a message: "9.3ms", or "9.3ms (raw 8.5ms
// × 1.1)" when a margin applies.
func (r Report) p99Text() string {
	if r.Margin > 1 {
		return fmt.Sprintf("%s (raw %s × %g)", FormatLatency(r.P99), FormatLatency(r.RawP99), r.Margin)
	}
	return FormatLatency(r.P99)
}
