package component

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeComponent records its lifecycle calls in a shared journal.
type fakeComponent struct {
	name                     string
	journal                  *journal
	initErr, startErr, stopE error
	readyErr                 error
	readyBlocks              bool
	errc                     chan error
}

type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.calls)
}

func (f *fakeComponent) Name() string { return f.name }
func (f *fakeComponent) Init(context.Context) error {
	f.journal.add("init " + f.name)
	return f.initErr
}
func (f *fakeComponent) Start(context.Context) error {
	f.journal.add("start " + f.name)
	return f.startErr
}
func (f *fakeComponent) Ready(ctx context.Context) error {
	if f.readyBlocks {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.readyErr
}
func (f *fakeComponent) Stop(context.Context) error {
	f.journal.add("stop " + f.name)
	return f.stopE
}
func (f *fakeComponent) Err() <-chan error { return f.errc }

func newFakes(j *journal, names ...string) []*fakeComponent {
	var fs []*fakeComponent
	for _, n := range names {
		fs = append(fs, &fakeComponent{name: n, journal: j, errc: make(chan error, 1)})
	}
	return fs
}

func asComponents(fs []*fakeComponent) []Component {
	cs := make([]Component, len(fs))
	for i, f := range fs {
		cs[i] = f
	}
	return cs
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestManager(t *testing.T) {
	t.Run("starts in order and stops in reverse order", func(t *testing.T) {
		j := &journal{}
		m := NewManager(quiet, time.Second, asComponents(newFakes(j, "a", "b", "c"))...)
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := m.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := []string{"init a", "init b", "init c", "start a", "start b", "start c", "stop c", "stop b", "stop a"}
		if got := j.get(); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("a failed start stops only what started, in reverse", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b", "c")
		fs[1].startErr = errors.New("boom")
		m := NewManager(quiet, time.Second, asComponents(fs)...)
		err := m.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "starting b: boom") {
			t.Fatalf("got %v", err)
		}
		want := []string{"init a", "init b", "init c", "start a", "start b", "stop b", "stop a"}
		if got := j.get(); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("a failed init starts nothing", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b")
		fs[1].initErr = errors.New("no disk")
		err := NewManager(quiet, time.Second, asComponents(fs)...).Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "initialising b: no disk") {
			t.Fatalf("got %v", err)
		}
		if got := j.get(); !slices.Equal(got, []string{"init a", "init b"}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a component never ready times out and is stopped", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "slow")
		fs[1].readyBlocks = true
		err := NewManager(quiet, 50*time.Millisecond, asComponents(fs)...).Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "waiting for slow: not ready after 50ms") {
			t.Fatalf("got %v", err)
		}
		if got := j.get(); !slices.Contains(got, "stop slow") || !slices.Contains(got, "stop a") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a component dying while starting is reported", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "dies")
		fs[0].readyBlocks = true
		fs[0].errc <- errors.New("crashed")
		err := NewManager(quiet, time.Minute, asComponents(fs)...).Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "dies failed while starting: crashed") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("stop errors are all joined", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b")
		fs[0].stopE = errors.New("a stuck")
		fs[1].stopE = errors.New("b stuck")
		m := NewManager(quiet, time.Second, asComponents(fs)...)
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := m.Stop(t.Context())
		if err == nil || !strings.Contains(err.Error(), "a stuck") || !strings.Contains(err.Error(), "b stuck") {
			t.Fatalf("got %v", err)
		}
		if err := m.Stop(t.Context()); err != nil {
			t.Fatalf("a second Stop: %v", err)
		}
	})
	t.Run("Wait returns the first component failure", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b")
		m := NewManager(quiet, time.Second, asComponents(fs)...)
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		fs[1].errc <- errors.New("lost its disk")
		err := m.Wait(t.Context())
		if err == nil || err.Error() != "b stopped: lost its disk" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("Wait returns nil when the context ends", func(t *testing.T) {
		j := &journal{}
		m := NewManager(quiet, time.Second, asComponents(newFakes(j, "a"))...)
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := m.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// overlapping is a fake whose successors need only its Start.
type overlapping struct {
	*fakeComponent
	release chan struct{}
}

func (o overlapping) StartSuffices() {}

func (o overlapping) Ready(ctx context.Context) error {
	o.journal.add("ready? " + o.name)
	select {
	case <-o.release:
		o.journal.add("ready " + o.name)
		return o.readyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestManagerStartSuffices(t *testing.T) {
	t.Run("the next component starts before a StartSuffices one is ready, and Start waits for both", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b")
		a := overlapping{fakeComponent: fs[0], release: make(chan struct{})}
		m := NewManager(quiet, time.Second, a, fs[1])
		done := make(chan error, 1)
		go func() { done <- m.Start(t.Context()) }()
		deadline := time.Now().Add(time.Second)
		for !slices.Contains(j.get(), "start b") {
			if time.Now().After(deadline) {
				t.Fatalf("b did not start while a was not ready: %v", j.get())
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case err := <-done:
			t.Fatalf("Start returned before a was ready: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(a.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := j.get(); !slices.Contains(got, "ready a") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("its failing Ready fails Start and stops everything", func(t *testing.T) {
		j := &journal{}
		fs := newFakes(j, "a", "b")
		a := overlapping{fakeComponent: fs[0], release: make(chan struct{})}
		a.readyErr = errors.New("cache never synced")
		close(a.release)
		err := NewManager(quiet, time.Second, a, fs[1]).Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "waiting for a: cache never synced") {
			t.Fatalf("got %v", err)
		}
		if got := j.get(); !slices.Contains(got, "stop b") || !slices.Contains(got, "stop a") {
			t.Fatalf("got %v", got)
		}
	})
}
