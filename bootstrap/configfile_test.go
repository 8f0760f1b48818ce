package bootstrap

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigFile(t *testing.T) {
	values := map[string]string{
		"data-dir":                   "/var/lib/fjord",
		"https-listen-port":          "6443",
		"disable-agent":              "true",
		"fsync-p99-max":              "10ms",
		"gitops.prune-protect-ratio": "0.5",
		"node-name":                  "True",   // YAML would read a plain True as a boolean
		"gitops.webhook-secret":      "0123e4", // … and this as a number
		"datastore-endpoint":         "postgres://u@db:5432/fjord?sslmode=verify-full",
		"cluster-cidr":               "10.42.0.0/16,fd00::/56",
		"node-ip":                    "",
		"log-level":                  "# not a comment",
		"bind-address":               "a: b",
		"runc":                       "0x10",
	}
	out, err := ConfigFile("fjord.dev/v1alpha1", "written by a test", values)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every value reads back as the text given, as the server's loader reads it", func(t *testing.T) {
		var doc map[string]any
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for k, want := range values {
			v, ok := doc[k]
			if !ok {
				t.Errorf("%s is missing", k)
				continue
			}
			got := fmt.Sprint(v)
			if v == nil {
				got = ""
			}
			if got != want {
				t.Errorf("%s reads back as %q, want %q", k, got, want)
			}
		}
		if doc["version"] != "fjord.dev/v1alpha1" {
			t.Errorf("version %v", doc["version"])
		}
	})
	t.Run("plain values stay plain, keys are flat and sorted", func(t *testing.T) {
		for _, line := range []string{"# written by a test\n", "https-listen-port: 6443\n", "disable-agent: true\n", "fsync-p99-max: 10ms\n", `node-name: "True"` + "\n"} {
			if !strings.Contains(string(out), line) {
				t.Errorf("no %q in\n%s", line, out)
			}
		}
		if strings.Index(string(out), "bind-address") > strings.Index(string(out), "cluster-cidr") {
			t.Errorf("keys not sorted:\n%s", out)
		}
	})
	t.Run("version is not a key to set", func(t *testing.T) {
		if _, err := ConfigFile("v", "", map[string]string{"version": "x"}); err == nil {
			t.Fatal("no error")
		}
	})
}
