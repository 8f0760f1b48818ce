package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

// profile starts server A with its pprof listener and writes, into dir:
// idle.heap.pprof (the heap before the Application is created),
// first-sync.cpu.pprof (CPU while the Application's first sync runs),
// first-sync.heap.pprof (in-use heap right after it), after.memstats.tsv
// (MemStats and RSS every 2 s from the sync until 75 s after it),
// noop.cpu.pprof (CPU while no-op syncs are requested one after the other)
// and noop.heap.pprof.
// The profiles are of the whole server: filter on appliance/gitops to see
// the engine's share.
func (b *bench) profile(dir string, seconds int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "fjord-gitops-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	debug := fmt.Sprintf("127.0.0.1:%d", benchutil.FreePort())
	a, err := startServer(b.bin, true, "--gitops.poll-interval", "10m", "--debug-listen", debug)
	if err != nil {
		return err
	}
	defer a.stop()
	repo := &gitRepo{dir: filepath.Join(work, "repo")}
	if err := repo.init(b.n); err != nil {
		return err
	}
	fetch := func(path, file string) error { return fetchDebug(debug, path, filepath.Join(dir, file)) }
	cpu := func(file string) chan error {
		done := make(chan error, 1)
		go func() { done <- fetch("/debug/pprof/profile?seconds="+strconv.Itoa(seconds), file) }()
		time.Sleep(200 * time.Millisecond) // the profile has started
		return done
	}

	head := repo.head()
	// The heap just before: -diff_base idle.heap.pprof with
	// -sample_index=alloc_space says what the first sync allocated.
	if err := fetch("/debug/pprof/heap", "idle.heap.pprof"); err != nil {
		return err
	}
	stopTrace, traced := make(chan struct{}), make(chan error, 1)
	go func() {
		traced <- memTrace(debug, a.cmd.Process.Pid, time.Now(), stopTrace, filepath.Join(dir, "after.memstats.tsv"))
	}()
	prof := cpu("first-sync.cpu.pprof")
	t0, err := a.firstSync(repo.url(), head, b.n)
	if err != nil {
		return err
	}
	synced := time.Now()
	step("first sync of %d objects: %.2fs", b.n, synced.Sub(t0).Seconds())
	if err := fetch("/debug/pprof/heap", "first-sync.heap.pprof"); err != nil {
		return err
	}
	if err := <-prof; err != nil {
		return err
	}
	// What the server holds 60 s after the first sync (the RSS the
	// engine adds is read then): the heap profile with the runtime's
	// MemStats (debug=1), and the RSS.
	rss60, anon60 := memAround(a.cmd.Process.Pid, synced.Add(60*time.Second))
	close(stopTrace)
	if err := <-traced; err != nil {
		return err
	}
	// The smaps first: serving a heap profile reads the binary's symbol
	// tables, which fault in file pages the server itself was not using.
	if err := copySmaps(a.cmd.Process.Pid, filepath.Join(dir, "after60.smaps")); err != nil {
		return err
	}
	if err := fetch("/debug/pprof/heap?debug=1", "after60.heap.txt"); err != nil {
		return err
	}
	if err := fetch("/debug/pprof/heap", "after60.heap.pprof"); err != nil {
		return err
	}
	step("60 s after the first sync (median of 45–75 s): RSS %.0f MiB, RssAnon %.0f MiB", rss60, anon60)
	prof = cpu("noop.cpu.pprof")
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		d, stored, err := a.operateSplit()
		if err != nil {
			return err
		}
		step("no-op %d: %.3fs (request stored after %.3fs)", i+1, d, stored)
	}
	if err := <-prof; err != nil {
		return err
	}
	if err := fetch("/debug/pprof/heap", "noop.heap.pprof"); err != nil {
		return err
	}
	rss, hwm := benchutil.MemMiB(a.cmd.Process.Pid)
	step("server RSS %.0f MiB, peak %.0f MiB; profiles in %s", rss, hwm, dir)
	a.stop()
	return b.profileBaseline(dir, filepath.Join(work, "kubectl.yaml"))
}

// profileBaseline starts server B as the bench does (--gitops.disable),
// applies the same N objects (as the bench does) and, 60 s later, writes
// baseline-after60.heap.txt and .pprof: the heap A's after60 profile is
// compared with for the memory the engine adds.
func (b *bench) profileBaseline(dir, file string) error {
	if err := os.WriteFile(file, []byte(namespaceDoc(gitopsNS)+"---\n"+allDocs(b.n, gitopsNS)), 0o644); err != nil {
		return err
	}
	debug := fmt.Sprintf("127.0.0.1:%d", benchutil.FreePort())
	s, err := startServer(b.bin, false, "--gitops.disable", "--debug-listen", debug)
	if err != nil {
		return err
	}
	defer s.stop()
	stopTrace, traced := make(chan struct{}), make(chan error, 1)
	go func() {
		traced <- memTrace(debug, s.cmd.Process.Pid, time.Now(), stopTrace, filepath.Join(dir, "baseline-after.memstats.tsv"))
	}()
	if b.baselineKubectl {
		if out, err := s.kubectl("apply", "--server-side", "-f", file); err != nil {
			return fmt.Errorf("kubectl apply on B: %v: %s", err, tail(out, 2000))
		}
	} else if err := s.applyBurst(file); err != nil {
		return fmt.Errorf("applying on B: %w", err)
	}
	applied := time.Now()
	rss, anon := memAround(s.cmd.Process.Pid, applied.Add(60*time.Second))
	close(stopTrace)
	if err := <-traced; err != nil {
		return err
	}
	if err := copySmaps(s.cmd.Process.Pid, filepath.Join(dir, "baseline-after60.smaps")); err != nil {
		return err
	}
	for path, name := range map[string]string{"/debug/pprof/heap?debug=1": "baseline-after60.heap.txt", "/debug/pprof/heap": "baseline-after60.heap.pprof"} {
		if err := fetchDebug(debug, path, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	step("server B 60 s after its %d objects landed (%s; median of 45–75 s): RSS %.0f MiB, RssAnon %.0f MiB", b.n, b.baselineHow(), rss, anon)
	return nil
}

// fetchDebug writes what the debug listener at addr serves at path into file.
func fetchDebug(addr, path, file string) error {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// copySmaps writes the server's /proc/PID/smaps into file: which mappings
// hold its resident memory (the Go heap's arenas, stacks, the binary, the
// etcd database).
func copySmaps(pid int, file string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
