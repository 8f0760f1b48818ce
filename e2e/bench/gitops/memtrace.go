package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

// memTrace reads a server's MemStats (expvar's /debug/vars on its debug
// listener) and its RSS every 2 s until stop is closed, and writes them to
// file as a table (t in seconds since from): where the Go heap stands
// through the minute after a sync (live objects, free slots in spans in
// use, free spans not yet handed back, the collector's goal), for A and B
// side by side.
func memTrace(addr string, pid int, from time.Time, stop <-chan struct{}, file string) error {
	var b strings.Builder
	b.WriteString("t\tRSS\tRssAnon\tHeapAlloc\tHeapInuse-HeapAlloc\tHeapIdle-HeapReleased\tNextGC\tStackInuse\tNumGC\n")
	mib := func(v uint64) string { return fmt.Sprintf("%.0f", float64(v)/(1<<20)) }
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return os.WriteFile(file, []byte(b.String()), 0o644)
		case <-tick.C:
		}
		resp, err := http.Get("http://" + addr + "/debug/vars")
		if err != nil {
			return err
		}
		var v struct{ Memstats runtime.MemStats }
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			return err
		}
		m := v.Memstats
		rss, _ := benchutil.MemMiB(pid)
		fmt.Fprintf(&b, "%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\n", time.Since(from).Seconds(), rss, benchutil.AnonMiB(pid),
			mib(m.HeapAlloc), mib(m.HeapInuse-m.HeapAlloc), mib(m.HeapIdle-m.HeapReleased), mib(m.NextGC), mib(m.StackInuse), m.NumGC)
	}
}
