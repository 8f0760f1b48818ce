// Command fsync compares Fjord's fdatasync measurement with fio's on one
// directory and prints a markdown table, one row per run.
//
// Each run measures, in this order:
//
//   - fio, with etcd's command (fsyncgate.FioArgs):
//     fio --name=fjord-gate --directory=DIR --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300 --output-format=json
//   - then, in an order that rotates from run to run: the startup gate
//     (fsyncgate.Measure with early stop and the 30s cap); Fjord's full run
//     of the same workload, measured the way the gate measures: in a child
//     process (this program re-executed with -child, or a fjord binary given
//     with -fjord); and, with -inprocess (the default), Fjord's full run in
//     this process, the way the gate measured before issue 14;
//   - fio again.
//
// fio before and after brackets Fjord's runs: the disk of a shared VM changes
// from minute to minute, and fio's two runs show by how much. The ratio is
// Fjord's p99 as the gate reads it (raw p99 × margin) over the mean of fio's
// two. A run where the gate or the full run passes while both fio runs'
// p99s are over the limit is marked; one where only one fio run is over it
// is noted.
//
// With -load, a CPU-heavy process runs beside the measurements for the whole
// benchmark: this program re-executed with -burn 2, two goroutines spinning
// on integer arithmetic in a session of their own, enough to keep both cores
// of the benchmark VM busy.
//
// Usage:
//
//	go run ./e2e/bench/fsync [-n 5] [-load] [-p99-max 10ms] [-dir DIR] [-fio fio] [-size-mib 22] [-inprocess=false] [-fjord bin/fjord]
//
// The directory defaults to a new temporary directory under /var/tmp (not
// /tmp, which may be tmpfs), removed afterwards.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-dev/fjord/appliance/fsyncgate"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

func main() {
	n := flag.Int("n", 5, "number of runs")
	dir := flag.String("dir", "", "directory to measure (default: a new temporary directory under /var/tmp)")
	fio := flag.String("fio", "fio", "fio binary")
	sizeMiB := flag.Int("size-mib", 22, "MiB per run (fio's --size)")
	load := flag.Bool("load", false, "run a CPU-heavy process (this program with -burn 2) beside the measurements")
	inProcess := flag.Bool("inprocess", true, "also measure in this process, as the gate did before issue 14")
	fjord := flag.String("fjord", "", "measure with this fjord binary (`fjord preflight fsync --child`) instead of this program")
	child := flag.Bool("child", false, "internal: serve as the measuring child")
	limit := flag.Duration("p99-max", fsyncgate.DefaultP99Max, "the gate's limit; a lower one puts a fast disk near it")
	burn := flag.Int("burn", 0, "internal: spin this many goroutines until killed")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case *child:
		if err := fsyncgate.ServeChild(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fsync bench child:", err)
			os.Exit(2)
		}
		return
	case *burn > 0:
		spin(ctx, *burn)
		return
	}
	b := bench{n: *n, dir: *dir, fio: *fio, size: int64(*sizeMiB) << 20, limit: *limit, load: *load, inProcess: *inProcess}
	if err := b.setChild(*fjord); err != nil {
		fmt.Fprintln(os.Stderr, "fsync bench:", err)
		os.Exit(1)
	}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fsync bench:", err)
		os.Exit(1)
	}
}

// spin keeps n goroutines busy until ctx ends.
func spin(ctx context.Context, n int) {
	for range n {
		go func() {
			x := uint64(1)
			for {
				for range 1 << 20 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				if x == 0 {
					fmt.Println(x) // keeps the loop from being optimised away
				}
			}
		}()
	}
	<-ctx.Done()
}

type bench struct {
	n         int
	dir, fio  string
	size      int64
	limit     time.Duration
	load      bool
	inProcess bool
	child     fsyncgate.ChildCommand
	childName string
}

func (b *bench) setChild(fjord string) error {
	if fjord != "" {
		b.child = fsyncgate.ChildCommand{Path: fjord, Args: fsyncgate.FjordChildArgs}
		b.childName = fjord + " " + strings.Join(fsyncgate.FjordChildArgs, " ")
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b.child = fsyncgate.ChildCommand{Path: exe, Args: []string{"-child"}}
	b.childName = "this program with -child"
	return nil
}

// row is one run's results.
type row struct {
	fio   fsyncgate.FioResult
	fio2  fsyncgate.FioResult // fio again: how much fio differs from itself
	full  fsyncgate.Report    // Fjord, full run, in a child
	gate  fsyncgate.Report    // Fjord, early stop and time cap, in a child
	inpr  fsyncgate.Report    // Fjord, full run, in this process
	walls [5]time.Duration
}

func (b *bench) run(ctx context.Context) error {
	if b.dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "fjord-fsync-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		b.dir = d
	}
	if _, err := exec.LookPath(b.fio); err != nil {
		return fmt.Errorf("%w (%v)", fsyncgate.ErrFioNotFound, err)
	}
	loadDesc := "none"
	if b.load {
		stopLoad, err := startLoad(ctx)
		if err != nil {
			return err
		}
		defer stopLoad()
		loadDesc = "this program re-executed with -burn 2 (two goroutines spinning on integer arithmetic), for the whole benchmark"
		time.Sleep(2 * time.Second) // let the load average see it
	}
	gate := fsyncgate.Default()
	full := fsyncgate.MeasureOptions{Size: b.size, BlockSize: gate.BlockSize, Limit: b.limit, Child: &b.child}
	early := full
	early.EarlyStop, early.MaxDuration = true, gate.MaxDuration
	fioOpts := fsyncgate.FioOptions{Bin: b.fio, Dir: b.dir, Size: b.size, BlockSize: gate.BlockSize}

	loadBefore, started := benchutil.LoadAvg(), time.Now()
	var rows []row
	for i := range b.n {
		var r row
		timed := func(wall *time.Duration, f func() error) func() error {
			return func() error {
				start := time.Now()
				err := f()
				*wall = time.Since(start)
				return err
			}
		}
		fjord := []func() error{
			timed(&r.walls[2], func() (err error) { r.gate, err = fsyncgate.Measure(ctx, b.dir, early); return err }),
			timed(&r.walls[1], func() (err error) { r.full, err = fsyncgate.Measure(ctx, b.dir, full); return err }),
		}
		if b.inProcess {
			fjord = append(fjord, timed(&r.walls[3], func() (err error) { r.inpr, err = fsyncgate.MeasureInProcess(ctx, b.dir, full); return err }))
		}
		// fio before and after Fjord's runs, which rotate among themselves.
		steps := []func() error{timed(&r.walls[0], func() (err error) { r.fio, err = fsyncgate.RunFio(ctx, fioOpts); return err })}
		for k := range fjord {
			steps = append(steps, fjord[(k+i)%len(fjord)])
		}
		steps = append(steps, timed(&r.walls[4], func() (err error) { r.fio2, err = fsyncgate.RunFio(ctx, fioOpts); return err }))
		for _, step := range steps {
			if err := step(); err != nil {
				return fmt.Errorf("run %d: %w", i+1, err)
			}
		}
		fmt.Fprintf(os.Stderr, "run %d/%d: fio p99 %s and %s, fjord p99 %s (raw %s), gate %s, in-process p99 %s (load %s)\n",
			i+1, b.n, ms(r.fio.P99), ms(r.fio2.P99), ms(r.full.P99), ms(r.full.RawP99), gateCell(r.gate), ms(r.inpr.RawP99), benchutil.LoadAvg())
		rows = append(rows, r)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.print(rows, loadBefore, benchutil.LoadAvg(), started, loadDesc)
	return nil
}

// startLoad starts the CPU-heavy process and returns how to stop it.
func startLoad(ctx context.Context) (func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-burn", "2")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Its own session, like a service started elsewhere (and like fio's job
	// and the measuring child): with autogroup scheduling, a group of its own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the load: %w", err)
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}, nil
}

// fioRef is the fio figure a run compares with: the mean of fio's two runs,
// which halves fio's own run-to-run variance.
func (r row) fioRef() time.Duration { return (r.fio.P99 + r.fio2.P99) / 2 }

func (b *bench) print(rows []row, loadBefore, loadAfter string, started time.Time, loadDesc string) {
	limit := b.limit
	hdr := "| run | fio p99 before | fio p99 after | fjord p99 raw | fjord p99 (gate's figure) | ratio fjord/fio | gate (early stop) | fio p50 | fjord p50 |"
	sep := "|---|---|---|---|---|---|---|---|---|"
	if b.inProcess {
		hdr += " in-process p99 | in-process/fio | in-process p50 |"
		sep += "---|---|---|"
	}
	fmt.Println(hdr)
	fmt.Println(sep)
	var fioP, fio2P, rawP, corrP, ratios, inprP, inprRatios, inpr50, fio50, full50 []float64
	unsafeBoth, unsafeEither, fioFlips := 0, 0, 0
	for i, r := range rows {
		ratio := float64(r.full.P99) / float64(r.fioRef())
		fjordPasses := r.gate.Passed || r.full.Passed
		mark := ""
		switch {
		case fjordPasses && min(r.fio.P99, r.fio2.P99) > limit:
			mark = " **passes where fio fails**"
			unsafeBoth++
			unsafeEither++
		case fjordPasses && max(r.fio.P99, r.fio2.P99) > limit:
			mark = " (one fio run fails)"
			unsafeEither++
		}
		if (r.fio.P99 > limit) != (r.fio2.P99 > limit) {
			fioFlips++
		}
		fmt.Printf("| %d | %s | %s | %s | %s | %.2f | %s | %s | %s |", i+1, ms(r.fio.P99), ms(r.fio2.P99), ms(r.full.RawP99), ms(r.full.P99), ratio,
			gateCell(r.gate)+mark, ms(r.fio.P50), ms(r.full.P50))
		if b.inProcess {
			ir := float64(r.inpr.RawP99) / float64(r.fioRef())
			fmt.Printf(" %s | %.2f | %s |", ms(r.inpr.RawP99), ir, ms(r.inpr.P50))
			inprP, inprRatios, inpr50 = append(inprP, float64(r.inpr.RawP99)), append(inprRatios, ir), append(inpr50, float64(r.inpr.P50))
		}
		fmt.Println()
		fioP, fio2P, rawP, corrP, ratios = append(fioP, float64(r.fio.P99)), append(fio2P, float64(r.fio2.P99)),
			append(rawP, float64(r.full.RawP99)), append(corrP, float64(r.full.P99)), append(ratios, ratio)
		fio50, full50 = append(fio50, float64(r.fio.P50)), append(full50, float64(r.full.P50))
	}
	med := func(xs []float64) string { return ms(time.Duration(benchutil.Median(xs))) }
	fmt.Printf("| **median** | %s | %s | %s | %s | **%.2f** | | %s | %s |", med(fioP), med(fio2P), med(rawP), med(corrP), benchutil.Median(ratios), med(fio50), med(full50))
	if b.inProcess {
		fmt.Printf(" %s | %.2f | %s |", med(inprP), benchutil.Median(inprRatios), med(inpr50))
	}
	fmt.Println()
	fmt.Println()
	fmt.Printf("Runs where Fjord (gate or full run) passes and both fio runs' p99s are over %s: %d of %d; and either: %d of %d. "+
		"Runs where fio's two runs disagree about the limit: %d of %d.\n",
		fsyncgate.FormatLatency(limit), unsafeBoth, len(rows), unsafeEither, len(rows), fioFlips, len(rows))
	fmt.Println("Ratios are over the mean of fio's two p99s; Fjord's figure is the gate's (raw p99 × margin), the in-process one is raw.")
	if len(rows) > 0 {
		rep := rows[0].full
		fmt.Printf("Machine: %s; %s on %s (device %s); %s.\n", benchutil.Machine(), b.dir, rep.Filesystem, rep.Device, rows[0].fio.Version)
		fmt.Printf("Correction: %s.\n", rep.CorrectionString())
	}
	fmt.Printf("Measuring child: %s. CPU load beside the runs: %s.\n", b.childName, loadDesc)
	fmt.Printf("Started %s; load average before %s, after %s; %d MiB in 2300-byte writes per run, fdatasync after each; limit %s.\n",
		started.UTC().Format("2006-01-02 15:04 UTC"), loadBefore, loadAfter, b.size>>20, fsyncgate.FormatLatency(limit))
}

func gateCell(r fsyncgate.Report) string {
	return fmt.Sprintf("%s (p99 %s, %d samples, %s)", verdict(r.Passed), ms(r.P99), r.Samples, r.StopReason)
}

func verdict(passed bool) string {
	if passed {
		return "pass"
	}
	return "fail"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
