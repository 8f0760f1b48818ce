package fsyncgate

import (
	"strings"
	"testing"
	"time"
)

func TestApplyMargin(t *testing.T) {
	for _, tt := range []struct {
		name   string
		d      time.Duration
		margin float64
		want   time.Duration
	}{
		{name: "a margin of one changes nothing", d: 8123456, margin: 1, want: 8123456},
		{name: "the product is rounded to the nanosecond", d: 8000001, margin: 1.15, want: 9200001},
		{name: "zero stays zero, so a missing bound stays missing", d: 0, margin: 1.15, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := applyMargin(tt.d, tt.margin); got != tt.want {
				t.Errorf("applyMargin(%d, %g) = %d; want %d", tt.d, tt.margin, got, tt.want)
			}
		})
	}
	t.Run("an interval keeps a missing upper bound missing", func(t *testing.T) {
		iv := interval{Lower: 2 * time.Millisecond}.withMargin(1.5)
		if iv.Lower != 3*time.Millisecond || iv.Upper != 0 {
			t.Errorf("interval %+v; want [3ms, none]", iv)
		}
	})
}

func TestMarginDecides(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		margin float64
		script func(int) time.Duration
		passed bool
		stop   StopReason
	}{
		{name: "9ms passes a 10ms limit without a margin", margin: 1, script: constant(9 * ms), passed: true, stop: StopDecided},
		{name: "9ms fails it once the default margin makes it 10.35ms", margin: DefaultMargin, script: constant(9 * ms), passed: false, stop: StopDecided},
		{name: "8.5ms passes with the default margin (9.8ms)", margin: DefaultMargin, script: constant(8500 * time.Microsecond), passed: true, stop: StopDecided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := fakeMeasurer(newFakeClock(), &scriptedDisk{latency: tt.script}, ext4).
				measure(t.Context(), t.TempDir(), MeasureOptions{Limit: 10 * ms, EarlyStop: true, Margin: tt.margin})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Passed != tt.passed || rep.StopReason != tt.stop || rep.Margin != tt.margin {
				t.Errorf("passed %v, stop %s, margin %g; want %v, %s, %g", rep.Passed, rep.StopReason, rep.Margin, tt.passed, tt.stop, tt.margin)
			}
			// Every sample is the same: the bounds are that value times the margin.
			want := applyMargin(tt.script(0), tt.margin)
			if rep.P99 != want || rep.P99Lower != want || (rep.P99Upper != 0 && rep.P99Upper != want) {
				t.Errorf("p99 %s in [%s, %s] (raw %s); want %s", rep.P99, rep.P99Lower, rep.P99Upper, rep.RawP99, want)
			}
		})
	}
	t.Run("a margin below one is refused", func(t *testing.T) {
		if _, err := (MeasureOptions{Margin: 0.8}).withDefaults(); err == nil || !strings.Contains(err.Error(), "margin") {
			t.Errorf("error %v; want one about the margin", err)
		}
	})
}

func TestReportShowsRawAndCorrected(t *testing.T) {
	rep := Report{Limit: 10 * time.Millisecond, Confidence: 0.99, RawP99: 8 * time.Millisecond, Margin: 1.15, P99: 9200 * time.Microsecond,
		P99Upper: 9800 * time.Microsecond, Passed: true}
	s := rep.String()
	for _, want := range []string{"p99 8ms (raw)", "gate p99    9.2ms = raw 8ms × 1.15 margin", "PASS: p99 9.2ms ≤ 10ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if got := rep.CorrectionString(); got != "p99 × 1.15 margin (raw 8ms → 9.2ms)" {
		t.Errorf("CorrectionString() = %q", got)
	}
}
