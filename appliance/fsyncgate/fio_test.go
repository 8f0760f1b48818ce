package fsyncgate

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fioCapture is the output of etcd's fio command, 22 MiB in 2300-byte writes,
// captured from fio 3.33 on the benchmark VM.
const fioCapture = "testdata/fio-3.33-sync.json"

func TestParseFioJSON(t *testing.T) {
	capture, err := os.ReadFile(fioCapture)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a real fio run gives its fdatasync percentiles", func(t *testing.T) {
		got, err := ParseFioJSON(capture)
		if err != nil {
			t.Fatal(err)
		}
		want := FioResult{
			Version: "fio-3.33", Samples: 10029,
			Mean: 707908, P50: 460800, P90: 1089536, P99: 5734400, P999: 11862016, Max: 20273541,
			Runtime: 7216 * time.Millisecond,
		}
		if got != want {
			t.Errorf("ParseFioJSON\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("warnings fio prints before the JSON are skipped", func(t *testing.T) {
		got, err := ParseFioJSON(append([]byte("fio: this platform does not support process shared mutexes, forcing use of threads\n"), capture...))
		if err != nil || got.P99 != 5734400 {
			t.Errorf("p99 %s, error %v; want 5.7344ms", got.P99, err)
		}
	})
	for _, tt := range []struct {
		name, json, want string
	}{
		{name: "output that is not JSON is an error", json: "fio: command not understood", want: "parsing fio's JSON"},
		{name: "no job is an error", json: `{"fio version": "fio-3.33", "jobs": []}`, want: "no job"},
		{name: "a failed job is an error", json: `{"jobs": [{"jobname": "fjord-gate", "error": 28}]}`, want: "failed with error 28"},
		{name: "a run without fdatasync is an error", json: `{"jobs": [{"sync": {"lat_ns": {"N": 0}}}]}`, want: "--fdatasync=1"},
		{name: "a missing percentile is named", json: `{"jobs": [{"sync": {"lat_ns": {"N": 5, "percentile": {"50.000000": 1, "90.000000": 2}}}}]}`, want: "no 99 percentile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFioJSON([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFioArgs(t *testing.T) {
	t.Run("the defaults are etcd's command", func(t *testing.T) {
		got := FioArgs(FioOptions{Dir: "/var/lib/fjord/db"})
		want := []string{"--name=fjord-gate", "--directory=/var/lib/fjord/db", "--rw=write", "--ioengine=sync", "--fdatasync=1",
			"--size=22m", "--bs=2300", "--output-format=json"}
		if !slices.Equal(got, want) {
			t.Errorf("FioArgs = %q; want %q", got, want)
		}
	})
	t.Run("a size that is not whole MiB is given in bytes", func(t *testing.T) {
		got := FioArgs(FioOptions{Dir: "/d", Size: 100000, BlockSize: 4096})
		if !slices.Contains(got, "--size=100000") || !slices.Contains(got, "--bs=4096") {
			t.Errorf("FioArgs = %q", got)
		}
	})
}

func TestRunFio(t *testing.T) {
	t.Run("a missing fio says how to install it", func(t *testing.T) {
		_, err := RunFio(t.Context(), FioOptions{Bin: "fio-that-is-not-installed", Dir: t.TempDir()})
		if !errors.Is(err, ErrFioNotFound) || !strings.Contains(err.Error(), "apt-get install fio") {
			t.Errorf("error %v; want ErrFioNotFound", err)
		}
	})
	t.Run("fio's file is removed and a failure quotes fio", func(t *testing.T) {
		dir := t.TempDir()
		fake := filepath.Join(t.TempDir(), "fio")
		script := "#!/bin/sh\ntouch " + filepath.Join(dir, FioJobName+".0.0") + "\necho 'fio: no space left' >&2\nexit 1\n"
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := RunFio(t.Context(), FioOptions{Bin: fake, Dir: dir})
		if err == nil || !strings.Contains(err.Error(), "fio: no space left") {
			t.Errorf("error %v; want one quoting fio's standard error", err)
		}
		assertEmptyDir(t, dir)
	})
	t.Run("canceling stops fio and its job and removes the file", func(t *testing.T) {
		if _, err := exec.LookPath("fio"); err != nil {
			t.Skip("fio is not installed")
		}
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(500*time.Millisecond, cancel)
		_, err := RunFio(ctx, FioOptions{Dir: dir, Size: 256 << 20})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v; want context.Canceled", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for fioRunningIn(dir) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if fioRunningIn(dir) {
			t.Error("a fio process still runs in the directory")
		}
		assertEmptyDir(t, dir)
	})
	t.Run("the real fio measures a small run", func(t *testing.T) {
		if _, err := exec.LookPath("fio"); err != nil {
			t.Skip("fio is not installed")
		}
		dir := t.TempDir()
		got, err := RunFio(t.Context(), FioOptions{Dir: dir, Size: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		assertEmptyDir(t, dir)
		// fio's percentiles are histogram buckets: the p99 may exceed the max.
		if got.Samples != (64<<10)/2300 || got.P50 <= 0 || got.P50 > got.P99 || got.Max <= 0 || !strings.HasPrefix(got.Version, "fio-") {
			t.Errorf("result %+v; want 28 samples with ordered percentiles", got)
		}
	})
}

func TestFormatComparison(t *testing.T) {
	ms := time.Millisecond
	fio := FioResult{Version: "fio-3.33", Samples: 10029, P50: ms, P90: 2 * ms, P99: 8 * ms, P999: 12 * ms, Max: 20 * ms}
	rep := Report{Limit: 10 * ms, Samples: 10029, P50: ms, P90: 2 * ms, RawP99: 7 * ms, Margin: 1.15, P99: 8050 * time.Microsecond,
		P999: 11 * ms, Max: 19 * ms, Passed: true}
	t.Run("both pass, side by side, with the margin", func(t *testing.T) {
		got := FormatComparison(rep, fio)
		for _, want := range []string{"fio-3.33", "p99 as measured    7ms              8ms", "p99 × 1.15 margin  8.1ms", "verdict (10ms)     pass             pass", "agree: both pass (p99 ratio fjord/fio 1.01)"} {
			if !strings.Contains(got, want) {
				t.Errorf("comparison lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("a pass where fio fails is called out", func(t *testing.T) {
		slow := fio
		slow.P99 = 11 * ms
		if got := FormatComparison(rep, slow); !strings.Contains(got, "DISAGREE: Fjord passes a disk that fio fails") {
			t.Errorf("comparison does not call out the disagreement:\n%s", got)
		}
	})
	t.Run("a failure where fio passes is the safe side", func(t *testing.T) {
		failed := rep
		failed.Passed, failed.Inconclusive = false, true
		if got := FormatComparison(failed, fio); !strings.Contains(got, "errs on the safe side") {
			t.Errorf("comparison:\n%s", got)
		}
	})
}

// fioRunningIn reports whether a process has dir in its command line.
func fioRunningIn(dir string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "--directory="+dir) {
			return true
		}
	}
	return false
}
