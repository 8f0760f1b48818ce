//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifySocket is the sd_notify socket systemd would hold: it records every
// datagram fjord sends, with its arrival time.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []notifyMsg
}

type notifyMsg struct {
	at   time.Time
	text string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:k])), "\n") {
				n.msgs = append(n.msgs, notifyMsg{at: time.Now(), text: line})
			}
			n.mu.Unlock()
		}
	}()
	return n
}

// since returns the messages that arrived after from.
func (n *notifySocket) since(from time.Time) []notifyMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notifyMsg
	for _, m := range n.msgs {
		if m.at.After(from) {
			out = append(out, m)
		}
	}
	return out
}

// first returns when text (a prefix) first arrived after from.
func (n *notifySocket) first(from time.Time, prefix string) (time.Time, bool) {
	for _, m := range n.since(from) {
		if strings.HasPrefix(m.text, prefix) {
			return m.at, true
		}
	}
	return time.Time{}, false
}

func (n *notifySocket) count(from time.Time, text string) int {
	c := 0
	for _, m := range n.since(from) {
		if m.text == text {
			c++
		}
	}
	return c
}

// TestSystemdWatchdogFollowsTheAPIServer runs fjord as systemd would (a
// notify socket and WATCHDOG_USEC): READY=1 comes once the control plane
// serves, the watchdog is pinged only while kube-apiserver is ready, the
// status line says why it stopped, and pings resume with the datastore.
func TestSystemdWatchdogFollowsTheAPIServer(t *testing.T) {
	endpoint, db := postgresDatabase(t)
	n := listenNotify(t)
	s := newServer(t, "--datastore-endpoint", endpoint, "--gitops.disable", "--sealing.disable")
	s.env = []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=2000000"}
	begin := time.Now()
	s.start()
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range n.since(begin) {
				t.Logf("notify %s %s", m.at.Sub(begin).Round(time.Millisecond), m.text)
			}
		}
	})
	var ready time.Time
	eventually(t, 2*time.Minute, "READY=1", func() error {
		var ok bool
		if ready, ok = n.first(begin, "READY=1"); !ok {
			return errString("no READY=1 yet")
		}
		return nil
	})
	if ping, ok := n.first(begin, "WATCHDOG=1"); ok && ping.Before(ready) {
		t.Fatal("the watchdog was pinged before READY=1")
	}
	if out, err := s.kubectl("get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("READY=1 before /readyz is ok: %v %s", err, out)
	}
	eventually(t, 10*time.Second, "watchdog pings", func() error {
		if n.count(ready, "WATCHDOG=1") < 2 {
			return errString("fewer than 2 pings")
		}
		return nil
	})

	// kube-controller-manager exits (and fjord with it, for systemd to
	// restart) when the datastore fails while it is still starting its
	// controllers; each makes its ServiceAccount, so wait until they stop coming.
	last := -1
	eventually(t, time.Minute, "the controllers started", func() error {
		out := s.mustKubectl("get", "serviceaccounts", "-n", "kube-system", "-o", "name")
		count := strings.Count(out, "\n")
		if count < 10 || count != last {
			last = count
			time.Sleep(3 * time.Second)
			return errString(fmt.Sprintf("%d ServiceAccounts in kube-system", count))
		}
		return nil
	})

	// The datastore goes away: /readyz fails, the pings stop, the status says so.
	psql(t, "ALTER DATABASE "+db+" CONNECTION LIMIT 0")
	psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+db+"'")
	cut := time.Now()
	var down time.Time
	eventually(t, time.Minute, "STATUS=kube-apiserver not ready", func() error {
		var ok bool
		if down, ok = n.first(cut, "STATUS=kube-apiserver not ready"); !ok {
			return errString("no such status yet")
		}
		return nil
	})
	time.Sleep(5 * time.Second) // more than twice WATCHDOG_USEC: systemd would restart now
	if c := n.count(down, "WATCHDOG=1"); c > 0 {
		t.Fatalf("%d watchdog pings while kube-apiserver was not ready", c)
	}
	if !s.running() {
		t.Fatal("fjord exited on its own; systemd's watchdog is what restarts it")
	}

	// Back: the pings resume.
	psql(t, "ALTER DATABASE "+db+" CONNECTION LIMIT -1")
	back := time.Now()
	eventually(t, time.Minute, "pings after the datastore is back", func() error {
		if n.count(back, "WATCHDOG=1") == 0 {
			return errString("no ping yet")
		}
		return nil
	})
	if _, ok := n.first(back, "STATUS=control plane ready"); !ok {
		t.Fatal("the status line did not return to ready")
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.waitExit(time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if _, ok := n.first(back, "STOPPING=1"); !ok {
		t.Fatal("no STOPPING=1")
	}
}

type errString string

func (e errString) Error() string { return string(e) }
