package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// permanent wraps an error that ends a poll at once.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// poll calls fn every interval until it returns nil, a permanent error, or
// ctx ends (then the last error says what was awaited).
func poll(ctx context.Context, interval time.Duration, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// httpOK GETs url and wants 200.
func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// stopWait cancels a background run and waits for it within ctx's deadline.
// It may be called more than once, and before Start.
func stopWait(ctx context.Context, cancel *context.CancelFunc, done chan struct{}) error {
	if *cancel == nil {
		return nil
	}
	(*cancel)()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not stopped in time: %w", ctx.Err())
	}
}
