package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultReadyTimeout bounds how long the Manager waits for one component's Ready.
const DefaultReadyTimeout = 3 * time.Minute

// Manager runs components in their declared order. It starts each one and waits
// for it to be ready before starting the next (for a StartSuffices component,
// it waits alongside the next ones); on a failure it stops the ones already
// started in reverse order and joins every error.
type Manager struct {
	log          *slog.Logger
	components   []Component
	started      []Component
	readyTimeout time.Duration
}

// NewManager returns a Manager for the components, in start order.
func NewManager(log *slog.Logger, readyTimeout time.Duration, components ...Component) *Manager {
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	return &Manager{log: log, components: components, readyTimeout: readyTimeout}
}

// Start initialises, starts and waits for every component in order. When one
// fails, the ones already started are stopped (in reverse order) before Start
// returns the joined errors.
func (m *Manager) Start(ctx context.Context) error {
	for _, c := range m.components {
		if err := c.Init(ctx); err != nil {
			return errors.Join(fmt.Errorf("initialising %s: %w", c.Name(), err), m.Stop(context.WithoutCancel(ctx)))
		}
	}
	var pending []chan error // readiness of StartSuffices components
	pctx, cancelPending := context.WithCancel(ctx)
	defer cancelPending()
	ready := func(ctx context.Context, c Component, begin time.Time) error {
		if err := m.waitReady(ctx, c); err != nil {
			return err
		}
		m.log.Info("component ready", "component", c.Name(), "took", time.Since(begin).Round(time.Millisecond))
		return nil
	}
	fail := func(err error) error {
		cancelPending()
		for _, p := range pending {
			<-p // no Ready outlives Start
		}
		return errors.Join(err, m.Stop(context.WithoutCancel(ctx)))
	}
	for _, c := range m.components {
		begin := time.Now()
		m.started = append(m.started, c)
		if err := c.Start(ctx); err != nil {
			return fail(fmt.Errorf("starting %s: %w", c.Name(), err))
		}
		if _, ok := c.(StartSuffices); ok {
			p := make(chan error, 1)
			go func() { p <- ready(pctx, c, begin) }()
			pending = append(pending, p)
			continue
		}
		if err := ready(ctx, c, begin); err != nil {
			return fail(err)
		}
	}
	var errs []error
	for _, p := range pending {
		errs = append(errs, <-p)
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, m.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

func (m *Manager) waitReady(ctx context.Context, c Component) error {
	rctx, cancel := context.WithTimeout(ctx, m.readyTimeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- c.Ready(rctx) }()
	select {
	case err := <-ready:
		if err != nil {
			if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("waiting for %s: not ready after %s: %w", c.Name(), m.readyTimeout, err)
			}
			return fmt.Errorf("waiting for %s: %w", c.Name(), err)
		}
		return nil
	case err := <-c.Err():
		return fmt.Errorf("%s failed while starting: %w", c.Name(), orUnknown(err))
	}
}

// Wait blocks until ctx ends (nil) or a started component fails (its error).
func (m *Manager) Wait(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, len(m.started))
	for _, c := range m.started {
		ch := c.Err()
		if ch == nil {
			continue
		}
		go func() {
			select {
			case err := <-ch:
				failed <- fmt.Errorf("%s stopped: %w", c.Name(), orUnknown(err))
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// Stop stops the started components in reverse order, each within ctx's
// deadline, and joins their errors. It may be called more than once.
func (m *Manager) Stop(ctx context.Context) error {
	var errs []error
	for i := len(m.started) - 1; i >= 0; i-- {
		c := m.started[i]
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", c.Name(), err))
		}
	}
	m.started = nil
	return errors.Join(errs...)
}

func orUnknown(err error) error {
	if err == nil {
		return errors.New("exited without an error")
	}
	return err
}
