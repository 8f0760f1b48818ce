// Command fsync compares Fjord's fdatasync measurement with fio's on one
// directory and prints a markdown table.
//
// Each run measures, in an order that rotates from run to run so that neither
// tool always goes first: real fio with etcd's command
//
//	fio --rw=write --ioengine=sync --fdatasync=1 --directory=DIR --size=22m --bs=2300 --output-format=json
//
// (p99 from jobs[0].sync.lat_ns.percentile["99.000000"]); a full Fjord run of
// the same workload, in process; and a Fjord run with the startup gate's
// early stop and time cap. Wall times are measured around each whole run,
// including file creation and removal (and, for fio, process start).
//
// Usage:
//
//	go run ./e2e/bench/fsync [-n 3] [-dir DIR] [-fio fio] [-size-mib 22]
//
// The directory defaults to a new temporary directory under /var/tmp (not
// /tmp, which may be tmpfs), removed afterwards.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fjord-dev/fjord/appliance/fsyncgate"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

func main() {
	n := flag.Int("n", 3, "number of runs")
	dir := flag.String("dir", "", "directory to measure (default: a new temporary directory under /var/tmp)")
	fio := flag.String("fio", "fio", "fio binary")
	sizeMiB := flag.Int("size-mib", 22, "MiB per run (fio's --size)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, *dir, *fio, *sizeMiB); err != nil {
		fmt.Fprintln(os.Stderr, "fsync bench:", err)
		os.Exit(1)
	}
}

// row is one run's results.
type row struct {
	fioP99, fullP99       time.Duration
	fioP50, fullP50       time.Duration
	fioWall, fullWall     time.Duration
	earlyWall             time.Duration
	earlyP99              time.Duration
	earlyPassed, fullPass bool
	earlySamples          int
	earlyStop             fsyncgate.StopReason
	fullRep               fsyncgate.Report
}

func run(ctx context.Context, n int, dir, fio string, sizeMiB int) error {
	if dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "fjord-fsync-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if _, err := exec.LookPath(fio); err != nil {
		return fmt.Errorf("fio not found (apt-get install fio): %w", err)
	}
	gate := fsyncgate.Default()
	size := int64(sizeMiB) << 20
	full := fsyncgate.MeasureOptions{Size: size, BlockSize: gate.BlockSize, Limit: gate.P99Max}
	early := full
	early.EarlyStop, early.MaxDuration = true, gate.MaxDuration

	var rows []row
	for i := range n {
		var r row
		steps := []func() error{
			func() error {
				start := time.Now()
				p50, p99, err := runFio(ctx, fio, dir, sizeMiB)
				r.fioP50, r.fioP99, r.fioWall = p50, p99, time.Since(start)
				return err
			},
			func() error {
				start := time.Now()
				rep, err := fsyncgate.Measure(ctx, dir, full)
				r.fullP50, r.fullP99, r.fullWall, r.fullPass, r.fullRep = rep.P50, rep.P99, time.Since(start), rep.Passed, rep
				return err
			},
			func() error {
				start := time.Now()
				rep, err := fsyncgate.Measure(ctx, dir, early)
				r.earlyWall, r.earlyP99, r.earlyPassed, r.earlySamples, r.earlyStop = time.Since(start), rep.P99, rep.Passed, rep.Samples, rep.StopReason
				return err
			},
		}
		for k := range steps {
			if err := steps[(k+i)%len(steps)](); err != nil {
				return fmt.Errorf("run %d: %w", i+1, err)
			}
		}
		fmt.Fprintf(os.Stderr, "run %d/%d: fio p99 %s, fjord p99 %s\n", i+1, n, ms(r.fioP99), ms(r.fullP99))
		rows = append(rows, r)
	}
	printTable(rows, dir, fio, sizeMiB)
	return nil
}

// runFio runs etcd's fio command in dir and returns its p50 and p99
// fdatasync latencies. fio leaves its file behind; it is removed here.
func runFio(ctx context.Context, fio, dir string, sizeMiB int) (p50, p99 time.Duration, err error) {
	const name = "fjord-bench-fio"
	defer os.Remove(filepath.Join(dir, name+".0.0"))
	cmd := exec.CommandContext(ctx, fio, "--name="+name, "--rw=write", "--ioengine=sync", "--fdatasync=1",
		"--directory="+dir, fmt.Sprintf("--size=%dm", sizeMiB), "--bs=2300", "--output-format=json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("fio: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Jobs []struct {
			Sync struct {
				LatNs struct {
					N          int64            `json:"N"`
					Percentile map[string]int64 `json:"percentile"`
				} `json:"lat_ns"`
			} `json:"sync"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("parsing fio's JSON: %w", err)
	}
	if len(res.Jobs) == 0 || res.Jobs[0].Sync.LatNs.N == 0 {
		return 0, 0, fmt.Errorf("fio reported no fdatasync latencies")
	}
	pct := res.Jobs[0].Sync.LatNs.Percentile
	ns50, ok50 := pct["50.000000"]
	ns99, ok99 := pct["99.000000"]
	if !ok50 || !ok99 {
		return 0, 0, fmt.Errorf("fio reported no p50 or p99 fdatasync latency")
	}
	return time.Duration(ns50), time.Duration(ns99), nil
}

func printTable(rows []row, dir, fio string, sizeMiB int) {
	fmt.Println("| run | fio p99 | fjord p99 (full) | ratio | fio wall | fjord full wall | fjord early-stop wall | early-stop decision | fio p50 | fjord p50 (full) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var fioP, fullP, ratios, fioW, fullW, earlyW, fio50, full50 []float64
	for i, r := range rows {
		ratio := float64(r.fullP99) / float64(r.fioP99)
		fmt.Printf("| %d | %s | %s | %.2f | %s | %s | %s | %s | %s | %s |\n", i+1, ms(r.fioP99), ms(r.fullP99), ratio,
			secs(r.fioWall), secs(r.fullWall), secs(r.earlyWall), decision(r), ms(r.fioP50), ms(r.fullP50))
		fio50, full50 = append(fio50, float64(r.fioP50)), append(full50, float64(r.fullP50))
		fioP, fullP, ratios = append(fioP, float64(r.fioP99)), append(fullP, float64(r.fullP99)), append(ratios, ratio)
		fioW, fullW, earlyW = append(fioW, float64(r.fioWall)), append(fullW, float64(r.fullWall)), append(earlyW, float64(r.earlyWall))
	}
	fmt.Printf("| **median** | %s | %s | %.2f | %s | %s | %s | | %s | %s |\n",
		ms(time.Duration(benchutil.Median(fioP))), ms(time.Duration(benchutil.Median(fullP))), benchutil.Median(ratios),
		secs(time.Duration(benchutil.Median(fioW))), secs(time.Duration(benchutil.Median(fullW))), secs(time.Duration(benchutil.Median(earlyW))),
		ms(time.Duration(benchutil.Median(fio50))), ms(time.Duration(benchutil.Median(full50))))
	fmt.Println()
	if len(rows) > 0 {
		rep := rows[0].fullRep
		fmt.Printf("Machine: %d CPUs, %s, kernel %s; %s on %s (device %s); %s.\n",
			runtime.NumCPU(), cpuModel(), kernel(), dir, rep.Filesystem, rep.Device, fioVersion(fio))
	}
	fmt.Printf("Workload: %d MiB in 2300-byte writes with fdatasync after each; p99 of fdatasync latency; early stop as the server's gate (10ms limit, 30s cap).\n", sizeMiB)
}

func decision(r row) string {
	v := "pass"
	if !r.earlyPassed {
		v = "fail"
	}
	return fmt.Sprintf("%s (p99 %s, %d samples, %s)", v, ms(r.earlyP99), r.earlySamples, r.earlyStop)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func fioVersion(fio string) string {
	out, err := exec.Command(fio, "--version").Output()
	if err != nil {
		return "fio (unknown version)"
	}
	return strings.TrimSpace(string(out))
}
