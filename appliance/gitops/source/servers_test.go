package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// gitEnv isolates the git CLI from the machine's configuration.
func gitEnv(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Fjord Test", "GIT_AUTHOR_EMAIL=test@fjord.dev",
		"GIT_COMMITTER_NAME=Fjord Test", "GIT_COMMITTER_EMAIL=test@fjord.dev",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// upstream is a real repository served to the code under test: a bare
// repository and a working clone that pushes to it.
type upstream struct {
	t    testing.TB
	root string
	bare string
	work string
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	root := t.TempDir()
	u := &upstream{t: t, root: root, bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work")}
	u.gitIn(root, "init", "--quiet", "--bare", "-b", "main", u.bare)
	u.gitIn(root, "init", "--quiet", "-b", "main", u.work)
	u.git("remote", "add", "origin", u.bare)
	return u
}

func (u *upstream) gitIn(dir string, args ...string) string {
	u.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(u.root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		u.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// git runs git in the working clone.
func (u *upstream) git(args ...string) string {
	u.t.Helper()
	return u.gitIn(u.work, args...)
}

// commit writes files (a nil content deletes), commits and returns the SHA.
func (u *upstream) commit(msg string, files map[string]string) string {
	u.t.Helper()
	for name, content := range files {
		path := filepath.Join(u.work, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	u.git("add", "-A")
	u.git("commit", "--quiet", "--allow-empty", "-m", msg)
	return u.git("rev-parse", "HEAD")
}

func (u *upstream) push(args ...string) {
	u.t.Helper()
	u.git(append([]string{"push", "--quiet", "origin"}, args...)...)
}

// history is the fixture most tests fetch from:
//
//	c0 (v0) ─ c1 (v1, tag v1.0.0-light) ─ c2 (v2, annotated v2.0.0) ─ c4 (v4, main)
//	                                        └─ c3 (feature)
type history struct {
	*upstream
	c0, c1, c2, c3, c4 string
}

func newHistory(t *testing.T) *history {
	u := newUpstream(t)
	h := &history{upstream: u}
	h.c0 = u.commit("c0", map[string]string{"app.yaml": "v0\n", "deploy/config.yaml": "kind: ConfigMap\n"})
	h.c1 = u.commit("c1", map[string]string{"app.yaml": "v1\n"})
	u.git("tag", "v1.0.0-light")
	h.c2 = u.commit("c2", map[string]string{"app.yaml": "v2\n"})
	u.git("tag", "-a", "v2.0.0", "-m", "release 2")
	u.git("checkout", "--quiet", "-b", "feature")
	h.c3 = u.commit("c3", map[string]string{"app.yaml": "feature\n"})
	u.git("checkout", "--quiet", "main")
	h.c4 = u.commit("c4", map[string]string{"app.yaml": "v4\n"})
	u.push("main", "feature", "--tags")
	return h
}

// httpsServer is git-http-backend, the CGI program of the git package,
// behind a Go TLS server that checks basic auth.
type httpsServer struct {
	// URL is the base URL; repositories are at URL/<name relative to root>.
	URL string
	// CA is the PEM of the server's certificate.
	CA []byte
	// uploads counts fetches (POST git-upload-pack), as opposed to ref
	// listings (GET info/refs).
	uploads atomic.Int64
}

// newHTTPSServer serves the repositories under root; when password is set,
// every request needs it as its basic-auth password, with any user name.
func newHTTPSServer(t *testing.T, root, password string) *httpsServer {
	t.Helper()
	s := &httpsServer{}
	backend := &cgi.Handler{
		Path:       "/usr/lib/git-core/git-http-backend",
		Env:        []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + root},
		InheritEnv: []string{"PATH"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if password != "" {
			if _, pass, ok := r.BasicAuth(); !ok || pass != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			s.uploads.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return s
}

// sshServer is Debian's sshd on loopback, serving the system git's
// git-upload-pack to one deploy key.
type sshServer struct {
	port int
	// knownHosts lists the server's host key for its address.
	knownHosts string
	// clientKey is the deploy key allowed to log in (OpenSSH format), and
	// rsaKey another allowed key in PEM (PKCS#1) format.
	clientKey, rsaKey []byte
}

// url returns the ssh:// URL of a repository on the server.
func (s *sshServer) url(path string) string {
	return fmt.Sprintf("ssh://root@127.0.0.1:%d%s", s.port, path)
}

var sshdOnce struct {
	sync.Mutex
	skip string
}

// newSSHServer starts sshd or skips the test, saying why. It prefers port
// 22, where scp-like URLs reach it.
func newSSHServer(t *testing.T) *sshServer {
	t.Helper()
	sshdOnce.Lock()
	defer sshdOnce.Unlock()
	if sshdOnce.skip != "" {
		t.Skip(sshdOnce.skip)
	}
	skip := func(format string, args ...any) {
		sshdOnce.skip = fmt.Sprintf(format, args...)
		t.Skip(sshdOnce.skip)
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		skip("sshd is not installed (apt-get install -y openssh-server): %v", err)
	}
	if os.Geteuid() != 0 {
		skip("sshd tests need root to log in as root")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		skip("creating /run/sshd: %v", err)
	}
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, clientPub := newEd25519Key(t)
	rsaKey, rsaPub := newRSAKey(t)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, append(clientPub, rsaPub...), 0o600); err != nil {
		t.Fatal(err)
	}

	port := 22
	if l, err := net.Listen("tcp", "127.0.0.1:22"); err == nil {
		l.Close()
	} else {
		port = freePort(t)
	}
	config := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(config, []byte(strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"StrictModes no",
		"PermitRootLogin yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"LogLevel VERBOSE",
		"",
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		skip("starting sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			skip("sshd exited at start: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			skip("sshd did not listen on %s within 10s: %s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	host := "127.0.0.1"
	if port != 22 {
		host = fmt.Sprintf("[127.0.0.1]:%d", port)
	}
	return &sshServer{
		port:       port,
		knownHosts: host + " " + strings.TrimSpace(string(hostPub)),
		clientKey:  clientKey,
		rsaKey:     rsaKey,
	}
}

// newEd25519Key returns a private key in OpenSSH format and its
// authorized_keys line.
func newEd25519Key(t *testing.T) (priv, authorized []byte) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(sshPub)
}

// newRSAKey returns a private key in PEM (PKCS#1) format and its
// authorized_keys line.
func newRSAKey(t *testing.T) (priv, authorized []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		ssh.MarshalAuthorizedKey(sshPub)
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// silentServer accepts connections and never answers; it returns its
// address.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// newTestCache returns a Cache under a temporary root with fast retries,
// logging into buf when given.
func newTestCache(t *testing.T, buf *bytes.Buffer, mutate ...func(*Options)) *Cache {
	t.Helper()
	opts := Options{
		Root:  t.TempDir(),
		Retry: Retry{Attempts: 2, InitialDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond},
	}
	if buf != nil {
		opts.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readFile returns the content of name in an artifact.
func readFile(t *testing.T, a *Artifact, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Dir, name))
	if err != nil {
		t.Fatalf("reading %s from checkout: %v", name, err)
	}
	return string(b)
}
