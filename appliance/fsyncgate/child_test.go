package fsyncgate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the measuring child, the way
// `fjord preflight fsync --child` does.
func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := ServeChild(ctx, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fsync gate test child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testChild is this test binary as the measuring child.
func testChild(t *testing.T) *ChildCommand {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &ChildCommand{Path: exe}
}

func TestMeasureInChild(t *testing.T) {
	t.Run("a child measures a small run on the real disk and the file is removed", func(t *testing.T) {
		dir := t.TempDir()
		var progress []Progress
		rep, err := Measure(t.Context(), dir, MeasureOptions{
			Size: 64 << 10, Margin: 1.5, Child: testChild(t),
			Progress: func(p Progress) { progress = append(progress, p) },
		})
		if err != nil {
			t.Fatalf("measure: %v", err)
		}
		assertEmptyDir(t, dir)
		const samples = (64 << 10) / 2300 // 28
		if rep.Samples != samples || rep.StopReason != StopSize || rep.Dir != dir || rep.Device == "" || rep.Filesystem == "" {
			t.Errorf("report %+v; want %d samples, a full run, and the directory's identity", rep, samples)
		}
		if rep.Margin != 1.5 || rep.P99 != applyMargin(rep.RawP99, 1.5) || rep.RawP99 <= 0 {
			t.Errorf("raw p99 %s, margin %g, p99 %s; want the p99 to be the raw one times 1.5", rep.RawP99, rep.Margin, rep.P99)
		}
		if len(progress) == 0 || progress[len(progress)-1].Samples != samples {
			t.Errorf("progress %+v; want it to end at %d samples", progress, samples)
		}
	})
	t.Run("canceling stops the child, which reports what it measured", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		rep, err := Measure(ctx, dir, MeasureOptions{
			Size: 1 << 30, Child: testChild(t),
			Progress: func(p Progress) {
				if p.Samples > 0 {
					cancel()
				}
			},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v; want context.Canceled", err)
		}
		assertEmptyDir(t, dir)
		if rep.StopReason != StopCanceled || rep.Samples == 0 {
			t.Errorf("stop %s after %d samples; want canceled after some", rep.StopReason, rep.Samples)
		}
		t.Logf("canceled after %d samples in %s", rep.Samples, time.Since(start))
	})
	t.Run("a child cannot start another", func(t *testing.T) {
		t.Setenv(ChildEnv, "1")
		dir := t.TempDir()
		_, err := Measure(t.Context(), dir, MeasureOptions{Size: 64 << 10, Child: testChild(t)})
		if err == nil || !strings.Contains(err.Error(), ChildEnv) {
			t.Errorf("error %v; want one naming %s", err, ChildEnv)
		}
		assertEmptyDir(t, dir)
	})
	t.Run("a program that answers something else is stopped at once", func(t *testing.T) {
		dir := t.TempDir()
		start := time.Now()
		_, err := Measure(t.Context(), dir, MeasureOptions{Size: 64 << 10, Child: &ChildCommand{Path: "/bin/sh", Args: []string{"-c", "echo PASS; sleep 60"}}})
		if err == nil || !strings.Contains(err.Error(), "does not answer as a measuring child") {
			t.Errorf("error %v; want one saying the program is not a measuring child", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("took %s; want the program killed, not waited for", d)
		}
		assertEmptyDir(t, dir)
	})
	t.Run("a program that does not serve as the child is an error", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Measure(t.Context(), dir, MeasureOptions{Size: 64 << 10, Child: &ChildCommand{Path: "/bin/sh", Args: []string{"-c", "echo not a child >&2"}}})
		if err == nil || !strings.Contains(err.Error(), "not a child") {
			t.Errorf("error %v; want one quoting the child's standard error", err)
		}
		assertEmptyDir(t, dir)
	})
}

func TestChildEnv(t *testing.T) {
	t.Setenv("GOMAXPROCS", "8")
	t.Setenv("GODEBUG", "http2client=0")
	env := childEnv([]string{"EXTRA=1"})
	for _, want := range []string{"GOMAXPROCS=1", "GODEBUG=http2client=0,asyncpreemptoff=1", ChildEnv + "=1", "EXTRA=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %s", want)
		}
	}
	if slices.Contains(env, "GOMAXPROCS=8") {
		t.Error("the parent's GOMAXPROCS is kept")
	}
}
