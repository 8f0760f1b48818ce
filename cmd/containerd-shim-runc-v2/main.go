// Command containerd-shim-runc-v2 is containerd's runc shim, built from
// containerd's own packages at the version fjord's containerd runs, so that
// `make build` can embed it in fjord (appliance/node/shim). With
// FJORD_SHIM_GROUP_DIR set it runs every container of a namespace in one
// shim process rather than one per pod (group.go).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/fjord-dev/fjord/appliance/pageout"
)

func main() {
	// GOGC 50, as for fjord and containerd, set here rather than inherited
	// through the environment, which the shim passes on to every runc it
	// runs (short-lived programs that only pay for more collections).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// containerd starts the shim with GOMAXPROCS=4 to cap it on large
	// machines; on a smaller one that is more threads than cores, and runc
	// inherits it. The shim keeps at most one P per core, and runc gets
	// Go's own default.
	if n := runtime.NumCPU(); runtime.GOMAXPROCS(0) > n {
		runtime.GOMAXPROCS(n)
	}
	os.Unsetenv("GOMAXPROCS")
	// The shim that serves the node's pods runs for as long as they do; once
	// it is quiet after starting or stopping containers, what it no longer
	// runs is handed back (package pageout). Its start and delete actions
	// exit long before.
	go pageout.WhenQuiet(context.Background(), quiet, pageout.ToStderr("shim"))
	m := manager.NewShimManager("io.containerd.runc.v2")
	var opts []shim.BinaryOpts
	if dir := os.Getenv(GroupDirEnv); dir != "" {
		// The start action passes the variable on to the shim it starts,
		// which is the group's when it runs in a directory of dir.
		m = grouped{Shim: m, dir: dir}
		if cwd, _ := os.Getwd(); filepath.Dir(cwd) == filepath.Clean(dir) {
			os.Unsetenv(GroupDirEnv)
			if err := logToGroupDir(); err != nil {
				fmt.Fprintln(os.Stderr, "shim log:", err)
				os.Exit(1)
			}
			opts = append(opts, func(c *shim.Config) { c.NoSetupLogger = true })
		}
	}
	shim.RunShim(context.Background(), m, opts...)
}

// quiet is when the shim counts as quiet after work: 0.3 CPU-s above 12 %
// of a core, then half a minute under it. Serving 20 idle pods it uses
// 4.4 % of a core (the kubelet's container stats).
var quiet = pageout.Quiet{Work: 300 * time.Millisecond, Window: 30 * time.Second, Share: 0.12, Every: 5 * time.Second}
