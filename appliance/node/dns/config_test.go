package dns

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		wants []string // substrings of the error; none means valid
	}{
		{name: "accepts the defaults", edit: func(*Config) {}},
		{name: "accepts an IPv6 cluster DNS", edit: func(c *Config) { c.ClusterDNS = "fd00:43::a" }},
		{name: "accepts port 53", edit: func(c *Config) { c.ClusterDNSPort = 53 }},
		{name: "rejects a cluster DNS that is not an IP", edit: func(c *Config) { c.ClusterDNS = "kube-dns" },
			wants: []string{`cluster-dns: "kube-dns" is not an IP address`}},
		{name: "rejects an empty cluster DNS", edit: func(c *Config) { c.ClusterDNS = "" },
			wants: []string{`cluster-dns: "" is not an IP address`}},
		{name: "rejects port 0", edit: func(c *Config) { c.ClusterDNSPort = 0 },
			wants: []string{"cluster-dns-port: 0 is not a port"}},
		{name: "rejects a port above 65535", edit: func(c *Config) { c.ClusterDNSPort = 70000 },
			wants: []string{"cluster-dns-port: 70000 is not a port"}},
		{name: "still validates when DNS is disabled", edit: func(c *Config) { c.DisableDNS = true; c.ClusterDNS = "x" },
			wants: []string{"cluster-dns:"}},
		{name: "reports every problem at once", edit: func(c *Config) { c.ClusterDNS = "10.43.0"; c.ClusterDNSPort = -1 },
			wants: []string{"cluster-dns:", "cluster-dns-port:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tc.wants)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.ClusterDNS != "10.43.0.10" || c.ClusterDNSPort != 10053 || c.DisableDNS {
		t.Errorf("Default() = %+v", c)
	}
}
