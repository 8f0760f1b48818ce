//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var fjordBin string

func TestMain(m *testing.M) {
	fjordBin = os.Getenv("FJORD_BIN")
	if fjordBin == "" {
		dir, err := os.MkdirTemp("", "fjord-bin")
		if err != nil {
			panic(err)
		}
		fjordBin = filepath.Join(dir, "fjord")
		// The tag `make build` builds with (see the Makefile).
		build := exec.Command("go", "build", "-tags", "kustomize_disable_go_plugin_support", "-o", fjordBin, "../cmd/fjord")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building fjord:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// kubectlBin is a kubectl nobody here wrote (the machines ship 1.32).
const kubectlBin = "/usr/bin/kubectl"

func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand a closed port out again at once: never give
		// one to two servers of this run.
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// server is one fjord server process on its own data dir and ports.
type server struct {
	t       *testing.T
	dataDir string
	port    int
	args    []string
	env     []string // added to the environment
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer prepares (but does not start) a server with free ports and
// extra arguments. The fsync gate is off unless the test turns it on: these
// VMs' disks are borderline for etcd's 10 ms guidance.
func newServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), port: freePort(t)}
	s.args = append([]string{"server",
		"--disable-agent",
		"--data-dir", s.dataDir,
		"--https-listen-port", strconv.Itoa(s.port),
		"--etcd-client-port", strconv.Itoa(freePort(t)),
		"--etcd-peer-port", strconv.Itoa(freePort(t)),
		"--kube-controller-manager-port", "0",
		"--kube-scheduler-port", "0",
		"--config", filepath.Join(s.dataDir, "config.yaml"),
	}, extra...)
	if err := os.WriteFile(filepath.Join(s.dataDir, "config.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !containsPrefix(extra, "--fsync-gate") {
		s.args = append(s.args, "--fsync-gate=off")
	}
	if !containsPrefix(extra, "--sealing.port") {
		s.args = append(s.args, "--sealing.port", strconv.Itoa(freePort(t)))
	}
	return s
}

func containsPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func (s *server) start() {
	s.t.Helper()
	s.out = &syncBuffer{}
	s.cmd = exec.Command(fjordBin, s.args...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	s.t.Cleanup(func() {
		if s.running() {
			s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
		}
		if s.t.Failed() {
			s.t.Logf("fjord output (last 6000 bytes):\n%s", tail(s.out.String(), 6000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) kubeconfig() string { return filepath.Join(s.dataDir, "kubeconfig.yaml") }

// waitReady polls /readyz with the real kubectl until it says ok.
func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !s.running() {
			s.t.Fatalf("fjord exited before it was ready: %v\n%s", s.exitErr, tail(s.out.String(), 4000))
		}
		if _, err := os.Stat(s.kubeconfig()); err == nil {
			out, err := exec.Command(kubectlBin, "--kubeconfig", s.kubeconfig(), "get", "--raw", "/readyz").CombinedOutput()
			if err == nil && strings.TrimSpace(string(out)) == "ok" {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("fjord not ready after %s", timeout)
}

// waitExit waits for the process to end and returns its exit code.
func (s *server) waitExit(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.t.Fatalf("fjord still running after %s", timeout)
	}
	if s.exitErr == nil {
		return 0
	}
	if ee, ok := s.exitErr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	s.t.Fatal(s.exitErr)
	return -1
}

func (s *server) kill9() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// kubectl runs the real kubectl as the admin.
func (s *server) kubectl(args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", s.kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *server) mustKubectl(args ...string) string {
	s.t.Helper()
	out, err := s.kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *server) kubectlApply(manifest string) {
	s.t.Helper()
	cmd := exec.Command(kubectlBin, "--kubeconfig", s.kubeconfig(), "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// runFjord runs a short fjord command and returns its output and exit code.
func runFjord(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fjordBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return string(out), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	t.Fatal(err)
	return "", -1
}

func anonymousStatus(t *testing.T, port int, path string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
