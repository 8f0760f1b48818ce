package fsyncgate

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     int64
		err      string
	}{
		{name: "MiB is binary", in: "22MiB", want: 23068672},
		{name: "fio's m is MiB", in: "22m", want: 23068672},
		{name: "a plain number is bytes", in: "23068672", want: 23068672},
		{name: "units ignore case and spaces", in: " 64 kb ", want: 65536},
		{name: "GiB is binary", in: "1GiB", want: 1 << 30},
		{name: "an unknown unit is refused", in: "12x", err: `unknown unit "x"`},
		{name: "a fraction is refused", in: "1.5MiB", err: "unknown unit"},
		{name: "zero is refused", in: "0", err: "must be positive"},
		{name: "no number is refused", in: "MiB", err: "is not a size"},
		{name: "an overflow is refused", in: "9000000000000GiB", err: "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}
