package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Systemctl drives the service manager through the systemctl command, the
// way a person would (it needs no D-Bus: as root systemctl talks to systemd
// over its private socket).
type Systemctl struct {
	// Run runs systemctl with args and returns its standard output; nil runs
	// the systemctl in PATH. Tests replace it.
	Run func(ctx context.Context, args ...string) (string, error)
	// Poll is how often WaitReady asks; 0 means half a second.
	Poll time.Duration
}

func (s Systemctl) run(ctx context.Context, args ...string) (string, error) {
	if s.Run != nil {
		return s.Run(ctx, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

// Do runs one systemctl command (daemon-reload, enable UNIT, …).
func (s Systemctl) Do(ctx context.Context, args ...string) error {
	_, err := s.run(ctx, args...)
	return err
}

// UnitState is what `systemctl show` tells of a unit.
type UnitState struct {
	ActiveState  string // active, activating, failed, …
	SubState     string // running, start, auto-restart, …
	StatusText   string // the service's STATUS=
	Result       string // success, exit-code, timeout, watchdog, …
	InvocationID string // changes with every start
}

// Show returns the unit's state.
func (s Systemctl) Show(ctx context.Context, unit string) (UnitState, error) {
	out, err := s.run(ctx, "show", "--property=ActiveState", "--property=SubState", "--property=StatusText",
		"--property=Result", "--property=InvocationID", unit)
	if err != nil {
		return UnitState{}, err
	}
	var st UnitState
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "ActiveState":
			st.ActiveState = v
		case "SubState":
			st.SubState = v
		case "StatusText":
			st.StatusText = v
		case "Result":
			st.Result = v
		case "InvocationID":
			st.InvocationID = v
		}
	}
	return st, nil
}

// Running reports whether the unit is up or on its way up.
func (st UnitState) Running() bool {
	switch st.ActiveState {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

// ErrNotReady is returned (wrapped) by WaitReady when the unit failed to start.
var ErrNotReady = errors.New("not ready")

// WaitReady waits until the unit runs in an invocation other than previous
// (the one before a restart was asked for): for a Type=notify unit that is
// once it sent READY=1. Every new STATUS is printed to w as it comes. It
// fails when the start failed (the unit failed, or is waiting to be
// restarted) or timeout passed.
func (s Systemctl) WaitReady(ctx context.Context, w io.Writer, unit, previous string, timeout time.Duration) error {
	poll := s.Poll
	if poll == 0 {
		poll = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(poll)
	defer t.Stop()
	var last UnitState
	for {
		st, err := s.Show(ctx, unit)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			if st.StatusText != "" && st.StatusText != last.StatusText {
				fmt.Fprintf(w, "%s: %s\n", unit, st.StatusText)
			}
			last = st
			if st.InvocationID != "" && st.InvocationID != previous {
				switch {
				case st.ActiveState == "active" && st.SubState == "running":
					return nil
				case st.ActiveState == "failed", st.SubState == "auto-restart", st.ActiveState == "inactive":
					return fmt.Errorf("%s did not start (%s, result %s)%s; see journalctl -u %s: %w",
						unit, describe(st), st.Result, lastStatus(st), unit, ErrNotReady)
				}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s is not ready after %s (%s)%s; it may still come up: systemctl status %s",
					unit, timeout, describe(last), lastStatus(last), unit)
			}
			return fmt.Errorf("waiting for %s: %w", unit, ctx.Err())
		case <-t.C:
		}
	}
}

func describe(st UnitState) string {
	if st.ActiveState == "" {
		return "state unknown"
	}
	return st.ActiveState + "/" + st.SubState
}

func lastStatus(st UnitState) string {
	if st.StatusText == "" {
		return ""
	}
	return ": " + st.StatusText
}
