package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeSystemctl answers `systemctl show` with one state after the other
// (the last one forever), as systemd would during a start; systemd cannot
// run here as PID 1.
func fakeSystemctl(states ...UnitState) Systemctl {
	i := 0
	return Systemctl{Poll: time.Millisecond, Run: func(_ context.Context, args ...string) (string, error) {
		if args[0] != "show" {
			return "", fmt.Errorf("unexpected systemctl %s", strings.Join(args, " "))
		}
		st := states[min(i, len(states)-1)]
		i++
		return fmt.Sprintf("ActiveState=%s\nSubState=%s\nStatusText=%s\nResult=%s\nInvocationID=%s\n",
			st.ActiveState, st.SubState, st.StatusText, st.Result, st.InvocationID), nil
	}}
}

func TestWaitReady(t *testing.T) {
	old := UnitState{ActiveState: "active", SubState: "running", StatusText: "synced a @1 (1 object, Healthy)", InvocationID: "old"}
	t.Run("prints each new status and returns at READY of the new invocation", func(t *testing.T) {
		sc := fakeSystemctl(old,
			UnitState{ActiveState: "activating", SubState: "start-pre", InvocationID: "new"},
			UnitState{ActiveState: "activating", SubState: "start", StatusText: "measuring fsync latency of /var/lib/fjord/db", InvocationID: "new"},
			UnitState{ActiveState: "activating", SubState: "start", StatusText: "measuring fsync latency of /var/lib/fjord/db", InvocationID: "new"},
			UnitState{ActiveState: "activating", SubState: "start", StatusText: "fsync p99 3.1ms ≤ 10ms: pass", InvocationID: "new"},
			UnitState{ActiveState: "active", SubState: "running", StatusText: "synced a @2 (1 object, Healthy)", InvocationID: "new"},
		)
		var out strings.Builder
		if err := sc.WaitReady(t.Context(), &out, "fjord.service", "old", time.Minute); err != nil {
			t.Fatal(err)
		}
		want := "fjord.service: synced a @1 (1 object, Healthy)\n" +
			"fjord.service: measuring fsync latency of /var/lib/fjord/db\n" +
			"fjord.service: fsync p99 3.1ms ≤ 10ms: pass\n" +
			"fjord.service: synced a @2 (1 object, Healthy)\n"
		if out.String() != want {
			t.Fatalf("printed:\n%s\nwant:\n%s", out.String(), want)
		}
	})
	t.Run("a start that fails and waits for its restart is an error with the status", func(t *testing.T) {
		sc := fakeSystemctl(
			UnitState{ActiveState: "activating", SubState: "start", StatusText: "measuring fsync latency of /d", InvocationID: "new"},
			UnitState{ActiveState: "activating", SubState: "auto-restart", Result: "exit-code", StatusText: "fsync p99 40ms > 10ms: refusing to start", InvocationID: "new"},
		)
		var out strings.Builder
		err := sc.WaitReady(t.Context(), &out, "fjord.service", "", time.Minute)
		if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "journalctl -u fjord.service") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a failed unit is an error", func(t *testing.T) {
		sc := fakeSystemctl(UnitState{ActiveState: "failed", SubState: "failed", Result: "start-limit-hit", InvocationID: "new"})
		if err := sc.WaitReady(t.Context(), &strings.Builder{}, "fjord.service", "old", time.Minute); !errors.Is(err, ErrNotReady) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the old invocation's state is not taken for the new one", func(t *testing.T) {
		sc := fakeSystemctl(old)
		err := sc.WaitReady(t.Context(), &strings.Builder{}, "fjord.service", "old", 50*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "not ready after 50ms") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("systemctl failing is an error", func(t *testing.T) {
		sc := Systemctl{Run: func(context.Context, ...string) (string, error) {
			return "", errors.New("systemctl show: Failed to connect to bus")
		}}
		if err := sc.WaitReady(t.Context(), &strings.Builder{}, "fjord.service", "", time.Minute); err == nil {
			t.Fatal("no error")
		}
	})
}
