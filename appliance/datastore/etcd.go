package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/fjord-dev/fjord/appliance/component"
)

// The embedded member's name and cluster token; a restored snapshot gets
// the same (datastore.Restore).
const (
	etcdMemberName   = "fjord"
	etcdClusterToken = "etcd-cluster"
)

// Etcd is the embedded single-member etcd, reachable only on loopback with a
// client certificate signed by the data dir's etcd CA.
type Etcd struct {
	cfg  Config
	rt   Runtime
	dir  string
	log  *slog.Logger
	etcd *embed.Etcd
	errc chan error
}

var _ component.Component = (*Etcd)(nil)

func newEtcd(cfg Config, rt Runtime, dir string) *Etcd {
	return &Etcd{cfg: cfg, rt: rt, dir: dir, log: rt.Log.With("component", "etcd"), errc: make(chan error, 1)}
}

// Name implements component.Component.
func (e *Etcd) Name() string { return "etcd" }

// Dir is the etcd data directory.
func (e *Etcd) Dir() string { return e.dir }

// Init creates the data directory.
func (e *Etcd) Init(context.Context) error {
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", e.dir, err)
	}
	return nil
}

func (e *Etcd) clientURL() url.URL {
	return url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(e.cfg.EtcdClientPort)}
}

// embedConfig is the etcd configuration for one member on a local NVMe disk.
func (e *Etcd) embedConfig() *embed.Config {
	c := embed.NewConfig()
	c.Name = etcdMemberName
	c.InitialClusterToken = etcdClusterToken
	c.Dir = e.dir

	// Loopback only, TLS with client certificates: nothing off the node can
	// reach the datastore, and nothing on it without the etcd CA's blessing.
	client := e.clientURL()
	peer := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(e.cfg.EtcdPeerPort)}
	c.ListenClientUrls, c.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	c.ListenPeerUrls, c.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	c.InitialCluster = c.Name + "=" + peer.String()
	c.ListenMetricsUrls = nil
	tls := transport.TLSInfo{
		CertFile:       e.rt.PKI.EtcdServer.Cert,
		KeyFile:        e.rt.PKI.EtcdServer.Key,
		TrustedCAFile:  e.rt.PKI.EtcdCA.Cert,
		ClientCertAuth: true,
	}
	c.ClientTLSInfo, c.PeerTLSInfo = tls, tls
	// The gRPC gateway is an HTTP/JSON door nobody here uses.
	c.EnableGRPCGateway = false

	// One member: heartbeats go nowhere, and the election timeout only decides
	// how long a restart waits before the member elects itself. Advancing the
	// initial election ticks makes that wait one tick instead of ten.
	c.TickMs = 100
	c.ElectionMs = 1000
	c.InitialElectionTickAdvance = true

	// Snapshot every 10k entries (etcd 3.6's default, a tenth of 3.4's): bounds
	// the raft log kept in memory on a small VM without snapshotting often on
	// a fast disk.
	c.SnapshotCount = 10000
	// etcd keeps the last SnapshotCatchUpEntries raft entries in memory after
	// each compaction (every 100 applied), for followers that fell behind.
	// One member has no followers: at etcd's 5000, every object written
	// since start (a 1000-object sync, its controllers' writes, each status
	// of a large Application) stayed in the heap; 100 is the compaction step.
	c.SnapshotCatchUpEntries = 100
	// 4 GiB quota: local NVMe has the room, and hitting the quota turns the whole
	// cluster read-only (NOSPACE alarm), which is worse than using the disk.
	c.QuotaBackendBytes = 4 << 30
	// The API server compacts every 5 minutes; etcd compacting on its own too
	// keeps history bounded when the API server is down or a kine user moves
	// data in. Periodic, keeping one hour of revisions for watches to resume.
	c.AutoCompactionMode = "periodic"
	c.AutoCompactionRetention = "1h"
	// The map freelist makes commits on a large, fragmented bbolt file
	// O(1) instead of scanning an array freelist (etcd's recommendation).
	c.BackendFreelistType = "map"
	// Every write is fdatasync'ed; never trade durability for speed here (the
	// fsync gate refuses disks that are too slow instead).
	c.UnsafeNoFsync = false

	c.Logger = "zap"
	c.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(e.log, slog.LevelWarn)))
	return c
}

// Start starts etcd; it returns once etcd's servers listen.
func (e *Etcd) Start(ctx context.Context) error {
	etcd, err := embed.StartEtcd(e.embedConfig())
	if err != nil {
		return fmt.Errorf("starting etcd in %s: %w", e.dir, err)
	}
	e.etcd = etcd
	go func() {
		select {
		case err, ok := <-etcd.Err():
			if ok && err != nil {
				e.errc <- err
			}
		case <-etcd.Server.StopNotify():
			e.errc <- errors.New("etcd server stopped")
		}
	}()
	return nil
}

// Ready waits until etcd has a leader and serves requests.
func (e *Etcd) Ready(ctx context.Context) error {
	select {
	case <-e.etcd.Server.ReadyNotify():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err reports etcd failing after Start.
func (e *Etcd) Err() <-chan error { return e.errc }

// Stop closes etcd, waiting at most until ctx ends.
func (e *Etcd) Stop(ctx context.Context) error {
	if e.etcd == nil {
		return nil
	}
	etcd := e.etcd
	e.etcd = nil
	done := make(chan struct{})
	go func() {
		etcd.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("etcd did not stop in time: %w", ctx.Err())
	}
}

// Backend returns the loopback endpoint and the client certificate.
func (e *Etcd) Backend() Backend {
	u := e.clientURL()
	return Backend{
		Servers:  []string{u.String()},
		CAFile:   e.rt.PKI.EtcdCA.Cert,
		CertFile: e.rt.PKI.EtcdClient.Cert,
		KeyFile:  e.rt.PKI.EtcdClient.Key,
	}
}
