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

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	// GOGC 50, as for fjord itself, keeps less garbage resident. Set here
	// rather than in the environment, which containerd passes on to every
	// CNI plugin it runs (short-lived programs that only pay for more
	// collections); GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
