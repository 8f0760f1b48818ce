package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/fjord-dev/fjord/appliance/fsyncgate"
)

// defaultPreflightDir is where `fjord preflight fsync` measures by default:
// the datastore directory under the default --data-dir.
const defaultPreflightDir = "/var/lib/fjord/db"

// preflightCommand returns `fjord preflight`, which checks a machine before
// Fjord runs on it. Its one check so far, `fjord preflight fsync`, measures
// fdatasync latency like etcd's fio check and exits 0 when the p99 is within
// the limit, 1 when it is not, and 2 when it cannot measure.
func preflightCommand() *cli.Command {
	return &cli.Command{
		Name:        "preflight",
		Usage:       "check whether this machine can run Fjord",
		Subcommands: []*cli.Command{preflightFsyncCommand()},
	}
}

func preflightFsyncCommand() *cli.Command {
	return &cli.Command{
		Name:      "fsync",
		Usage:     "measure fdatasync latency the way etcd's fio check does",
		UsageText: "fjord preflight fsync [--dir DIR] [--size 22MiB] [--block-size 2300] [--p99-max 10ms] [--early-stop] [--compare-fio] [--json]",
		Description: "Writes --size bytes in --block-size writes to a new temporary file in --dir, with an\n" +
			"fdatasync after each, like `fio --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300`,\n" +
			"and reports the fdatasync latency percentiles. The file is removed afterwards. The writes are\n" +
			"issued by a child process that does nothing else (fjord itself, with one P, in a session of\n" +
			"its own, as fio's job is), so that it waits for the CPU as fio does.\n\n" +
			"The verdict compares the p99 times a margin (--margin, measured against fio; see\n" +
			"docs/benchmarks.md) with --p99-max; both the measured and the corrected p99 are printed.\n\n" +
			"When --dir does not exist, its nearest existing parent is measured; nothing is created.\n" +
			"By default the run is full, like fio's; --early-stop stops as soon as the p99 verdict is\n" +
			"statistically clear, as the server's startup gate does.\n\n" +
			"--compare-fio then runs fio's command on the same directory, when fio is installed, and\n" +
			"prints both side by side:\n" +
			"  fio --name=fjord-gate --directory=DIR --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300 --output-format=json\n\n" +
			"--json prints the report as JSON (with --compare-fio: {\"fjord\": …, \"fio\": …}); durations\n" +
			"are float milliseconds in fields ending in _ms.\n\n" +
			"Exit status: 0 when Fjord's p99 (times the margin) is shown within --p99-max, 1 when it\n" +
			"is not (above it, or too close to it to tell), 2 when the measurement cannot run.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: defaultPreflightDir, Usage: "directory to measure (the datastore directory, `DIR`)"},
			&cli.StringFlag{Name: "size", Value: "22MiB", Usage: "bytes to write: 22MiB, 22m (binary units, like fio) or 23068672"},
			&cli.IntFlag{Name: "block-size", Value: fsyncgate.DefaultBlockSize, Usage: "bytes per write"},
			&cli.DurationFlag{Name: "p99-max", Value: fsyncgate.DefaultP99Max, Usage: "largest acceptable p99 fdatasync latency"},
			&cli.BoolFlag{Name: "early-stop", Usage: "stop as soon as the verdict is statistically clear"},
			&cli.DurationFlag{Name: "max-duration", Usage: "stop after this long; a p99 not yet shown within --p99-max then fails (0: no limit)"},
			&cli.Float64Flag{Name: "margin", Value: fsyncgate.DefaultMargin, Usage: "factor the measured p99 is multiplied by before the verdict (1: none)"},
			&cli.BoolFlag{Name: "compare-fio", Usage: "also run fio's command on --dir and print both side by side"},
			&cli.StringFlag{Name: "fio", Value: "fio", Usage: "the fio program for --compare-fio"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			// The measuring child: fsyncgate re-executes fjord with this flag.
			&cli.BoolFlag{Name: "child", Hidden: true},
		},
		Action: runPreflightFsync,
	}
}

func runPreflightFsync(c *cli.Context) error {
	if c.Bool("child") {
		if err := fsyncgate.ServeChild(c.Context, os.Stdin, os.Stdout); err != nil {
			return cli.Exit(fmt.Sprintf("fsync preflight child: %v", err), 2)
		}
		return nil
	}
	size, err := fsyncgate.ParseSize(c.String("size"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("fsync preflight: --size: %v", err), 2)
	}
	asked := c.String("dir")
	dir, err := nearestExistingDir(asked)
	if err != nil {
		return cli.Exit(fmt.Sprintf("fsync preflight: --dir: %v", err), 2)
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	asJSON := c.Bool("json")
	if !asJSON && filepath.Clean(asked) != dir {
		fmt.Fprintf(stdout, "%s does not exist; measuring its nearest existing parent\n", asked)
	}

	opts := fsyncgate.MeasureOptions{
		Size:        size,
		BlockSize:   c.Int("block-size"),
		Limit:       c.Duration("p99-max"),
		EarlyStop:   c.Bool("early-stop"),
		MaxDuration: c.Duration("max-duration"),
		Margin:      c.Float64("margin"),
	}
	var bar *progressBar
	if isTerminal(stderr) {
		bar = &progressBar{w: stderr}
		opts.Progress = bar.update
	}
	rep, err := fsyncgate.Measure(c.Context, dir, opts)
	bar.clear()
	if err != nil {
		return cli.Exit(fmt.Sprintf("fsync preflight: measuring fsync: %v", err), 2)
	}

	var fio *fsyncgate.FioResult
	if c.Bool("compare-fio") {
		fopts := fsyncgate.FioOptions{Bin: c.String("fio"), Dir: dir, Size: size, BlockSize: opts.BlockSize}
		if isTerminal(stderr) {
			fmt.Fprintf(stderr, "running fio %s …\n", strings.Join(fsyncgate.FioArgs(fopts), " "))
		}
		res, err := fsyncgate.RunFio(c.Context, fopts)
		switch {
		case errors.Is(err, fsyncgate.ErrFioNotFound):
			fmt.Fprintf(stderr, "--compare-fio: %v; showing Fjord's measurement only\n", err)
		case err != nil:
			return cli.Exit(fmt.Sprintf("fsync preflight: --compare-fio: %v", err), 2)
		default:
			fio = &res
		}
	}

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = rep
		if c.Bool("compare-fio") {
			v = struct {
				Fjord fsyncgate.Report     `json:"fjord"`
				Fio   *fsyncgate.FioResult `json:"fio"`
			}{rep, fio}
		}
		if err := enc.Encode(v); err != nil {
			return cli.Exit(fmt.Sprintf("fsync preflight: writing the report: %v", err), 2)
		}
	} else {
		fmt.Fprint(stdout, rep.String())
		if fio != nil {
			fmt.Fprintf(stdout, "\nfio on the same directory: fio %s\n\n", strings.Join(fsyncgate.FioArgs(fsyncgate.FioOptions{Dir: dir, Size: size, BlockSize: opts.BlockSize}), " "))
			fmt.Fprint(stdout, fsyncgate.FormatComparison(rep, *fio))
		}
	}
	if rep.NonDurable && asJSON {
		fmt.Fprintf(stderr, "warning: %s is %s, which is not durable: fdatasync is free there and data is lost on reboot\n", dir, rep.Filesystem)
	}
	if !rep.Passed {
		return cli.Exit(fmt.Sprintf("fsync preflight: %s on %s (device %s, %s); "+
			"etcd will lose leader elections and time out on this disk: put --data-dir on a local NVMe or SSD disk",
			rep.Problem(), dir, rep.Device, rep.Filesystem), 1)
	}
	return nil
}

// nearestExistingDir returns dir, made absolute, or its nearest existing
// parent when dir does not exist.
func nearestExistingDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		switch {
		case err == nil && st.IsDir():
			return d, nil
		case err == nil:
			return "", fmt.Errorf("%s is not a directory", d)
		case !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d):
			return "", err
		}
	}
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws one self-overwriting line, at most ten times a second.
type progressBar struct {
	w     io.Writer
	last  time.Time
	drawn bool
}

func (b *progressBar) update(p fsyncgate.Progress) {
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && p.BytesWritten < p.Size {
		return
	}
	b.last = now
	const width = 30
	frac := float64(p.BytesWritten) / float64(max(p.Size, 1))
	filled := min(int(frac*width), width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %d fdatasyncs  %s ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, p.Samples, p.Elapsed.Round(100*time.Millisecond))
	b.drawn = true
}

// clear erases the bar; it is safe on a nil bar.
func (b *progressBar) clear() {
	if b != nil && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
