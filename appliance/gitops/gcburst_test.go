package gitops

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestGCBurst(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	e := &Engine{}
	t.Run("raised for the burst, restored when the last one ends", func(t *testing.T) {
		end1 := e.gcBurst()
		end2 := e.gcBurst()
		if p := gcPercent(); p != burstGCPercent {
			t.Fatalf("during two bursts GC percent = %d, want %d", p, burstGCPercent)
		}
		end1()
		if p := gcPercent(); p != burstGCPercent {
			t.Fatalf("after one of two bursts GC percent = %d, want %d", p, burstGCPercent)
		}
		end2()
		if p := gcPercent(); p != 25 {
			t.Fatalf("after the bursts GC percent = %d, want 25 back", p)
		}
	})
	t.Run("a higher target is left alone", func(t *testing.T) {
		debug.SetGCPercent(100)
		end := e.gcBurst()
		if p := gcPercent(); p != 100 {
			t.Fatalf("during the burst GC percent = %d, want 100 kept", p)
		}
		end()
		if p := gcPercent(); p != 100 {
			t.Fatalf("after the burst GC percent = %d, want 100", p)
		}
		debug.SetGCPercent(25)
	})
	t.Run("GOGC in the environment wins", func(t *testing.T) {
		t.Setenv("GOGC", "25")
		end := e.gcBurst()
		if p := gcPercent(); p != 25 {
			t.Fatalf("with GOGC set GC percent = %d, want 25 kept", p)
		}
		end()
	})
}
