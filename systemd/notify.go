// Package systemd connects Fjord to systemd: readiness and status
// notifications (sd_notify) and the watchdog, for `Type=notify` units.
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
package systemd

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages to the service manager.
type Notifier struct {
	log *slog.Logger
}

// NewNotifier returns a Notifier that logs (at debug) when sending fails.
func NewNotifier(log *slog.Logger) *Notifier { return &Notifier{log: log} }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
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
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
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
