package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

// firstSyncs measures only the first sync, on a fresh server A each time:
// for comparing two binaries or settings (GOGC) run after run, where one
// whole bench run takes minutes and single first syncs on this machine
// vary by more than most changes move them. It prints one row per run and
// the medians.
func (b *bench) firstSyncs(runs int) error {
	fmt.Printf("First sync of N=%d on a fresh server idle for %s, polling every %s, %d runs, %s; GOGC=%q; load %s at the start\n\n", b.n, b.idle, b.firstPoll, runs, b.bin, os.Getenv("GOGC"), benchutil.LoadAvg())
	fmt.Println("| run | first sync | log line `synced` | server CPU | peak over idle: RSS (RssAnon) |")
	fmt.Println("|---|---|---|---|---|")
	var wall, logged, cpu, rss, anon []float64
	for i := range runs {
		w, l, c, r, a, err := b.firstSyncOnce()
		if err != nil {
			return err
		}
		wall, logged, cpu, rss, anon = append(wall, w), append(logged, l), append(cpu, c), append(rss, r), append(anon, a)
		fmt.Printf("| %d | %.2f s | %.2f s | %.2f s | +%.0f MiB (+%.0f) |\n", i+1, w, l, c, r, a)
	}
	fmt.Printf("| median | %.2f s | %.2f s | %.2f s | +%.0f MiB (+%.0f) |\n", benchutil.Median(wall), benchutil.Median(logged), benchutil.Median(cpu), benchutil.Median(rss), benchutil.Median(anon))
	fmt.Printf("\nLoad average at the end: %s\n", benchutil.LoadAvg())
	return nil
}

func (b *bench) firstSyncOnce() (wall, logged, cpu, rss, anon float64, err error) {
	work, err := os.MkdirTemp("/var/tmp", "fjord-gitops-first-")
	if err != nil {
		return
	}
	defer os.RemoveAll(work)
	repo := &gitRepo{dir: filepath.Join(work, "repo")}
	if err = repo.init(b.n); err != nil {
		return
	}
	a, err := startServer(b.bin, true, "--gitops.poll-interval", b.firstPoll.String())
	if err != nil {
		return
	}
	defer a.stop()
	pid := a.cmd.Process.Pid
	_, _, idleRSS, idleAnon, err := a.idleOf(b.idle)
	if err != nil {
		return
	}
	first, err := a.measureFirstSync(repo.url(), repo.head(), b.n)
	if err != nil {
		return
	}
	wall, logged, cpu = first.wall, first.logged, first.cpu
	step("first sync: %.2fs (log %.2fs, CPU %.2fs); RSS %.0f → %.0f MiB, RssAnon %.0f → %.0f MiB", wall, logged, cpu, idleRSS, first.peakRSS, idleAnon, first.peakAnon)
	if b.after > 0 {
		// As the full run reads it: the median over b.after ± 15 s.
		r, an := memAround(pid, first.synced.Add(b.after))
		step("%s after (median of ±15 s): RSS %.0f MiB, RssAnon %.0f MiB; requests since start on Applications: %s; on the bench's kinds: %s", b.after, r, an, diffCounts(a.requests("applications"), nil), diffCounts(a.requests(), nil))
	}
	return wall, logged, cpu, first.peakRSS - idleRSS, first.peakAnon - idleAnon, nil
}
