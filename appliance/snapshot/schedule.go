package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/fjord-dev/fjord/appliance/component"
)

// Result is one snapshot taken.
type Result struct {
	File     string
	Manifest Manifest
	Size     int64 // bytes on disk
	Took     time.Duration
}

// Schedule's metrics, on the API server's /metrics.
var (
	scheduledTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fjord_snapshot_scheduled_total",
		Help: "Scheduled snapshots, by result (success, failure).",
	}, []string{"result"})
	lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_snapshot_last_success_timestamp_seconds",
		Help: "When the last scheduled snapshot was written (Unix time).",
	})
	lastFailure = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_snapshot_last_failure_timestamp_seconds",
		Help: "When the last scheduled snapshot failed (Unix time).",
	})
	lastSize = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_snapshot_last_size_bytes",
		Help: "Size of the last scheduled snapshot file.",
	})
)

func init() {
	legacyregistry.RawMustRegister(scheduledTotal, lastSuccess, lastFailure, lastSize)
}

// Hooks report a scheduled snapshot's outcome beyond the log and metrics.
type Hooks struct {
	// Save takes one snapshot named name into dir.
	Save func(ctx context.Context, dir, name string) (Result, error)
	// Status shows a one-line status (systemd STATUS); "" clears it.
	Status func(line string, failing bool)
	// Event records a Kubernetes event: warning or not, a reason, a message.
	Event func(ctx context.Context, warning bool, reason, message string)
}

// Scheduler takes a snapshot at every tick of snapshot.schedule, then
// prunes scheduled snapshots beyond snapshot.retention, oldest first. A
// failed snapshot is logged, counted, shown in the status line and recorded
// as an event; it never stops the server.
type Scheduler struct {
	cfg   Config
	dir   string
	node  string
	hooks Hooks
	log   *slog.Logger
	sched cron.Schedule
	now   func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ component.Component = (*Scheduler)(nil)

// NewScheduler returns the component; dir is where snapshots go.
func NewScheduler(cfg Config, dir, node string, log *slog.Logger, hooks Hooks) *Scheduler {
	return &Scheduler{cfg: cfg, dir: dir, node: node, hooks: hooks, log: log.With("component", "snapshot"), now: time.Now}
}

// Name implements component.Component.
func (s *Scheduler) Name() string { return "snapshot-schedule" }

// Init parses the schedule.
func (s *Scheduler) Init(context.Context) error {
	sched, err := ParseSchedule(s.cfg.Schedule)
	if err != nil {
		return fmt.Errorf("snapshot.schedule: %w", err)
	}
	s.sched = sched
	return nil
}

// Start begins waiting for the first tick.
func (s *Scheduler) Start(ctx context.Context) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() { s.loop(rctx) })
	s.log.Info("scheduled snapshots", "schedule", s.cfg.Schedule, "retention", s.cfg.Retention, "dir", s.dir,
		"next", s.sched.Next(s.now()).Format(time.RFC3339))
	return nil
}

// Ready is immediate: nothing waits for a snapshot.
func (s *Scheduler) Ready(context.Context) error { return nil }

// Err is nil: a failed snapshot is reported, never fatal.
func (s *Scheduler) Err() <-chan error { return nil }

// Stop ends the loop; a snapshot being written is abandoned (its
// temporary file removed) when ctx ends first.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snapshot schedule did not stop in time: %w", ctx.Err())
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	for {
		next := s.sched.Next(s.now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.RunOnce(ctx)
	}
}

// RunOnce takes one scheduled snapshot and applies retention.
func (s *Scheduler) RunOnce(ctx context.Context) {
	name := DefaultName(TriggerScheduled, s.node, s.now())
	res, err := s.hooks.Save(ctx, s.dir, name)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		scheduledTotal.WithLabelValues("failure").Inc()
		lastFailure.SetToCurrentTime()
		s.log.Error("scheduled snapshot failed", "name", name, "err", err)
		if s.hooks.Status != nil {
			s.hooks.Status("snapshot failed: "+err.Error(), true)
		}
		if s.hooks.Event != nil {
			s.hooks.Event(ctx, true, "SnapshotFailed", fmt.Sprintf("scheduled snapshot %s failed: %v", name, err))
		}
		return
	}
	scheduledTotal.WithLabelValues("success").Inc()
	lastSuccess.SetToCurrentTime()
	lastSize.Set(float64(res.Size))
	removed, err := Prune(s.dir, TriggerScheduled, s.cfg.Retention)
	for _, r := range removed {
		s.log.Info("pruned snapshot", "file", r)
	}
	if err != nil {
		s.log.Warn("pruning old snapshots", "err", err)
	}
	s.log.Info("scheduled snapshot written", "file", res.File, "bytes", res.Size, "took", res.Took.Round(time.Millisecond), "pruned", len(removed))
	if s.hooks.Status != nil {
		s.hooks.Status("", false)
	}
	if s.hooks.Event != nil {
		s.hooks.Event(ctx, false, "SnapshotSaved", fmt.Sprintf("scheduled snapshot %s written (%d bytes)", res.File, res.Size))
	}
}
