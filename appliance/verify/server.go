package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ports are the TCP ports a control-plane-only server listens on; everything
// else (kine's socket) is inside its data dir.
type Ports struct {
	// API is kube-apiserver's HTTPS port, on loopback.
	API int `json:"api"`
	// Sealing is the sealed-secrets HTTP API's port, on the node IP.
	Sealing int `json:"sealing"`
}

// ServerOptions describe one `fjord server` child process.
type ServerOptions struct {
	// Self is the fjord executable to run (os.Executable()).
	Self string
	// DataDir is the server's data dir; an empty configuration file is
	// written into it so that /etc/fjord/config.yaml is not read.
	DataDir string
	// Ports are the ports to listen on (FreePorts).
	Ports Ports
	// LogFile receives the server's stdout and stderr.
	LogFile string
	// Detach puts the server in a session of its own that outlives this
	// process (fjord up). Otherwise it is killed when this process dies.
	Detach bool
	// GitOps keeps the GitOps engine on.
	GitOps bool
	// SealingKeys is a key backup the server imports at start; when empty
	// it makes a key of SealingKeyBits (0: the server's default).
	SealingKeys    string
	SealingKeyBits int
	// Status receives the server's one-line status updates while it
	// starts (sd_notify STATUS=); may be nil.
	Status func(string)
	// WithNode runs the node agent too (root; see CheckNode), its images
	// imported from ImageArchives. The API server then listens on every
	// address, since pods reach it through the node's IP.
	WithNode      bool
	ImageArchives []string
}

// Server is a running `fjord server` child process.
type Server struct {
	opts   ServerOptions
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the process's exit, once exited is closed
}

// Kubeconfig is the admin kubeconfig the server writes into its data dir.
func (s *Server) Kubeconfig() string { return filepath.Join(s.opts.DataDir, "kubeconfig.yaml") }

// URL is the API server's address.
func (s *Server) URL() string { return apiURL(s.opts.Ports.API) }

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

func apiURL(port int) string { return "https://127.0.0.1:" + strconv.Itoa(port) }

// serverArgs are the arguments of a control plane without the node agent
// (unless WithNode), listening on loopback only, with SQLite (kine) as its datastore: one port
// fewer than embedded etcd and a faster first start, and the datastore is
// not what a verification or a local cluster is about. The fsync gate is off:
// the data dir is throwaway (tmpfs) or a developer's.
func serverArgs(o ServerOptions) []string {
	args := []string{"server",
		"--config", filepath.Join(o.DataDir, "fjord-config.yaml"),
		"--data-dir", o.DataDir,
		"--datastore-endpoint", "sqlite://" + filepath.Join(o.DataDir, "db", "state.db"),
	}
	if !o.WithNode {
		args = append(args, "--disable-agent", "--bind-address", "127.0.0.1")
	}
	args = append(args,
		"--https-listen-port", strconv.Itoa(o.Ports.API),
		"--sealing.port", strconv.Itoa(o.Ports.Sealing),
		"--kube-controller-manager-port", "0",
		"--kube-scheduler-port", "0",
		"--fsync-gate", "off",
	)
	if !o.GitOps {
		args = append(args, "--gitops.disable")
	}
	if o.SealingKeys != "" {
		args = append(args, "--sealing.import-keys", o.SealingKeys)
	} else if o.SealingKeyBits > 0 {
		args = append(args, "--sealing.key-bits", strconv.Itoa(o.SealingKeyBits))
	}
	return args
}

// childEnv is this process's environment without what would reconfigure or
// confuse the child: FJORD_* settings meant for the caller's own server,
// and systemd's notification and socket-activation variables.
func childEnv(notifySocket string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FJORD_") || strings.HasPrefix(k, "LISTEN_") ||
			k == "NOTIFY_SOCKET" || k == "WATCHDOG_USEC" || k == "WATCHDOG_PID" || k == "JOURNAL_STREAM" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NOTIFY_SOCKET="+notifySocket)
}

// StartServer starts the server and waits until it is ready, the way systemd
// does: its READY=1 (every component serves) arrives on a notification
// socket of our own. It returns an error, with the end of the server's log,
// when the server exits first or ctx ends; the process is then gone.
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.DataDir, "fjord-config.yaml"), nil, 0o600); err != nil {
		return nil, fmt.Errorf("writing server configuration: %w", err)
	}
	if o.WithNode {
		if err := linkImages(o.DataDir, o.ImageArchives); err != nil {
			return nil, err
		}
	}
	// An abstract socket: nothing to clean up, no path length limit.
	name := "@fjord-notify-" + randomHex(8)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("creating notification socket: %w", err)
	}
	defer notify.Close()
	log, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening server log: %w", err)
	}
	defer log.Close() // the child has its own descriptor

	cmd := exec.Command(o.Self, serverArgs(o)...)
	cmd.Env = childEnv(name)
	cmd.Stdout, cmd.Stderr = log, log
	if o.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Its own process group keeps a terminal's Ctrl-C for us (we stop
		// it ourselves); Pdeathsig takes it down if we are killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s server: %w", o.Self, err)
	}
	s := &Server{opts: o, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()

	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := notify.ReadFromUnix(buf)
			if err != nil {
				return // closed
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				switch {
				case line == "READY=1":
					close(ready)
					return
				case strings.HasPrefix(line, "STATUS=") && o.Status != nil:
					o.Status(strings.TrimPrefix(line, "STATUS="))
				}
			}
		}
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("the server exited before it was ready (%v): %s", s.err, logTail(o.LogFile, 1500))
	case <-ctx.Done():
		s.Kill()
		return nil, fmt.Errorf("the server was not ready: %w", context.Cause(ctx))
	}
}

// Kill ends the server at once (SIGKILL) and waits for it: for a throwaway
// server whose data dir is removed next, a clean shutdown buys nothing and
// takes seconds.
func (s *Server) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Exited is closed when the server process ended.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Release lets a detached server run on after this process exits.
func (s *Server) Release() error { return s.cmd.Process.Release() }

// FreePorts returns ports free on every address right now, distinct from
// each other and from avoid.
func FreePorts(avoid map[int]bool) (Ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	pick := func() (int, error) {
		for range 20 {
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				return 0, fmt.Errorf("finding a free port: %w", err)
			}
			ls = append(ls, l) // held until every port is picked
			if p := l.Addr().(*net.TCPAddr).Port; !avoid[p] {
				return p, nil
			}
		}
		return 0, errors.New("finding a free port: every port offered is taken by another cluster")
	}
	var p Ports
	var err error
	if p.API, err = pick(); err != nil {
		return p, err
	}
	p.Sealing, err = pick()
	return p, err
}

// portFree reports whether port can be listened on now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// logTail returns the last n bytes of a log file, from a line start.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(data) > n {
		data = data[len(data)-n:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return strings.TrimSpace(string(data))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// processAlive reports whether pid is a running process (not a zombie).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// Field 3, after the parenthesised command name, is the state.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// waitGone polls until pid is no longer alive or timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !processAlive(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !processAlive(pid)
}
