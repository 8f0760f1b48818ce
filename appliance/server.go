// Package appliance is the Fjord server process: its Config and Run, which
// prepares the data dir and runs the components in order until told to stop.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/controlplane"
	"github.com/fjord-dev/fjord/appliance/datastore"
	"github.com/fjord-dev/fjord/appliance/fsyncgate"
	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/appliance/node"
	"github.com/fjord-dev/fjord/appliance/pageout"
	"github.com/fjord-dev/fjord/appliance/sealing"
	"github.com/fjord-dev/fjord/appliance/snapshot"
	"github.com/fjord-dev/fjord/bootstrap"
)

// StopTimeout is how long a clean shutdown may take before Run gives up.
const StopTimeout = 30 * time.Second

// Hooks let the caller follow the server's life (systemd notifications).
type Hooks struct {
	// Serving is called once every component is ready, with a liveness
	// check (kube-apiserver's /readyz over loopback, as the admin) that the
	// caller ties systemd's watchdog to: the watchdog runs from here on,
	// also while Run waits for the node and the first syncs.
	Serving func(alive func() bool)
	// Ready is called once the server is settled: every component is
	// ready, the node (unless disabled) is registered and Ready, and the
	// first sync of each Application has been attempted (READY=1).
	Ready func()
	// Status is called with one-line status updates.
	Status func(string)
	// ExtendStart is called before a start-up step that may take long (the
	// fsync gate's measurement) with the most it may take.
	ExtendStart func(time.Duration)
	// Sync is called with each Application's sync outcome.
	Sync func(gitops.SyncSummary)
	// Snapshot is called with the scheduled snapshots' status line: a
	// failure's, or "" once one succeeds again.
	Snapshot func(line string, failing bool)
	// Version is Fjord's version, recorded in snapshots and checked
	// against a snapshot.restore-from.
	Version string
}

// Run validates cfg, prepares the data dir and runs the server until ctx ends
// (nil) or a component fails (its error). Nothing is written to the
// datastore before the fsync gate passed.
func Run(ctx context.Context, cfg Config, log *slog.Logger, hooks Hooks) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	status := func(s string) {
		if hooks.Status != nil {
			hooks.Status(s)
		}
	}
	if !cfg.DisableAgent {
		if err := node.Preflight(cfg.Node); err != nil {
			return fmt.Errorf("the node agent cannot run on this host:\n%w", err)
		}
	}
	nodeName, nodeIP, err := resolveNode(cfg)
	if err != nil {
		return err
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	unlock, err := LockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := restoreAtFirstStart(ctx, cfg, log, hooks.Version, status); err != nil {
		return err
	}
	if cfg.DebugListen != "" {
		if err := serveDebug(ctx, cfg.DebugListen, log); err != nil {
			return err
		}
	}
	ds, err := datastore.New(cfg.Datastore, datastore.Runtime{DataDir: cfg.DataDir, PKI: bootstrap.PKIPaths(cfg.DataDir), Log: log})
	if err != nil {
		return err
	}
	if kind, _ := cfg.Datastore.Kind(); kind == datastore.KindEtcd || kind == datastore.KindSQLite {
		dir := ds.Dir()
		status("measuring fsync latency of " + dir)
		if hooks.ExtendStart != nil {
			hooks.ExtendStart(cfg.FsyncGate.MaxDuration + time.Minute)
		}
		res, err := fsyncgate.Run(ctx, log.With("component", "fsync-gate"), dir, cfg.FsyncGate,
			fsyncgate.Options{CacheFile: filepath.Join(cfg.DataDir, fsyncgate.CacheFileName)})
		if err != nil {
			return err
		}
		recordFsyncGate(res)
		status(res.Summary())
	}

	ctl := cfg.ControlPlane
	serviceIP, _ := ctl.ServiceIP()
	hostname, _ := os.Hostname()
	hosts := bootstrap.Hosts{
		IPs: []net.IP{nodeIP, net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + ctl.ClusterDomain},
	}
	if hostname != "" {
		hosts.DNSNames = append(hosts.DNSNames, hostname)
	}
	if nodeName != hostname {
		hosts.DNSNames = append(hosts.DNSNames, nodeName)
	}
	if bindIP := net.ParseIP(cfg.BindAddress); !bindIP.IsUnspecified() && !bindIP.Equal(nodeIP) {
		hosts.IPs = append(hosts.IPs, bindIP)
	}
	pki, err := bootstrap.EnsurePKI(cfg.DataDir, hosts, nodeName)
	if err != nil {
		return fmt.Errorf("preparing PKI: %w", err)
	}
	encryption, err := bootstrap.EnsureEncryptionConfig(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("preparing encryption at rest: %w", err)
	}
	kubeconfigs, err := bootstrap.WriteKubeconfigs(cfg.DataDir, "https://127.0.0.1:"+strconv.Itoa(cfg.HTTPSListenPort), pki)
	if err != nil {
		return fmt.Errorf("writing kubeconfigs: %w", err)
	}

	rt := controlplane.Runtime{
		DataDir:          cfg.DataDir,
		NodeName:         nodeName,
		NodeIP:           nodeIP,
		BindAddress:      cfg.BindAddress,
		Port:             cfg.HTTPSListenPort,
		PKI:              pki,
		Kubeconfigs:      kubeconfigs,
		EncryptionConfig: encryption,
		Backend:          ds.Backend,
		Log:              log,
	}
	if !cfg.DisableAgent {
		rt.StopGrace = 5 * time.Second
	}
	apiserver := controlplane.NewAPIServer(ctl, rt)
	components := []component.Component{
		ds,
		apiserver,
		controlplane.NewControllerManager(ctl, rt),
		controlplane.NewScheduler(ctl, rt),
	}
	if !cfg.DisableAgent {
		nrt := node.Runtime{
			DataDir: cfg.DataDir, NodeName: nodeName, NodeIP: nodeIP,
			ServiceCIDR: ctl.ServiceCIDR, ClusterCIDR: ctl.ClusterCIDR, ClusterDomain: ctl.ClusterDomain,
			ClusterDNS: cfg.DNS.ClusterDNS, PKI: pki, Kubeconfigs: kubeconfigs, Log: log,
		}
		components = append(components, node.Components(cfg.Node, nrt, cfg.LogLevel, cfg.HTTPSListenPort)...)
		components = append(components, nodeServices(cfg, nrt)...)
	}
	if !cfg.Sealing.Disable {
		// Before GitOps, so the SealedSecret API exists when Git brings some.
		components = append(components, sealing.New(cfg.Sealing, sealing.Runtime{
			DataDir: cfg.DataDir, Kubeconfig: kubeconfigs.Admin, NodeIP: nodeIP, Log: log}))
	}
	var engine *gitops.Engine
	if !cfg.GitOps.Disable {
		engine = gitops.New(cfg.GitOps, gitops.Runtime{DataDir: cfg.DataDir, Kubeconfig: kubeconfigs.Admin, Log: log, OnSync: hooks.Sync})
		components = append(components, engine)
	}
	if sched := scheduledSnapshots(cfg, nodeName, kubeconfigs.Admin, log, hooks); sched != nil {
		components = append(components, sched)
	}
	mgr := component.NewManager(log, cfg.ComponentReadyTimeout, components...)
	var stopping atomic.Bool // from here on the watchdog does not judge readiness
	log.Info("starting fjord", "data-dir", cfg.DataDir, "node-name", nodeName, "node-ip", nodeIP.String(),
		"datastore", datastoreName(cfg.Datastore), "https-listen-port", cfg.HTTPSListenPort)
	status("starting control plane")
	if err := mgr.Start(ctx); err != nil {
		if ctx.Err() != nil {
			// Told to stop while starting: what started was stopped; not a failure.
			log.Info("stopped while starting", "reason", err)
			return nil
		}
		return err
	}
	log.Info("control plane ready", "kubeconfig", kubeconfigs.Admin)
	status("control plane ready")
	if hooks.Serving != nil {
		hooks.Serving(liveness(apiserver.CheckReady, log, status, &stopping))
	}
	// A component that fails while Run waits for the node and the first
	// syncs ends the wait: runCtx is cancelled when Wait returns.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	waited := make(chan error, 1)
	go func() { err := mgr.Wait(ctx); cancelRun(); waited <- err }()
	began := time.Now()
	if settle(runCtx, cfg, nodeName, kubeconfigs.Admin, engine, status) == nil {
		log.Info("fjord is ready", "settled-in", time.Since(began).Round(time.Millisecond).String())
		if hooks.Ready != nil {
			hooks.Ready()
		}
	}
	if runCtx.Err() == nil {
		// Settled or not, starting is over: what of the binary it mapped and
		// no longer runs is handed back (package pageout).
		if n, err := pageout.Executable(); err != nil {
			log.Warn("releasing the binary's pages", "err", err)
		} else {
			log.Info("released the binary's pages", "advised-mib", n>>20)
		}
		// And so after each spell of work (pods started, a large sync), once
		// the server is quiet again.
		if !cfg.DisableMemoryTrim {
			go pageout.WhenQuiet(runCtx, serverQuiet, func(n int64, err error) {
				if err != nil {
					log.Warn("releasing memory after work", "err", err)
				} else {
					log.Info("released memory after work", "advised-mib", n>>20)
				}
			})
		}
	}
	runErr := <-waited
	stopping.Store(true)
	if runErr != nil {
		log.Error("component failed, stopping", "err", runErr)
	} else {
		log.Info("stopping fjord")
	}
	status("stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopTimeout)
	defer cancel()
	return errors.Join(runErr, mgr.Stop(sctx))
}

// restoreAtFirstStart restores snapshot.restore-from into a data dir that
// holds no datastore yet (a replacement VM's first boot). A failed restore
// stops the server: an empty cluster in its place would hide the loss.
func restoreAtFirstStart(ctx context.Context, cfg Config, log *slog.Logger, fjordVersion string, status func(string)) error {
	file := cfg.Snapshot.RestoreFrom
	if file == "" {
		return nil
	}
	present, err := datastore.Present(cfg.Datastore, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("snapshot.restore-from: %w", err)
	}
	if len(present) > 0 {
		log.Info("snapshot.restore-from is not used: the data dir holds a datastore already", "file", file)
		return nil
	}
	status("restoring snapshot " + file)
	res, err := RestoreSnapshot(ctx, cfg, file, RestoreOptions{Build: BuildInfo(fjordVersion), Locked: true, Log: log})
	if err != nil {
		return fmt.Errorf("snapshot.restore-from %s: %w", file, err)
	}
	log.Info("restored snapshot", "file", file, "name", res.Manifest.Name, "taken", res.Manifest.Created.Format(time.RFC3339),
		"datastore", res.Manifest.Datastore)
	return nil
}

// scheduledSnapshots is the snapshot schedule's component, or nil when
// snapshot.schedule is empty or the datastore is not one Fjord snapshots.
func scheduledSnapshots(cfg Config, node, kubeconfig string, log *slog.Logger, hooks Hooks) component.Component {
	if cfg.Snapshot.Schedule == "" {
		return nil
	}
	if _, err := snapshotKind(cfg); err != nil {
		log.Info("no scheduled snapshots", "reason", err)
		return nil
	}
	dir := cfg.Snapshot.DirFor(cfg.DataDir)
	return snapshot.NewScheduler(cfg.Snapshot, dir, node, log, snapshot.Hooks{
		Save: func(ctx context.Context, dir, name string) (snapshot.Result, error) {
			return SaveSnapshot(ctx, cfg, SnapshotOptions{Dir: dir, Name: name, Trigger: snapshot.TriggerScheduled,
				Node: node, FjordVersion: hooks.Version, Log: log})
		},
		Status: hooks.Snapshot,
		Event:  snapshotEvents(kubeconfig, node, log),
	})
}

func datastoreName(c datastore.Config) string {
	kind, _ := c.Kind()
	return string(kind)
}

// checkWritable creates the data dir (0700) and proves it can be written to.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data-dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data-dir %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// resolveNode returns the node name (hostname by default) and the address the
// API server advertises (detected by default: it cannot be loopback).
func resolveNode(cfg Config) (string, net.IP, error) {
	name := cfg.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", nil, fmt.Errorf("node-name: cannot read the hostname: %w", err)
		}
		name = h
	}
	if cfg.NodeIP != "" {
		return name, net.ParseIP(cfg.NodeIP), nil
	}
	ip, err := DetectNodeIP()
	if err != nil {
		return "", nil, fmt.Errorf("node-ip: %w; set --node-ip", err)
	}
	return name, ip, nil
}

// liveness returns the watchdog's check: kube-apiserver still answers
// /readyz (which covers the datastore). A failure is logged and shown in
// the status line; the watchdog stops pinging, so systemd restarts a server
// that stays down. While stopping it reports alive: systemd's stop timeout
// governs then.
func liveness(check func(context.Context) error, log *slog.Logger, status func(string), stopping *atomic.Bool) func() bool {
	failing := false
	return func() bool {
		if stopping.Load() {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := check(ctx)
		cancel()
		switch {
		case err != nil:
			log.Warn("kube-apiserver is not ready; the systemd watchdog is not pinged", "err", err)
			status("kube-apiserver not ready: " + err.Error())
			failing = true
		case failing:
			log.Info("kube-apiserver is ready again")
			status("control plane ready")
			failing = false
		}
		return err == nil
	}
}

// settle waits until the server is worth calling ready (systemd's READY=1):
// the node, unless disabled, is registered and Ready, then the first sync
// of each Application has been attempted. The status line says what it
// waits for. It returns only when done (nil) or when ctx ends (its error):
// systemd's TimeoutStartSec bounds a wait that never ends.
func settle(ctx context.Context, cfg Config, nodeName, kubeconfig string, engine *gitops.Engine, status func(string)) error {
	if !cfg.DisableAgent {
		status("waiting for node " + nodeName + " to register and be Ready")
		if err := awaitNodeReady(ctx, kubeconfig, nodeName); err != nil {
			return err
		}
	}
	if engine == nil {
		return nil
	}
	return engine.AwaitFirstSyncs(ctx, func(pending []string) {
		status("waiting for the first sync of " + strings.Join(pending, ", "))
	})
}

// awaitNodeReady polls the Node until its Ready condition is True.
func awaitNodeReady(ctx context.Context, kubeconfig, name string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// serverQuiet is when fjord server counts as quiet after work: 1 CPU-s
// above a fifth of a core, then half a minute under it. An idle node with
// 20 pods uses 8 % of a core; starting 20 pods, about 3.5 CPU-s.
var serverQuiet = pageout.Quiet{Work: time.Second, Window: 30 * time.Second, Share: 0.2, Every: 5 * time.Second}
