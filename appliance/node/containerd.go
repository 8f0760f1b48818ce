package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/node/nodebin"
	"github.com/fjord-dev/fjord/bootstrap"
	"github.com/fjord-dev/fjord/images"
)

// Containerd runs containerd 2 (embedded in fjord and extracted to
// <data-dir>/agent/bin) as a child process, restarts it when it dies and
// imports the node's images into it. Pods
// outlive it: their shims are separate processes, and a new containerd
// adopts them.
type Containerd struct {
	cfg      Config
	rt       Runtime
	p        Paths
	log      *slog.Logger
	logLevel string

	bin    string // the extracted containerd
	mu     sync.Mutex
	cmd    *exec.Cmd
	cancel context.CancelFunc
	runCtx context.Context
	done   chan struct{}
	errc   chan error
	client *containerd.Client
}

var _ component.Component = (*Containerd)(nil)

// NewContainerd returns the containerd component; logLevel is Fjord's.
func NewContainerd(cfg Config, rt Runtime, logLevel string) *Containerd {
	return &Containerd{cfg: cfg, rt: rt, p: PathsFor(rt.DataDir), log: rt.Log.With("component", "containerd"),
		logLevel: logLevel, errc: make(chan error, 1)}
}

// Name implements component.Component.
func (c *Containerd) Name() string { return "containerd" }

// Init prepares the host (kernel modules, sysctls), extracts the shim,
// writes containerd's and the CNI configuration.
func (c *Containerd) Init(context.Context) error {
	if err := prepareHost(); err != nil {
		c.log.Warn("host settings pods need could not be applied", "err", err)
	}
	for _, d := range []string{c.p.Bin, c.p.Images, c.p.ContainerdRoot, c.p.ContainerdState} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// The images dir is where users drop archives.
	if err := os.Chmod(c.p.Images, 0o755); err != nil {
		return err
	}
	bins, err := nodebin.Extract(c.p.Bin)
	if err != nil {
		return err
	}
	c.bin = bins[nodebin.Containerd]
	runc, err := exec.LookPath(c.cfg.Runc)
	if err != nil {
		return fmt.Errorf("runc: %w (install Debian's %s package)", err, pkgRunc)
	}
	podCIDR, err := PodCIDR(c.rt.ClusterCIDR)
	if err != nil {
		return err
	}
	if err := writeCNIConfig(c.p, podCIDR); err != nil {
		return fmt.Errorf("writing the CNI configuration: %w", err)
	}
	if err := masqueradeRule(podCIDR); err != nil {
		return err
	}
	conf := containerdConfig(c.p, c.cfg.CNIBinDir, runc, c.containerdLogLevel(), !hasCapSysResource(), systemdCgroup())
	if err := os.MkdirAll(filepath.Dir(c.p.ContainerdConf), 0o755); err != nil {
		return err
	}
	return bootstrap.WriteFileAtomic(c.p.ContainerdConf, []byte(conf), 0o600)
}

// shimGroupDirEnv is the variable with which cmd/containerd-shim-runc-v2
// (GroupDirEnv there) groups every container of a containerd namespace into
// one shim process, which works in a directory of its own below the named
// one and logs to shim.log there.
const shimGroupDirEnv = "FJORD_SHIM_GROUP_DIR"

// containerdLogLevel keeps containerd's per-call info lines out of Fjord's
// log unless Fjord itself logs at debug.
func (c *Containerd) containerdLogLevel() string {
	if c.logLevel == "debug" {
		return "info"
	}
	return "warn"
}

// containerdConfig renders containerd 2's configuration (version 3).
func containerdConfig(p Paths, cniBin, runc, level string, restrictOOM, systemd bool) string {
	return fmt.Sprintf(`# Written by fjord at every start; edits are lost.
version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[debug]
  format = "json"
  level = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q

[plugins."io.containerd.cri.v1.runtime"]
  # Without CAP_SYS_RESOURCE a negative oom_score_adj is refused and every
  # sandbox would fail to start.
  restrict_oom_score_adj = %t
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
    # containerd brings a pod's loopback up itself instead of running the
    # loopback plugin: one process fewer for every pod started and stopped.
    use_internal_loopback = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
    BinaryName = %q
    SystemdCgroup = %t
`, p.ContainerdRoot, p.ContainerdState, p.ContainerdSock, level, filepath.Join(p.ContainerdRoot, "opt"),
		images.PauseImage, restrictOOM, cniBin, p.CNIConfDir, runc, systemd)
}

// Start runs the supervisor, which starts containerd and restarts it with
// a growing delay whenever it exits.
func (c *Containerd) Start(ctx context.Context) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.runCtx = cancel, rctx
	c.done = make(chan struct{})
	started := make(chan error, 1)
	go c.supervise(rctx, started)
	return <-started
}

func (c *Containerd) supervise(ctx context.Context, started chan<- error) {
	defer close(c.done)
	first := true
	delay := time.Second
	for {
		t0 := time.Now()
		err := c.runOnce(ctx, func(err error) {
			if first {
				started <- err
				first = false
			}
		})
		if ctx.Err() != nil {
			return
		}
		if first { // never started: Start reports it
			return
		}
		if time.Since(t0) > time.Minute {
			delay = time.Second
		}
		c.log.Error("containerd exited; restarting", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// runOnce runs one containerd process until it exits or ctx ends (then it
// is sent SIGTERM). The OS thread that starts it stays locked until it
// exits, so Pdeathsig kills it only when fjord itself dies.
func (c *Containerd) runOnce(ctx context.Context, started func(error)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(c.bin, "--config", c.p.ContainerdConf)
	// The shim is found on PATH. containerd and the shim set their own
	// GOGC (cmd/fjord-containerd, cmd/containerd-shim-runc-v2) rather than
	// pass one on to the CNI plugins and runc. containerd passes its
	// environment on to the shim, which then runs all pods in one process
	// (see the README).
	cmd.Env = append(os.Environ(), "PATH="+c.p.Bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		shimGroupDirEnv+"="+filepath.Join(c.p.ContainerdState, "shim-group"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		started(err)
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("starting containerd: %w", err)
		started(err)
		return err
	}
	_ = os.WriteFile(c.p.ContainerdPID, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	started(nil)
	copied := make(chan struct{})
	go func() { forwardLog(c.log, out); close(copied) }()
	exited := make(chan error, 1)
	go func() { <-copied; exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			return <-exited
		}
	}
}

// forwardLog turns containerd's JSON log lines into Fjord's log records.
func forwardLog(log *slog.Logger, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			log.Info(string(line))
			continue
		}
		level := slog.LevelInfo
		switch rec["level"] {
		case "debug", "trace":
			level = slog.LevelDebug
		case "warning", "warn":
			level = slog.LevelWarn
		case "error", "fatal", "panic":
			level = slog.LevelError
		}
		msg, _ := rec["msg"].(string)
		attrs := make([]any, 0, 2*len(rec))
		for k, v := range rec {
			if k != "level" && k != "msg" && k != "time" {
				attrs = append(attrs, k, v)
			}
		}
		log.Log(context.Background(), level, msg, attrs...)
	}
}

// Ready waits until containerd serves with its CRI plugin, then imports
// Fjord's pause image and the archives in the images dir, and starts
// watching that dir.
func (c *Containerd) Ready(ctx context.Context) error {
	var client *containerd.Client
	err := poll(ctx, 100*time.Millisecond, func() error {
		select {
		case <-c.done:
			return permanent{errors.New("containerd exited while starting (see its log lines above)")}
		default:
		}
		if client == nil {
			cl, err := containerd.New(c.p.ContainerdSock, containerd.WithTimeout(time.Second))
			if err != nil {
				return err
			}
			client = cl
		}
		serving, err := client.IsServing(ctx)
		if err != nil || !serving {
			return fmt.Errorf("containerd not serving: %v", err)
		}
		return nil
	})
	if err != nil {
		if client != nil {
			client.Close()
		}
		return err
	}
	c.mu.Lock()
	c.client = client
	c.mu.Unlock()
	im := &Importer{Client: client, Log: c.log}
	pause, err := images.PauseArchive()
	if err != nil {
		return err
	}
	if _, err := im.Import(ctx, "pause image (built in)", bytes.NewReader(pause)); err != nil {
		return fmt.Errorf("importing the pause image: %w", err)
	}
	im.ImportDir(ctx, c.p.Images)
	go im.Watch(c.runCtx, c.p.Images, 2*time.Second)
	return nil
}

// Err implements component.Component: containerd is restarted when it dies,
// never reported as a failure of the appliance.
func (c *Containerd) Err() <-chan error { return c.errc }

// Stop stops containerd (SIGTERM, then SIGKILL after 20 s); the pods'
// shims and containers keep running.
func (c *Containerd) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
	c.mu.Unlock()
	return stopWait(ctx, &c.cancel, c.done)
}
