package metrics

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "accepts the defaults", mutate: func(*Config) {}},
		{name: "accepts a disabled server", mutate: func(c *Config) { c.DisableMetricsServer = true }},
		{name: "accepts the highest port", mutate: func(c *Config) { c.MetricsServerPort = 65535 }},
		{name: "rejects port 0", mutate: func(c *Config) { c.MetricsServerPort = 0 }, want: []string{"metrics-server-port: 0 is not a port"}},
		{name: "rejects a negative port", mutate: func(c *Config) { c.MetricsServerPort = -1 }, want: []string{"metrics-server-port: -1"}},
		{name: "rejects a port above 65535", mutate: func(c *Config) { c.MetricsServerPort = 65536 }, want: []string{"metrics-server-port: 65536"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.DisableMetricsServer {
		t.Error("the metrics server is off by default, want on")
	}
	if c.MetricsServerPort != DefaultPort {
		t.Errorf("MetricsServerPort = %d, want %d", c.MetricsServerPort, DefaultPort)
	}
}
