// Package systemd connects Fjord to systemd: readiness and status
// notifications (sd_notify) and the watchdog, for `Type=notify` units.
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
package systemd

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages to the service manager.
//
// It takes NOTIFY_SOCKET and the watchdog settings out of the environment
// when it is made: the embedded kube-apiserver sends its own READY=1 as
// soon as it listens (before /readyz is ok) and then unsets NOTIFY_SOCKET,
// which would both tell systemd too early and silence every later message
// (the watchdog included, so systemd would kill a healthy server).
//
// The status line it sends is the server's own (Status) until READY=1; from
// then on the latest of the server's status and the Applications' sync
// state (Application) is shown.
type Notifier struct {
	log      *slog.Logger
	socket   string
	watchdog time.Duration

	mu    sync.Mutex
	ready bool
	apps  map[string]appLine
}

// appLine is the sync state of one Application.
type appLine struct {
	line    string
	failing bool
}

// NewNotifier returns a Notifier that logs (at debug) when sending fails.
// Make it before anything else can read NOTIFY_SOCKET.
func NewNotifier(log *slog.Logger) *Notifier {
	n := &Notifier{log: log, socket: os.Getenv("NOTIFY_SOCKET")}
	n.watchdog, _ = daemon.SdWatchdogEnabled(true)
	os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// send writes one datagram to the service manager's socket, as sd_notify(3)
// does (a name starting with @ is an abstract socket, which Go maps itself).
func (n *Notifier) send(state string) {
	if n.socket == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		n.log.Debug("sd_notify failed", "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		n.log.Debug("sd_notify failed", "err", err)
	}
}

// Ready tells systemd the service is up (READY=1): the server has settled
// (appliance.Hooks.Ready).
// The status then shows the Applications' sync state when one is known.
func (n *Notifier) Ready() {
	n.send(daemon.SdNotifyReady)
	n.mu.Lock()
	n.ready = true
	if len(n.apps) > 0 {
		n.Status(n.appsStatus())
	}
	n.mu.Unlock()
}

// Status sets the one-line status `systemctl status` shows.
func (n *Notifier) Status(s string) { n.send("STATUS=" + oneLine(s)) }

// Application records the sync state of the Application name as a line
// (`synced NAME @REV (N objects, Healthy)` or its error); an empty line
// forgets it. After READY=1 the status then shows every Application's state.
func (n *Notifier) Application(name, line string, failing bool) {
	n.mu.Lock()
	if n.apps == nil {
		n.apps = map[string]appLine{}
	}
	if line == "" {
		delete(n.apps, name)
	} else {
		n.apps[name] = appLine{line: line, failing: failing}
	}
	// Sent under the lock, so two Applications' updates arrive in order.
	if n.ready && len(n.apps) > 0 {
		n.Status(n.appsStatus())
	}
	n.mu.Unlock()
}

// appsStatus joins the Applications' lines, failing ones first; with many
// Applications it counts them and names the first failure. Call with n.mu held.
func (n *Notifier) appsStatus() string {
	names := make([]string, 0, len(n.apps))
	failing := 0
	for name, a := range n.apps {
		names = append(names, name)
		if a.failing {
			failing++
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := n.apps[names[i]], n.apps[names[j]]
		if a.failing != b.failing {
			return a.failing
		}
		return names[i] < names[j]
	})
	if len(names) <= 3 {
		lines := make([]string, len(names))
		for i, name := range names {
			lines[i] = n.apps[name].line
		}
		return strings.Join(lines, "; ")
	}
	if failing == 0 {
		return strconv.Itoa(len(names)) + " applications, none failing"
	}
	return strconv.Itoa(len(names)) + " applications, " + strconv.Itoa(failing) + " failing: " + n.apps[names[0]].line
}

// ExtendTimeout asks systemd for d more to finish the current phase
// (EXTEND_TIMEOUT_USEC): a start-up step whose length depends on the disk
// (the fsync gate) does not then count against TimeoutStartSec. It is one
// bounded extension, not a keep-alive, so a step that hangs still times out.
func (n *Notifier) ExtendTimeout(d time.Duration) {
	n.send("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// oneLine keeps a status on one line: the notify protocol is newline
// separated, so a newline would end STATUS= and start another assignment.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Stopping tells systemd a clean shutdown began.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Watchdog pings systemd at half the unit's WatchdogSec until ctx ends, while
// alive reports true. It returns at once when the unit has no watchdog.
func (n *Notifier) Watchdog(ctx context.Context, alive func() bool) {
	if n.watchdog == 0 {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive == nil || alive() {
				n.send(daemon.SdNotifyWatchdog)
			}
		}
	}
}
