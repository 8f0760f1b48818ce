package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/endpoint"
	"github.com/sirupsen/logrus"

	"github.com/fjord-dev/fjord/appliance/component"
)

// Kine serves the etcd API the API server speaks from a SQL database: SQLite
// in the data dir, or PostgreSQL / MySQL for users who outgrow one node. It
// listens on a unix socket in the data dir, so only the node reaches it.
type Kine struct {
	cfg    Config
	kind   Kind
	dir    string
	log    *slog.Logger
	socket string

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	result  chan error
	backend Backend
}

var _ component.Component = (*Kine)(nil)

func newKine(cfg Config, rt Runtime, kind Kind, dir string) *Kine {
	return &Kine{
		cfg:    cfg,
		kind:   kind,
		dir:    dir,
		log:    rt.Log.With("component", "kine", "backend", string(kind)),
		socket: filepath.Join(dir, "kine.sock"),
		result: make(chan error, 1),
	}
}

// Name implements component.Component.
func (k *Kine) Name() string { return "kine" }

// Dir is where kine keeps its socket (and SQLite database by default).
func (k *Kine) Dir() string { return k.dir }

// Init creates the directory and removes a socket left by a killed process.
func (k *Kine) Init(context.Context) error {
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", k.dir, err)
	}
	if err := os.Remove(k.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", k.socket, err)
	}
	routeLogrus(k.log)
	return nil
}

// dsn is the endpoint kine's driver gets. An SQLite path without parameters
// gets kine's defaults (WAL, busy timeout); an empty path is <data-dir>/db/state.db.
func (k *Kine) dsn() string {
	if k.kind != KindSQLite {
		return k.cfg.Endpoint
	}
	path := strings.TrimPrefix(k.cfg.Endpoint, "sqlite://")
	if path == "" || strings.HasPrefix(path, "?") {
		path = filepath.Join(k.dir, "state.db") + path
	}
	if !strings.Contains(path, "?") {
		path += "?" + sqlite.DefaultParams
	}
	return "sqlite://" + path
}

// SQLitePath is the SQLite database file of a sqlite:// endpoint:
// <data-dir>/db/state.db unless the endpoint names one.
func (c Config) SQLitePath(dataDir string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(c.Endpoint, "sqlite://"), "?")
	if path == "" {
		return filepath.Join(dataDir, "db", "state.db")
	}
	return path
}

// Start begins connecting to the database in the background.
func (k *Kine) Start(ctx context.Context) error {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	cfg := endpoint.Config{
		Listener:  "unix://" + k.socket,
		Endpoint:  k.dsn(),
		WaitGroup: &k.wg,
		ConnectionPoolConfig: generic.ConnectionPoolConfig{
			MaxIdle:     5,
			MaxIdleTime: 2 * time.Minute,
		},
		// kine's zero values are not its defaults: every field is set here.
		NotifyInterval:        5 * time.Second,
		EmulatedETCDVersion:   "3.6.11",
		CompactInterval:       5 * time.Minute,
		CompactIntervalJitter: 5,
		CompactTimeout:        5 * time.Second,
		CompactMinRetain:      1000,
		CompactBatchSize:      1000,
		PollBatchSize:         500,
		PollInterval:          time.Second,
		LogFormat:             "plain",
	}
	cfg.BackendTLSConfig.CAFile = k.cfg.CAFile
	cfg.BackendTLSConfig.CertFile = k.cfg.CertFile
	cfg.BackendTLSConfig.KeyFile = k.cfg.KeyFile
	go func() {
		etcd, err := endpoint.Listen(kctx, cfg)
		if err != nil {
			// kine's own errors leave the endpoint out; keep it that way.
			k.result <- fmt.Errorf("starting kine on %s: %w", k.kind, err)
			return
		}
		k.backend = Backend{Servers: etcd.Endpoints}
		k.result <- nil
	}()
	return nil
}

// Ready waits until kine serves on its socket.
func (k *Kine) Ready(ctx context.Context) error {
	select {
	case err := <-k.result:
		k.result <- err
		return err
	case <-ctx.Done():
		return fmt.Errorf("connecting to the %s datastore: %w", k.kind, ctx.Err())
	}
}

// Err is nil: kine does not report failures after it started serving; the
// API server's own health checks see a dead datastore.
func (k *Kine) Err() <-chan error { return nil }

// Stop shuts kine's server down and waits for its goroutines.
func (k *Kine) Stop(ctx context.Context) error {
	if k.cancel == nil {
		return nil
	}
	k.cancel()
	k.cancel = nil
	done := make(chan struct{})
	go func() {
		k.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kine did not stop in time: %w", ctx.Err())
	}
}

// Backend returns kine's unix socket endpoint.
func (k *Kine) Backend() Backend { return k.backend }

var routeOnce sync.Once

// routeLogrus sends kine's logrus output through slog (warnings and worse).
func routeLogrus(log *slog.Logger) {
	routeOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.WarnLevel)
		logrus.AddHook(logrusHook{log: log})
	})
}

type logrusHook struct{ log *slog.Logger }

func (h logrusHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelWarn
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, e.Message)
	return nil
}
