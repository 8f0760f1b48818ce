package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// retry runs fn until it succeeds, fails terminally, runs out of attempts or
// ctx ends, waiting with exponential backoff between attempts. Each attempt
// gets Options.Timeout. The error returned is the last attempt's.
func (c *Cache) retry(ctx context.Context, h *handle, what string, fn func(context.Context) error) error {
	delay := c.opts.Retry.InitialDelay
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		err := fn(actx)
		if err != nil && actx.Err() != nil && !errors.Is(err, actx.Err()) {
			// The transport reports a connection closed under it; the
			// cause is the deadline or cancellation.
			err = fmt.Errorf("%w: %w", actx.Err(), err)
		}
		if err != nil && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", c.opts.Timeout, err)
		}
		cancel()
		if err == nil {
			return nil
		}
		if classify(err).Terminal() || ctx.Err() != nil || attempt >= c.opts.Retry.Attempts {
			if attempt > 1 {
				err = fmt.Errorf("%s, attempt %d of %d: %w", what, attempt, c.opts.Retry.Attempts, err)
			}
			return err
		}
		c.log.Debug("git operation failed; retrying", "url", h.ep.redacted, "op", what,
			"attempt", attempt, "delay", delay, "err", h.red.redact(err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s, attempt %d of %d: %w", what, attempt, c.opts.Retry.Attempts, err)
		case <-t.C:
		}
		delay = min(delay*2, c.opts.Retry.MaxDelay)
	}
}

// isNetworkError reports whether err is the network failing: a refused,
// reset or timed-out connection, a DNS failure, a connection cut short.
func isNetworkError(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
