package pageout

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// Quiet says when a process has worked and is quiet again.
type Quiet struct {
	// Work is the CPU time the process must have used since the last trim
	// (or its start), above the quiet share, for another trim to be worth
	// its cost: a process idling at its usual rate never gets there.
	Work time.Duration
	// Window is how long the process must have been quiet.
	Window time.Duration
	// Share is the most CPU, as a share of one core over Window, that
	// still counts as quiet.
	Share float64
	// Every is how often the process's CPU time is read.
	Every time.Duration
}

// trim hands back what the process holds and no longer uses: the Go heap's
// free pages (debug.FreeOSMemory, a full collection) and its binary's
// pages (Executable). It returns what Executable advised.
func trim() (int64, error) {
	debug.FreeOSMemory()
	return Executable()
}

// WhenQuiet runs trim each time the process, having used q.Work of CPU
// since the last trim (or since WhenQuiet began), has then been quiet for
// q.Window, until ctx ends, and passes each outcome to report. A process
// that stays busy, or idles without having worked, is left alone.
func WhenQuiet(ctx context.Context, q Quiet, report func(advised int64, err error)) {
	t := time.NewTicker(q.Every)
	defer t.Stop()
	n := max(int(q.Window/q.Every), 1)
	idle := time.Duration(q.Share * float64(q.Every)) // the quiet CPU of one tick
	seen := make([]time.Duration, 0, n+1)             // CPU time at the last n+1 ticks
	prev := cpuTime()
	var work time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := cpuTime()
		work += max(now-prev-idle, 0)
		prev = now
		if seen = append(seen, now); len(seen) > n+1 {
			seen = seen[1:]
		}
		if work < q.Work || len(seen) <= n {
			continue
		}
		if used := now - seen[0]; float64(used) > q.Share*float64(q.Window) {
			continue
		}
		report(trim())
		// What the trim itself used is not work.
		prev, seen, work = cpuTime(), seen[:0], 0
	}
}

// cpuTime is the CPU time the process has used, user and system, by all
// its threads (not its children's).
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ToStderr is a report for WhenQuiet in a process without a logger
// (containerd, the shim): a failed trim is one line on standard error,
// prefixed with who, which the supervisor's log keeps.
func ToStderr(who string) func(int64, error) {
	return func(_ int64, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: releasing memory after work: %v\n", who, err)
		}
	}
}
