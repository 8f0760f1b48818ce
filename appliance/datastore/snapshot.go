package datastore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/fjord-dev/fjord/bootstrap"
)

// SnapshotFile is the datastore's part in a snapshot bundle, by kind.
func SnapshotFile(kind Kind) string {
	if kind == KindSQLite {
		return "datastore/state.db"
	}
	return "datastore/etcd.db"
}

// snapshotKind returns the kind of cfg, or an error for datastores Fjord
// does not snapshot itself.
func snapshotKind(cfg Config) (Kind, error) {
	kind, err := cfg.Kind()
	if err != nil {
		return "", err
	}
	if kind != KindEtcd && kind != KindSQLite {
		return kind, fmt.Errorf("snapshots cover the embedded etcd and kine on SQLite; back up the %s datastore with its own tools", kind)
	}
	return kind, nil
}

// Present returns the datastore files dataDir holds for cfg's kind (none
// on a fresh data dir): what a restore would replace.
func Present(cfg Config, dataDir string) ([]string, error) {
	kind, err := snapshotKind(cfg)
	if err != nil {
		return nil, err
	}
	var candidates []string
	if kind == KindEtcd {
		candidates = []string{filepath.Join(dataDir, "db", "etcd", "member")}
	} else {
		db := cfg.SQLitePath(dataDir)
		candidates = []string{db, db + "-wal", db + "-shm"}
	}
	var found []string
	for _, p := range candidates {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return found, nil
}

// Dump writes a consistent copy of the datastore of cfg in dataDir to file,
// which must not exist: the embedded etcd's snapshot (the etcd client's
// snapshot API, its sha256 trailer checked), or an online SQLite backup
// (VACUUM INTO, then an integrity check). The etcd must be running; SQLite
// may be in use or not.
func Dump(ctx context.Context, cfg Config, rt Runtime, file string) error {
	kind, err := snapshotKind(cfg)
	if err != nil {
		return err
	}
	if kind == KindSQLite {
		return dumpSQLite(ctx, cfg.SQLitePath(rt.DataDir), file)
	}
	return dumpEtcd(ctx, cfg, rt, file)
}

func zapLogger(log *slog.Logger) *zap.Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return zap.New(newSlogCore(log.With("component", "etcd-snapshot"), slog.LevelWarn))
}

func dumpEtcd(ctx context.Context, cfg Config, rt Runtime, file string) error {
	tlsInfo := transport.TLSInfo{CertFile: rt.PKI.EtcdClient.Cert, KeyFile: rt.PKI.EtcdClient.Key, TrustedCAFile: rt.PKI.EtcdCA.Cert}
	tlsConfig, err := tlsInfo.ClientConfig()
	if err != nil {
		return fmt.Errorf("reading the etcd client certificate in %s: %w", rt.PKI.Dir, err)
	}
	endpoint := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(cfg.EtcdClientPort)}
	ccfg := clientv3.Config{Endpoints: []string{endpoint.String()}, TLS: tlsConfig, DialTimeout: 5 * time.Second}
	if _, err := clientsnapshot.SaveWithVersion(ctx, zapLogger(rt.Log), ccfg, file); err != nil {
		return fmt.Errorf("taking an etcd snapshot from %s (is fjord server running on this data dir?): %w", endpoint.String(), err)
	}
	if err := CheckEtcdSnapshot(file); err != nil {
		os.Remove(file)
		return err
	}
	return nil
}

// CheckEtcdSnapshot checks the sha256 etcd appends to a snapshot (the
// check etcdutl's restore makes too).
func CheckEtcdSnapshot(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	n := fi.Size()
	if n%512 != sha256.Size {
		return fmt.Errorf("etcd snapshot %s has no sha256 trailer (%d bytes): it is incomplete", file, n)
	}
	sum := sha256.New()
	if _, err := io.CopyN(sum, f, n-sha256.Size); err != nil {
		return err
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return err
	}
	if !bytes.Equal(sum.Sum(nil), want) {
		return fmt.Errorf("etcd snapshot %s does not match its sha256 trailer", file)
	}
	return nil
}

// sqliteDB opens an SQLite file with whichever driver kine registered
// (mattn/go-sqlite3 with cgo, modernc.org/sqlite without).
func sqliteDB(path string) (*sql.DB, error) {
	drivers := sql.Drivers()
	switch {
	case slices.Contains(drivers, "sqlite3"):
		return sql.Open("sqlite3", "file:"+path+"?_busy_timeout=30000")
	case slices.Contains(drivers, "sqlite"):
		return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout%3d30000")
	}
	return nil, errors.New("no SQLite driver is built in")
}

func dumpSQLite(ctx context.Context, db, file string) error {
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("the SQLite datastore: %w", err)
	}
	conn, err := sqliteDB(db)
	if err != nil {
		return err
	}
	defer conn.Close()
	// VACUUM INTO reads one consistent view of the database (a read
	// transaction) while kine keeps writing, and writes a compact copy.
	if _, err := conn.ExecContext(ctx, "VACUUM INTO '"+strings.ReplaceAll(file, "'", "''")+"'"); err != nil {
		return fmt.Errorf("backing up the SQLite datastore %s: %w", db, err)
	}
	if err := checkSQLite(ctx, file); err != nil {
		os.Remove(file)
		return err
	}
	return nil
}

// checkSQLite runs SQLite's quick_check on a backup and looks for kine's table.
func checkSQLite(ctx context.Context, file string) error {
	conn, err := sqliteDB(file)
	if err != nil {
		return err
	}
	defer conn.Close()
	var verdict string
	if err := conn.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&verdict); err != nil || verdict != "ok" {
		return fmt.Errorf("the SQLite backup %s fails its integrity check (%s, %v)", file, verdict, err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM kine").Scan(&n); err != nil {
		return fmt.Errorf("the SQLite backup %s has no kine table: %w", file, err)
	}
	return nil
}

// Restore writes the datastore copy db (from Dump) into dataDir for cfg's
// kind; the datastore's files must not exist (Present returns none). etcd
// is restored by etcdutl's restore path as a library, as a single member
// named and addressed as the embedded etcd runs.
func Restore(ctx context.Context, cfg Config, rt Runtime, db string) error {
	kind, err := snapshotKind(cfg)
	if err != nil {
		return err
	}
	if found, err := Present(cfg, rt.DataDir); err != nil {
		return err
	} else if len(found) > 0 {
		return fmt.Errorf("the data dir holds a datastore already (%s)", strings.Join(found, ", "))
	}
	if kind == KindSQLite {
		target := cfg.SQLitePath(rt.DataDir)
		if err := checkSQLite(ctx, db); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		return copyFile(db, target)
	}
	dir := filepath.Join(rt.DataDir, "db", "etcd")
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	peer := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(cfg.EtcdPeerPort)}
	err = etcdutl.NewV3(zapLogger(rt.Log)).Restore(etcdutl.RestoreConfig{
		SnapshotPath:        db,
		Name:                etcdMemberName,
		OutputDataDir:       dir,
		PeerURLs:            []string{peer.String()},
		InitialCluster:      etcdMemberName + "=" + peer.String(),
		InitialClusterToken: etcdClusterToken,
	})
	if err != nil {
		return fmt.Errorf("restoring the etcd snapshot into %s: %w", dir, err)
	}
	return os.Chmod(dir, 0o700)
}

// copyFile copies src to dst (0600) atomically.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return bootstrap.WriteAtomic(dst, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
