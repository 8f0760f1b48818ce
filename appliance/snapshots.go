package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"

	"github.com/fjord-dev/fjord/appliance/datastore"
	"github.com/fjord-dev/fjord/appliance/snapshot"
	"github.com/fjord-dev/fjord/bootstrap"
)

// SnapshotOptions say where a snapshot goes and what it is recorded as.
type SnapshotOptions struct {
	// Dir defaults to snapshot.dir (<data-dir>/snapshots).
	Dir string
	// Name defaults to one made of the trigger, node and time.
	Name    string
	Trigger string
	Node    string
	// FjordVersion is recorded in the manifest.
	FjordVersion string
	Log          *slog.Logger
}

// BuildInfo is this binary's versions, as snapshots record and check them.
func BuildInfo(fjordVersion string) snapshot.Build {
	return snapshot.Build{FjordVersion: fjordVersion, KubernetesVersion: version.Get().GitVersion}
}

// keySources are the files a restore needs beside the datastore and Git
// does not hold: the encryption-at-rest config (without it no Secret in
// the datastore can be read), the CAs and the service-account key (tokens
// and kubeconfigs stay valid). Leaf certificates are not kept: the next
// start issues them again from the CAs. Names are relative to the data dir.
func keySources(dataDir string) []snapshot.Source {
	p := bootstrap.PKIPaths(dataDir)
	files := []string{bootstrap.EncryptionConfigPath(dataDir),
		p.CA.Cert, p.CA.Key, p.RequestHeaderCA.Cert, p.RequestHeaderCA.Key, p.EtcdCA.Cert, p.EtcdCA.Key,
		p.ServiceAccount.Key, p.ServiceAccount.Cert}
	sources := make([]snapshot.Source, 0, len(files))
	for _, f := range files {
		rel, _ := filepath.Rel(dataDir, f)
		sources = append(sources, snapshot.Source{Name: filepath.ToSlash(rel), Path: f})
	}
	return sources
}

func snapshotKind(cfg Config) (datastore.Kind, error) {
	if _, err := datastore.Present(cfg.Datastore, cfg.DataDir); err != nil {
		return "", err
	}
	return cfg.Datastore.Kind()
}

// SaveSnapshot takes a snapshot of the server running on cfg's data dir
// (SQLite also when it is stopped): the datastore dumped into the snapshot
// dir, then bundled with the keys into one 0600 file, written atomically.
func SaveSnapshot(ctx context.Context, cfg Config, opt SnapshotOptions) (snapshot.Result, error) {
	begin := time.Now()
	kind, err := snapshotKind(cfg)
	if err != nil {
		return snapshot.Result{}, err
	}
	if opt.Trigger == "" {
		opt.Trigger = snapshot.TriggerManual
	}
	if opt.Dir == "" {
		opt.Dir = cfg.Snapshot.DirFor(cfg.DataDir)
	}
	if opt.Name == "" {
		opt.Name = snapshot.DefaultName(opt.Trigger, opt.Node, begin)
	}
	if err := snapshot.CheckName(opt.Name); err != nil {
		return snapshot.Result{}, err
	}
	if kind == datastore.KindEtcd && DataDirInUse(cfg.DataDir) == nil {
		return snapshot.Result{}, fmt.Errorf("no fjord server runs on data dir %s: an etcd snapshot is taken from the running server (start it, or restore instead)", cfg.DataDir)
	}
	for _, s := range keySources(cfg.DataDir) {
		if _, err := os.Stat(s.Path); err != nil {
			return snapshot.Result{}, fmt.Errorf("%s is missing: has fjord server run on data dir %s?", s.Path, cfg.DataDir)
		}
	}
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return snapshot.Result{}, fmt.Errorf("creating snapshot dir %s: %w", opt.Dir, snapshot.Explain(opt.Dir, err))
	}
	stage, err := os.MkdirTemp(opt.Dir, ".dump-")
	if err != nil {
		return snapshot.Result{}, snapshot.Explain(opt.Dir, err)
	}
	defer os.RemoveAll(stage)
	db := filepath.Join(stage, "datastore.db")
	rt := datastore.Runtime{DataDir: cfg.DataDir, PKI: bootstrap.PKIPaths(cfg.DataDir), Log: opt.Log}
	if err := datastore.Dump(ctx, cfg.Datastore, rt, db); err != nil {
		return snapshot.Result{}, snapshot.Explain(opt.Dir, err)
	}
	build := BuildInfo(opt.FjordVersion)
	m := snapshot.Manifest{
		FjordVersion: build.FjordVersion, KubernetesVersion: build.KubernetesVersion, Datastore: string(kind),
		Name: opt.Name, Trigger: opt.Trigger, Node: opt.Node, Created: begin.UTC(),
	}
	sources := append([]snapshot.Source{{Name: datastore.SnapshotFile(kind), Path: db}}, keySources(cfg.DataDir)...)
	file, m, err := snapshot.WriteFile(opt.Dir, opt.Name, m, sources)
	if err != nil {
		return snapshot.Result{}, err
	}
	res := snapshot.Result{File: file, Manifest: m, Took: time.Since(begin)}
	if fi, err := os.Stat(file); err == nil {
		res.Size = fi.Size()
	}
	return res, nil
}

// RestoreOptions govern a restore.
type RestoreOptions struct {
	// Force restores over a data dir that holds a datastore, moving the
	// old one aside (never deleting it).
	Force bool
	// Build is this binary, checked against the snapshot's manifest.
	Build snapshot.Build
	// Locked says the caller holds the data dir's lock (the server's
	// first start); otherwise the restore takes it, so a running server
	// refuses it.
	Locked bool
	Log    *slog.Logger
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Manifest snapshot.Manifest
	// Aside is where what the restore replaced was moved ("" when nothing was).
	Aside string
}

// RestoreSnapshot restores file into cfg's data dir while no server runs
// there. Every check comes before anything is written: every part's
// sha256, the snapshot's format and versions against this binary, its
// datastore kind against cfg's, a datastore already there (refused unless
// Force). Then the datastore is restored and the keys written back; the
// next `fjord server` starts with every object, the same Secrets readable
// and the same sealing keys (they are Secrets in the datastore).
func RestoreSnapshot(ctx context.Context, cfg Config, file string, opt RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	locked := opt.Locked
	if _, err := os.Stat(cfg.DataDir); err == nil && !locked {
		unlock, err := LockDataDir(cfg.DataDir)
		if err != nil {
			return res, err
		}
		defer unlock()
		locked = true
	}
	kind, err := snapshotKind(cfg)
	if err != nil {
		return res, err
	}
	m, err := snapshot.Verify(file)
	if err != nil {
		return res, err
	}
	res.Manifest = m
	if err := m.CheckCompatible(opt.Build); err != nil {
		return res, err
	}
	if m.Datastore != string(kind) {
		return res, fmt.Errorf("%s is a snapshot of the %s datastore and this server is configured for %s (datastore-endpoint %q): restore it with the datastore-endpoint it was taken with",
			file, m.Datastore, kind, datastore.Redact(cfg.Datastore.Endpoint))
	}
	want := datastore.SnapshotFile(kind)
	if _, ok := m.Part(want); !ok {
		return res, &snapshot.DamagedError{File: file, Reason: want + " is missing"}
	}
	present, err := datastore.Present(cfg.Datastore, cfg.DataDir)
	if err != nil {
		return res, err
	}
	if len(present) > 0 && !opt.Force {
		return res, fmt.Errorf("data dir %s holds a datastore (%s): add --force to restore over it (it is moved aside, not deleted)",
			cfg.DataDir, strings.Join(present, ", "))
	}

	// Checks done: from here on, writes.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return res, err
	}
	if !locked {
		unlock, err := LockDataDir(cfg.DataDir)
		if err != nil {
			return res, err
		}
		defer unlock()
	}
	stage, err := os.MkdirTemp(cfg.DataDir, ".restore-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	if _, err := snapshot.Extract(file, stage); err != nil {
		return res, err
	}
	res.Aside, err = moveAside(cfg, present)
	if err != nil {
		return res, err
	}
	rt := datastore.Runtime{DataDir: cfg.DataDir, PKI: bootstrap.PKIPaths(cfg.DataDir), Log: opt.Log}
	if err := datastore.Restore(ctx, cfg.Datastore, rt, filepath.Join(stage, filepath.FromSlash(want))); err != nil {
		return res, restoreFailed(err, res.Aside)
	}
	for _, p := range m.Parts {
		if p.Name == want {
			continue
		}
		if err := placeKey(stage, cfg.DataDir, p.Name); err != nil {
			return res, restoreFailed(err, res.Aside)
		}
	}
	return res, nil
}

func restoreFailed(err error, aside string) error {
	if aside != "" {
		return fmt.Errorf("%w (what the data dir held is in %s)", err, aside)
	}
	return err
}

// placeKey moves one key file from the staging dir to its place; only
// files under tls/ and encryption/ are placed.
func placeKey(stage, dataDir, name string) error {
	if !strings.HasPrefix(name, "tls/") && !strings.HasPrefix(name, "encryption/") {
		return nil
	}
	target := filepath.Join(dataDir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	perm := os.FileMode(0o600)
	if strings.HasSuffix(name, ".crt") {
		perm = 0o644
	}
	if err := os.Chmod(filepath.Join(stage, filepath.FromSlash(name)), perm); err != nil {
		return err
	}
	return os.Rename(filepath.Join(stage, filepath.FromSlash(name)), target)
}

// moveAside moves what a restore replaces (the datastore files, tls/,
// encryption/, the kubeconfigs) into <data-dir>/before-restore-<time>/,
// and returns that dir ("" when nothing was there). Nothing is deleted.
func moveAside(cfg Config, datastoreFiles []string) (string, error) {
	var move []string
	for _, name := range []string{"tls", "encryption", "kubeconfig.yaml", "kubeconfigs", "sealing-key-stored"} {
		if _, err := os.Lstat(filepath.Join(cfg.DataDir, name)); err == nil {
			move = append(move, filepath.Join(cfg.DataDir, name))
		}
	}
	move = append(move, datastoreFiles...)
	if len(move) == 0 {
		return "", nil
	}
	aside := filepath.Join(cfg.DataDir, "before-restore-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return "", err
	}
	var errs []error
	for _, p := range move {
		rel, err := filepath.Rel(cfg.DataDir, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = filepath.Base(p) // an SQLite file outside the data dir
		}
		target := filepath.Join(aside, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(p, target); err != nil {
			errs = append(errs, fmt.Errorf("moving %s aside: %w", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return aside, fmt.Errorf("%w; nothing was restored", err)
	}
	return aside, nil
}

// snapshotEvents records snapshot events on the node (namespace default,
// as the kubelet's node events are), through the admin kubeconfig.
func snapshotEvents(kubeconfig, node string, log *slog.Logger) func(context.Context, bool, string, string) {
	return func(ctx context.Context, warning bool, reason, message string) {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			log.Warn("recording a snapshot event", "err", err)
			return
		}
		kube, err := kubernetes.NewForConfig(rc)
		if err != nil {
			log.Warn("recording a snapshot event", "err", err)
			return
		}
		typ := corev1.EventTypeNormal
		if warning {
			typ = corev1.EventTypeWarning
		}
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: node + ".snapshot.", Namespace: metav1.NamespaceDefault},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node},
			Reason:         reason, Message: message, Type: typ, Count: 1,
			FirstTimestamp: now, LastTimestamp: now,
			Source: corev1.EventSource{Component: "fjord-snapshot", Host: node},
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := kube.CoreV1().Events(metav1.NamespaceDefault).Create(ectx, ev, metav1.CreateOptions{}); err != nil {
			log.Warn("recording a snapshot event", "err", err)
		}
	}
}
