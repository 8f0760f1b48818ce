package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// parsed is what a command's Action saw.
type parsed struct {
	command string
	flags   map[string]string
	args    []string
}

// captureApp is the real command line with every Action replaced by one
// that records what urfave/cli parsed.
func captureApp(got *parsed, flags ...string) *cli.App {
	app := newApp()
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			walk(name, c.Subcommands)
			if c.Action == nil {
				continue
			}
			c.Action = func(ctx *cli.Context) error {
				got.command, got.flags, got.args = name, map[string]string{}, ctx.Args().Slice()
				for _, f := range flags {
					if ctx.IsSet(f) {
						got.flags[f] = ctx.String(f)
					}
				}
				return nil
			}
		}
	}
	walk("", app.Commands)
	return app
}

func TestFlagsAfterArguments(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	for _, tc := range []struct {
		name    string
		args    []string
		command string
		flags   map[string]string
		rest    []string
	}{
		{"sync takes --kubeconfig after the Application", []string{"sync", "APP", "--kubeconfig", "F"}, "sync", map[string]string{"kubeconfig": "F"}, []string{"APP"}},
		{"sync takes flags on both sides", []string{"sync", "--timeout=1m", "APP", "--kubeconfig=F"}, "sync", map[string]string{"kubeconfig": "F", "timeout": "1m0s"}, []string{"APP"}},
		{"diff takes --kubeconfig after the Application", []string{"diff", "APP", "--kubeconfig", "F"}, "diff", map[string]string{"kubeconfig": "F"}, []string{"APP"}},
		{"status takes -o after nothing else", []string{"status", "-o", "json", "--kubeconfig", "F"}, "status", map[string]string{"kubeconfig": "F", "output": "json"}, nil},
		{"seal takes flags in any order", []string{"seal", "--kubeconfig", "F", "--raw", "-n", "ns"}, "seal", map[string]string{"kubeconfig": "F", "raw": "true", "namespace": "ns"}, nil},
		{"verify takes --junit after the directory", []string{"verify", "DIR", "--junit", "F"}, "verify", map[string]string{"junit": "F"}, []string{"DIR"}},
		{"a subcommand takes flags after its argument", []string{"sealing-keys", "export", "FILE", "--kubeconfig", "F"}, "sealing-keys export", map[string]string{"kubeconfig": "F"}, []string{"FILE"}},
		{"a subcommand keeps several arguments in order", []string{"images", "import", "A", "--data-dir", "D", "B"}, "images import", map[string]string{"data-dir": "D"}, []string{"A", "B"}},
		{"a bool flag takes no value", []string{"up", "NAME", "--with-node", "--wait", "1m"}, "up", map[string]string{"with-node": "true", "wait": "1m0s"}, []string{"NAME"}},
		{"-- ends the flags", []string{"sync", "APP", "--kubeconfig", "F", "--", "--timeout"}, "sync", map[string]string{"kubeconfig": "F"}, []string{"APP", "--timeout"}},
		{"an unknown flag stays an argument", []string{"images", "build", "--name", "n", "-o", "f", "sh", "-c", "echo"}, "images build", map[string]string{"name": "n", "output": "f"}, []string{"sh", "-c", "echo"}},
		{"kubectl's arguments are its own", []string{"kubectl", "get", "pods", "--kubeconfig", "F"}, "kubectl", map[string]string{}, []string{"get", "pods", "--kubeconfig", "F"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got parsed
			names := []string{"kubeconfig", "timeout", "output", "raw", "namespace", "junit", "data-dir", "with-node", "wait", "name"}
			app := captureApp(&got, names...)
			args := append([]string{"fjord"}, tc.args...)
			if err := app.Run(interspersed(app, args)); err != nil {
				t.Fatalf("%v: %v", tc.args, err)
			}
			if got.command != tc.command {
				t.Fatalf("ran %q, want %q", got.command, tc.command)
			}
			for k, v := range tc.flags {
				if got.flags[k] != v {
					t.Errorf("--%s = %q, want %q (all: %v)", k, got.flags[k], v, got.flags)
				}
			}
			if len(got.args) != len(tc.rest) || (len(tc.rest) > 0 && !slices.Equal(got.args, tc.rest)) {
				t.Errorf("arguments %q, want %q", got.args, tc.rest)
			}
		})
	}
}

func TestInterspersedLeavesOrderedArgumentsAlone(t *testing.T) {
	app := newApp()
	for _, args := range [][]string{
		{"fjord"},
		{"fjord", "--help"},
		{"fjord", "sync", "--kubeconfig", "F", "APP"},
		{"fjord", "no-such-command", "x", "--y"},
	} {
		if got := interspersed(app, args); !slices.Equal(got, args) {
			t.Errorf("interspersed(%q) = %q, want it unchanged", args, got)
		}
	}
}
