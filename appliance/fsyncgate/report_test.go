package fsyncgate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReportJSON(t *testing.T) {
	rep := Report{
		Dir: "/var/lib/fjord/db", Device: "253:0", Filesystem: "ext4", Size: 22 << 20, BlockSize: 2300,
		Limit: 10 * time.Millisecond, Confidence: 0.99, Started: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Samples: 1000, BytesWritten: 2300000, Wall: 1234567890, IOPS: 810.0,
		Mean: 1100001, P50: 1000001, P90: 2000002, RawP99: 3585615, Margin: 1.15, P99: 4123457, P999: 9000009, Max: 12345678,
		P99Lower: 3000003, P99Upper: 5000005, EarlyStop: true, StopReason: StopDecided, Passed: true,
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("durations are float milliseconds", func(t *testing.T) {
		for _, want := range []string{`"p99_ms":4.123457`, `"raw_p99_ms":3.585615`, `"margin":1.15`, `"p99_max_ms":10`, `"wall_ms":1234.56789`, `"stop_reason":"decided"`, `"device":"253:0"`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("JSON %s does not contain %s", b, want)
			}
		}
	})
	t.Run("round-trips to the nanosecond", func(t *testing.T) {
		var got Report
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != rep {
			t.Errorf("round trip\n%+v\nwant\n%+v", got, rep)
		}
	})
}

func TestFormatLatency(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "milliseconds keep one decimal", d: 12840 * time.Microsecond, want: "12.8ms"},
		{name: "a round limit has none", d: 10 * time.Millisecond, want: "10ms"},
		{name: "below a millisecond microseconds show", d: 412345 * time.Nanosecond, want: "412µs"},
		{name: "nanoseconds stay", d: 900, want: "900ns"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatLatency(tt.d); got != tt.want {
				t.Errorf("FormatLatency(%d) = %q; want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestReportString(t *testing.T) {
	rep := Report{Dir: "/d", Device: "8:1", Filesystem: "tmpfs", NonDurable: true, Size: 22 << 20, BlockSize: 2300,
		Limit: 10 * time.Millisecond, Confidence: 0.99, Samples: 28, P99: time.Millisecond, Inconclusive: true}
	s := rep.String()
	for _, want := range []string{"/d (device 8:1, tmpfs)", "FAIL: p99 1ms, but too few samples to show it within 10ms", "too few samples for an upper bound", "not durable"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() does not contain %q:\n%s", want, s)
		}
	}
}
