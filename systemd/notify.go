// Package systemd connects Fjord to systemd: readiness and status
// notifications (sd_notify) and the watchdog, for `Type=notify` units.
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
package systemd

import (
	"context"
	"log/slog"
	"net"
	"os"
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
type Notifier struct {
	log      *slog.Logger
	socket   string
	watchdog time.Duration
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

// Ready tells systemd the service is up (READY=1): the control plane serves.
func (n *Notifier) Ready() { n.send(daemon.SdNotifyReady) }

// Status sets the one-line status `systemctl status` shows.
func (n *Notifier) Status(s string) { n.send("STATUS=" + s) }

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
