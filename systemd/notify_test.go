package systemd

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// listen returns a Notifier sending to a socket of the test's and a
// function returning the next datagram received.
func listen(t *testing.T) (*Notifier, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	n := NewNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:k])
	}
	return n, next
}

func TestNotifierStatus(t *testing.T) {
	t.Run("the server's status shows until READY, then the sync state", func(t *testing.T) {
		n, next := listen(t)
		n.Status("measuring fsync latency of /var/lib/fjord/db")
		if got := next(); got != "STATUS=measuring fsync latency of /var/lib/fjord/db" {
			t.Fatalf("got %q", got)
		}
		// A sync result before READY does not replace the start-up status.
		n.Application("payment-gateway-oslo", "synced payment-gateway-oslo @3f2c1ab (42 objects, Healthy)", false)
		n.Status("control plane ready")
		if got := next(); got != "STATUS=control plane ready" {
			t.Fatalf("got %q", got)
		}
		n.Ready()
		if got := next(); got != "READY=1" {
			t.Fatalf("got %q", got)
		}
		if got := next(); got != "STATUS=synced payment-gateway-oslo @3f2c1ab (42 objects, Healthy)" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("after READY the latest of server status and sync state shows", func(t *testing.T) {
		n, next := listen(t)
		n.Ready()
		next()
		n.Status("kube-apiserver not ready: connection refused")
		if got := next(); got != "STATUS=kube-apiserver not ready: connection refused" {
			t.Fatalf("got %q", got)
		}
		n.Application("a", "a @1234567: ComparisonError: fetching: host unreachable", true)
		if got := next(); got != "STATUS=a @1234567: ComparisonError: fetching: host unreachable" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("several applications: failing ones first, then by name", func(t *testing.T) {
		n, next := listen(t)
		n.Ready()
		next()
		n.Application("b", "synced b @1 (1 object, Healthy)", false)
		next()
		n.Application("c", "c: ComparisonError: x", true)
		next()
		n.Application("a", "synced a @2 (2 objects, Healthy)", false)
		if got := next(); got != "STATUS=c: ComparisonError: x; synced a @2 (2 objects, Healthy); synced b @1 (1 object, Healthy)" {
			t.Fatalf("got %q", got)
		}
		n.Application("c", "", false) // deleted
		if got := next(); got != "STATUS=synced a @2 (2 objects, Healthy); synced b @1 (1 object, Healthy)" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("many applications are counted", func(t *testing.T) {
		n, next := listen(t)
		n.Ready()
		next()
		for _, name := range []string{"a", "b", "c"} {
			n.Application(name, "synced "+name, false)
			next()
		}
		n.Application("d", "synced d", false)
		if got := next(); got != "STATUS=4 applications, none failing" {
			t.Fatalf("got %q", got)
		}
		n.Application("e", "e: SyncError: refused", true)
		if got := next(); got != "STATUS=5 applications, 1 failing: e: SyncError: refused" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a status with newlines stays one assignment", func(t *testing.T) {
		n, next := listen(t)
		n.Status("invalid configuration:\nkey \"a\"\n  key \"b\"")
		if got := next(); got != `STATUS=invalid configuration: key "a" key "b"` {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("EXTEND_TIMEOUT_USEC is in microseconds", func(t *testing.T) {
		n, next := listen(t)
		n.ExtendTimeout(90 * time.Second)
		if got := next(); got != "EXTEND_TIMEOUT_USEC=90000000" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("without NOTIFY_SOCKET nothing is sent and nothing fails", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		n := NewNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
		n.Status("x")
		n.Ready()
		n.Application("a", "synced a", false)
		n.ExtendTimeout(time.Second)
	})
}
