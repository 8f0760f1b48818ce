// Command fjord-containerd is containerd 2 with its built-in plugins (CRI,
// overlayfs, runc), at the version Fjord's client speaks. `make build`
// embeds it in fjord (appliance/node/nodebin), which extracts and supervises
// it: a program of its own because the fjord binary, re-executed, would
// initialise all of Kubernetes in containerd's process for nothing
// (containerd's PSS 179 MiB that way, 86 MiB so; docs/benchmarks.md).
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"

	"github.com/fjord-dev/fjord/appliance/pageout"
)

func main() {
	// GOGC 50, as for fjord itself, keeps less garbage resident. Set here
	// rather than in the environment, which containerd passes on to every
	// CNI plugin it runs (short-lived programs that only pay for more
	// collections); GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// Starting registers and initialises every built-in plugin, and a burst
	// of pod starts runs much of the CRI: once containerd is quiet again,
	// what it no longer runs is handed back (package pageout).
	go pageout.WhenQuiet(context.Background(), quiet, pageout.ToStderr("containerd"))
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}

// quiet is when containerd counts as quiet after work: 0.3 CPU-s above
// 12 % of a core, then half a minute under it. With 20 pods idle it uses
// 5 % of a core (the kubelet's stats).
var quiet = pageout.Quiet{Work: 300 * time.Millisecond, Window: 30 * time.Second, Share: 0.12, Every: 5 * time.Second}
