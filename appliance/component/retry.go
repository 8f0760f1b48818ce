package component

import (
	"context"
	"log/slog"
	"time"
)

// Retry calls fn until it succeeds or ctx ends, waiting 200 ms and then
// twice as long each time (at most 10 s). It is how a component registers
// what it needs in a cluster that may still be starting (a fresh API server
// serves kube-system and every API group only after a few seconds): failures
// are logged at debug level, and as warnings once they have lasted 30 s, as
// "<what>; will retry". It returns whether fn succeeded.
func Retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) bool {
	start := time.Now()
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		err := fn(ctx)
		if err == nil {
			return true
		}
		logf := log.Debug
		if time.Since(start) > 30*time.Second {
			logf = log.Warn
		}
		logf(what+"; will retry", "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}
