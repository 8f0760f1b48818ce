package fsyncgate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.Mode != ModeEnforce || c.P99Max != 10*time.Millisecond || c.CacheTTL != 24*time.Hour || c.Rerun ||
		c.Size != 22<<20 || c.BlockSize != 2300 || c.MaxDuration != 30*time.Second || c.FullRun {
		t.Errorf("Default() = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default() is invalid: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // every one must appear; nil means valid
	}{
		{name: "warn is a mode", edit: func(c *Config) { c.Mode = ModeWarn }},
		{name: "off is a mode", edit: func(c *Config) { c.Mode = ModeOff }},
		{name: "a zero cache ttl disables the cache", edit: func(c *Config) { c.CacheTTL = 0 }},
		{name: "an unknown mode is named", edit: func(c *Config) { c.Mode = "strict" },
			want: []string{`fsync-gate: "strict" is not one of enforce, warn, off`}},
		{name: "an empty mode is refused", edit: func(c *Config) { c.Mode = "" },
			want: []string{`fsync-gate: "" is not one of`}},
		{name: "a zero limit is refused", edit: func(c *Config) { c.P99Max = 0 },
			want: []string{"fsync-p99-max: 0s must be positive"}},
		{name: "a negative cache ttl is refused", edit: func(c *Config) { c.CacheTTL = -time.Hour },
			want: []string{"fsync-gate-cache-ttl: -1h0m0s must not be negative"}},
		{name: "a zero time cap is refused", edit: func(c *Config) { c.MaxDuration = 0 },
			want: []string{"fsync-gate-max-duration: 0s must be positive"}},
		{name: "a size too small for a p99 is refused", edit: func(c *Config) { c.Size = 64 << 10 },
			want: []string{"fsync-gate-size: 65536 bytes in 2300-byte blocks is 28 fdatasyncs, fewer than the 300 a p99 needs"}},
		{name: "a zero block size is refused", edit: func(c *Config) { c.BlockSize = 0 },
			want: []string{"fsync-gate-block-size: 0 bytes must be positive"}},
		{
			name: "every problem is reported at once",
			edit: func(c *Config) { *c = Config{Mode: "x", P99Max: -1, CacheTTL: -1, Size: -1, BlockSize: -1} },
			want: []string{"fsync-gate:", "fsync-p99-max:", "fsync-gate-cache-ttl:", "fsync-gate-max-duration:", "fsync-gate-size:", "fsync-gate-block-size:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tt.want) {
				t.Errorf("Validate() gave %d problems; want %d:\n%v", lines, len(tt.want), err)
			}
			var joined interface{ Unwrap() []error }
			if len(tt.want) > 1 && !errors.As(err, &joined) {
				t.Errorf("Validate() is not an errors.Join of the problems")
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     Mode
		ok       bool
	}{
		{name: "enforce parses", in: "enforce", want: ModeEnforce, ok: true},
		{name: "warn parses", in: "warn", want: ModeWarn, ok: true},
		{name: "off parses", in: "off", want: ModeOff, ok: true},
		{name: "case matters", in: "Enforce"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMode(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}
