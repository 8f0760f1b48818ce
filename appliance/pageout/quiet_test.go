package pageout

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// burn keeps one core busy for d of CPU time.
func burn(d time.Duration) {
	end := cpuTime() + d
	for x := 0; cpuTime() < end; x++ {
		_ = x * x
	}
}

func TestWhenQuiet(t *testing.T) {
	q := Quiet{Work: 100 * time.Millisecond, Window: 150 * time.Millisecond, Share: 0.3, Every: 25 * time.Millisecond}
	start := func(t *testing.T) *atomic.Int32 {
		var trims atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			WhenQuiet(ctx, q, func(advised int64, err error) {
				if err != nil || advised == 0 {
					t.Errorf("trim: advised %d, %v", advised, err)
				}
				trims.Add(1)
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		return &trims
	}
	t.Run("an idle process is left alone", func(t *testing.T) {
		trims := start(t)
		time.Sleep(time.Second)
		if n := trims.Load(); n != 0 {
			t.Errorf("trimmed %d times without work", n)
		}
	})
	t.Run("work, then quiet, trims once", func(t *testing.T) {
		trims := start(t)
		burn(400 * time.Millisecond)
		deadline := time.Now().Add(5 * time.Second)
		for trims.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if trims.Load() != 1 {
			t.Fatalf("trims after work and quiet = %d, want 1", trims.Load())
		}
		time.Sleep(time.Second)
		if n := trims.Load(); n != 1 {
			t.Errorf("trims after a quiet second more = %d, want still 1", n)
		}
	})
}

func TestTrim(t *testing.T) {
	if n, err := trim(); err != nil || n == 0 {
		t.Fatalf("trim() = %d, %v: want the test binary's read-only mappings advised", n, err)
	}
}
