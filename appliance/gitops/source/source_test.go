package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
)

// transports serve one upstream repository over each transport that needs
// no extra daemon.
func transports(t *testing.T, u *upstream) map[string]Repository {
	srv := newHTTPSServer(t, u.root, "")
	return map[string]Repository{
		"file URL":   {URL: "file://" + u.bare},
		"plain path": {URL: u.bare},
		"https":      {URL: srv.URL + "/remote.git", Auth: Auth{CABundle: srv.CA}},
	}
}

func TestFetchRevisions(t *testing.T) {
	h := newHistory(t)
	tests := []struct {
		name     string
		revision string
		commit   string
		ref      string
		content  string
	}{
		{name: "HEAD is the default branch", revision: "HEAD", commit: h.c4, ref: "refs/heads/main", content: "v4\n"},
		{name: "an empty revision is the default branch", revision: "", commit: h.c4, ref: "refs/heads/main", content: "v4\n"},
		{name: "a branch is its tip", revision: "feature", commit: h.c3, ref: "refs/heads/feature", content: "feature\n"},
		{name: "a full ref name is accepted", revision: "refs/heads/feature", commit: h.c3, ref: "refs/heads/feature", content: "feature\n"},
		{name: "an annotated tag resolves to the tagged commit", revision: "v2.0.0", commit: h.c2, ref: "refs/tags/v2.0.0", content: "v2\n"},
		{name: "a lightweight tag resolves to its commit", revision: "v1.0.0-light", commit: h.c1, ref: "refs/tags/v1.0.0-light", content: "v1\n"},
		{name: "a full SHA of an old commit is fetched", revision: h.c0, commit: h.c0, content: "v0\n"},
		{name: "an upper-case full SHA is accepted", revision: strings.ToUpper(h.c0), commit: h.c0, content: "v0\n"},
		{name: "a short SHA of an old commit is found in history", revision: h.c0[:7], commit: h.c0, content: "v0\n"},
		{name: "a short SHA of a branch tip is found", revision: h.c3[:10], commit: h.c3, content: "feature\n"},
	}
	for transport, repo := range transports(t, h.upstream) {
		for _, tt := range tests {
			t.Run(transport+": "+tt.name, func(t *testing.T) {
				c := newTestCache(t, nil)
				resolved, err := c.Resolve(t.Context(), repo, tt.revision)
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if resolved != tt.commit {
					t.Errorf("Resolve = %s, want %s", resolved, tt.commit)
				}
				a, err := c.Fetch(t.Context(), repo, tt.revision)
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if a.Revision != tt.commit || a.Ref != tt.ref {
					t.Errorf("Fetch = %s via %q, want %s via %q", a.Revision, a.Ref, tt.commit, tt.ref)
				}
				if got := readFile(t, a, "app.yaml"); got != tt.content {
					t.Errorf("app.yaml = %q, want %q", got, tt.content)
				}
				if got := readFile(t, a, "deploy/config.yaml"); got != "kind: ConfigMap\n" {
					t.Errorf("deploy/config.yaml = %q", got)
				}
				if _, err := os.Stat(filepath.Join(a.Dir, ".git")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("checkout has a .git entry (err %v)", err)
				}
				if a.Author != "Fjord Test <test@fjord.dev>" || a.Message == "" || a.Time.IsZero() {
					t.Errorf("commit metadata = %q, %q, %v", a.Author, a.Message, a.Time)
				}
			})
		}
	}
}

func TestMissingRevisionsAreTerminal(t *testing.T) {
	h := newHistory(t)
	missing := []struct {
		name     string
		revision string
	}{
		{name: "a branch that does not exist", revision: "no-such-branch"},
		{name: "a tag that does not exist", revision: "v9.9.9"},
		{name: "a full SHA that does not exist", revision: strings.Repeat("ab", 20)},
		{name: "a short SHA that does not exist", revision: "abcdef0"},
	}
	for transport, repo := range transports(t, h.upstream) {
		for _, tt := range missing {
			t.Run(transport+": "+tt.name+" is RevisionNotFound", func(t *testing.T) {
				c := newTestCache(t, nil)
				for op, call := range map[string]func() error{
					"Resolve": func() error { _, err := c.Resolve(t.Context(), repo, tt.revision); return err },
					"Fetch":   func() error { _, err := c.Fetch(t.Context(), repo, tt.revision); return err },
				} {
					err := call()
					if tt.revision == strings.Repeat("ab", 20) && op == "Resolve" {
						// A full SHA resolves to itself; only a fetch can tell.
						if err != nil {
							t.Errorf("Resolve of a full SHA: %v", err)
						}
						continue
					}
					var rnf *RevisionNotFoundError
					if !errors.As(err, &rnf) || rnf.Revision != tt.revision {
						t.Fatalf("%s error = %v, want a RevisionNotFoundError naming %q", op, err, tt.revision)
					}
					if !IsTerminal(err) {
						t.Errorf("%s: revision not found is not terminal", op)
					}
					if !strings.Contains(err.Error(), fmt.Sprintf("revision %q not found", tt.revision)) {
						t.Errorf("%s message %q does not name the revision", op, err)
					}
				}
			})
		}
	}
}

func TestResolveSeesAPushWithoutFetching(t *testing.T) {
	h := newHistory(t)
	srv := newHTTPSServer(t, h.root, "")
	repo := Repository{URL: srv.URL + "/remote.git", Auth: Auth{CABundle: srv.CA}}
	c := newTestCache(t, nil)

	a, err := c.Fetch(t.Context(), repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision != h.c4 {
		t.Fatalf("fetched %s, want %s", a.Revision, h.c4)
	}
	uploads := srv.uploads.Load()

	c5 := h.commit("c5", map[string]string{"app.yaml": "v5\n"})
	h.push("main")
	got, err := c.Resolve(t.Context(), repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got != c5 {
		t.Errorf("Resolve after push = %s, want %s", got, c5)
	}
	if n := srv.uploads.Load() - uploads; n != 0 {
		t.Errorf("Resolve downloaded objects %d times, want only a ref listing", n)
	}

	t.Run("fetching a commit already cached downloads nothing", func(t *testing.T) {
		before := srv.uploads.Load()
		again, err := c.Fetch(t.Context(), repo, h.c4)
		if err != nil {
			t.Fatal(err)
		}
		if again.Dir != a.Dir || srv.uploads.Load() != before {
			t.Errorf("second fetch of %s: dir %s (was %s), %d downloads", h.c4, again.Dir, a.Dir, srv.uploads.Load()-before)
		}
	})
	t.Run("the next fetch updates the cache instead of cloning again", func(t *testing.T) {
		marker := filepath.Join(c.opts.Root, mustKey(t, repo.URL), "repo.git", "fjord-test-marker")
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		a5, err := c.Fetch(t.Context(), repo, "main")
		if err != nil {
			t.Fatal(err)
		}
		if a5.Revision != c5 || readFile(t, a5, "app.yaml") != "v5\n" {
			t.Errorf("fetched %s, want %s", a5.Revision, c5)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("cache repository was replaced: %v", err)
		}
	})
}

func mustKey(t *testing.T, url string) string {
	t.Helper()
	ep, err := parseEndpoint(url)
	if err != nil {
		t.Fatal(err)
	}
	return ep.key()
}

func TestFetchFollowsAForcePush(t *testing.T) {
	h := newHistory(t)
	for transport, repo := range transports(t, h.upstream) {
		t.Run(transport+": the ref's new, unrelated commit wins", func(t *testing.T) {
			c := newTestCache(t, nil)
			before, err := c.Fetch(t.Context(), repo, "feature")
			if err != nil {
				t.Fatal(err)
			}

			h.git("checkout", "--quiet", "--orphan", "rewritten-"+strings.ReplaceAll(transport, " ", "-"))
			h.git("rm", "-rf", "--quiet", ".")
			rewritten := h.commit("rewritten history", map[string]string{"app.yaml": "rewritten " + transport + "\n"})
			h.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/feature")
			h.git("checkout", "--quiet", "main")

			resolved, err := c.Resolve(t.Context(), repo, "feature")
			if err != nil {
				t.Fatal(err)
			}
			after, err := c.Fetch(t.Context(), repo, "feature")
			if err != nil {
				t.Fatal(err)
			}
			if resolved != rewritten || after.Revision != rewritten {
				t.Fatalf("after force-push: Resolve %s, Fetch %s, want %s (was %s)", resolved, after.Revision, rewritten, before.Revision)
			}
			if got := readFile(t, after, "app.yaml"); got != "rewritten "+transport+"\n" {
				t.Errorf("app.yaml = %q", got)
			}
			if _, err := os.Stat(filepath.Join(after.Dir, "deploy")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("files of the old history are in the new checkout (err %v)", err)
			}
		})
	}
}

func TestOneCacheServesEveryKindOfRevision(t *testing.T) {
	h := newHistory(t)
	srv := newHTTPSServer(t, h.root, "")
	repo := Repository{URL: srv.URL + "/remote.git", Auth: Auth{CABundle: srv.CA}}
	c := newTestCache(t, nil)
	// Shallow, then full history (for an old SHA), then shallow again on
	// top of it, then a short SHA and a tag: the cache must cope with each
	// transition.
	steps := []struct{ revision, commit string }{
		{"main", h.c4}, {h.c0, h.c0}, {"feature", h.c3}, {h.c1[:8], h.c1}, {"v2.0.0", h.c2}, {"main", h.c4},
	}
	for _, s := range steps {
		a, err := c.Fetch(t.Context(), repo, s.revision)
		if err != nil {
			t.Fatalf("Fetch %s: %v", s.revision, err)
		}
		if a.Revision != s.commit {
			t.Errorf("Fetch %s = %s, want %s", s.revision, a.Revision, s.commit)
		}
	}
}

func TestOldCheckoutsAreRemoved(t *testing.T) {
	h := newHistory(t)
	c := newTestCache(t, nil, func(o *Options) { o.KeepCheckouts = 2 })
	repo := Repository{URL: h.bare}
	var dirs []string
	for _, rev := range []string{h.c0, h.c1, h.c2} {
		a, err := c.Fetch(t.Context(), repo, rev)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, a.Dir)
	}
	if _, err := os.Stat(dirs[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("oldest checkout still exists (err %v)", err)
	}
	for _, d := range dirs[1:] {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("recent checkout removed: %v", err)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(dirs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("checkouts directory holds %d entries, want 2", len(entries))
	}
}

func TestConcurrentFetchesOfOneRepository(t *testing.T) {
	h := newHistory(t)
	srv := newHTTPSServer(t, h.root, "")
	repo := Repository{URL: srv.URL + "/remote.git", Auth: Auth{CABundle: srv.CA}}
	c := newTestCache(t, nil)
	want := map[string]string{"main": h.c4, "feature": h.c3, "v2.0.0": h.c2, h.c0: h.c0, "v1.0.0-light": h.c1}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(want))
	for range 4 {
		for rev, commit := range want {
			wg.Go(func() {
				a, err := c.Fetch(t.Context(), repo, rev)
				switch {
				case err != nil:
					errs <- err
				case a.Revision != commit:
					errs <- fmt.Errorf("%s fetched %s, want %s", rev, a.Revision, commit)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHTTPS(t *testing.T) {
	const token = "s3cr3t-t0ken-value"
	h := newHistory(t)
	srv := newHTTPSServer(t, h.root, token)
	url := srv.URL + "/remote.git"
	tests := []struct {
		name string
		repo Repository
		kind Kind // empty: success
	}{
		{name: "a token as password with any user name is accepted", repo: Repository{URL: url, Auth: Auth{Username: "x-access-token", Password: token, CABundle: srv.CA}}},
		{name: "a token without a user name is accepted", repo: Repository{URL: url, Auth: Auth{Password: token, CABundle: srv.CA}}},
		{name: "credentials in the URL are used", repo: Repository{URL: strings.Replace(url, "https://", "https://me:"+token+"@", 1), Auth: Auth{CABundle: srv.CA}}},
		{name: "skipping TLS verification trusts any certificate", repo: Repository{URL: url, Auth: Auth{Password: token, InsecureSkipTLSVerify: true}}},
		{name: "a wrong password is an authentication failure", repo: Repository{URL: url, Auth: Auth{Username: "me", Password: "wrong-password-123", CABundle: srv.CA}}, kind: KindAuthFailed},
		{name: "a wrong password in the URL is an authentication failure", repo: Repository{URL: strings.Replace(url, "https://", "https://me:wrong-password-123@", 1), Auth: Auth{CABundle: srv.CA}}, kind: KindAuthFailed},
		{name: "no credentials is an authentication failure", repo: Repository{URL: url, Auth: Auth{CABundle: srv.CA}}, kind: KindAuthFailed},
		{name: "a certificate outside the CA bundle is untrusted", repo: Repository{URL: url, Auth: Auth{Password: token}}, kind: KindUntrustedServer},
		{name: "a repository that does not exist is not found", repo: Repository{URL: srv.URL + "/nothing.git", Auth: Auth{Password: token, CABundle: srv.CA}}, kind: KindRepositoryNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := newTestCache(t, &logs)
			a, err := c.Fetch(t.Context(), tt.repo, "main")
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.Revision != h.c4 {
					t.Errorf("fetched %s, want %s", a.Revision, h.c4)
				}
				if strings.Contains(a.URL, token) {
					t.Errorf("artifact URL %q contains the token", a.URL)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.kind {
					t.Fatalf("error = %v, want kind %s", err, tt.kind)
				}
				if !IsTerminal(err) {
					t.Errorf("%s is not terminal", tt.kind)
				}
				t.Logf("error: %v", err)
			}
			for _, secret := range []string{token, "wrong-password-123"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a password", err)
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs contain a password:\n%s", logs.String())
				}
			}
		})
	}
}

func TestSSH(t *testing.T) {
	s := newSSHServer(t)
	h := newHistory(t)
	url := s.url(h.bare)
	strangerKey, _ := newEd25519Key(t)
	_, impostorPub := newEd25519Key(t)
	hostField := strings.Fields(s.knownHosts)[0]
	impostor := hostField + " " + strings.TrimSpace(string(impostorPub))

	encrypted := encryptKey(t, s.clientKey, "passphrase-42")

	tests := []struct {
		name string
		repo Repository
		kind Kind
	}{
		{name: "an OpenSSH key and known_hosts fetch", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey, SSHKnownHosts: s.knownHosts}}},
		{name: "a PEM key fetches", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.rsaKey, SSHKnownHosts: s.knownHosts}}},
		{name: "an encrypted key with its passphrase fetches", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: encrypted, SSHPassphrase: "passphrase-42", SSHKnownHosts: s.knownHosts}}},
		{name: "skipping the host key check needs no known_hosts", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey, InsecureSkipHostKey: true}}},
		{name: "a host key that differs from known_hosts is untrusted", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey, SSHKnownHosts: impostor}}, kind: KindUntrustedServer},
		{name: "a host missing from known_hosts is untrusted", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey, SSHKnownHosts: "[192.0.2.1]:22 " + strings.TrimSpace(string(impostorPub))}}, kind: KindUntrustedServer},
		{name: "a key the server does not know is an authentication failure", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: strangerKey, SSHKnownHosts: s.knownHosts}}, kind: KindAuthFailed},
		{name: "no known_hosts is refused before connecting", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey}}, kind: KindInvalid},
		{name: "an encrypted key without its passphrase is refused", repo: Repository{URL: url, Auth: Auth{SSHPrivateKey: encrypted, SSHKnownHosts: s.knownHosts}}, kind: KindInvalid},
	}
	if s.port == 22 {
		tests = append(tests, struct {
			name string
			repo Repository
			kind Kind
		}{name: "an scp-like URL fetches", repo: Repository{URL: "root@127.0.0.1:" + h.bare, Auth: Auth{SSHPrivateKey: s.clientKey, SSHKnownHosts: s.knownHosts}}})
	} else {
		t.Log("port 22 is taken: scp-like URLs (which cannot name a port) are not tested against sshd")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := newTestCache(t, &logs)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			a, err := c.Fetch(ctx, tt.repo, "main")
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.Revision != h.c4 || readFile(t, a, "app.yaml") != "v4\n" {
					t.Errorf("fetched %s, want %s", a.Revision, h.c4)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("error = %v, want kind %s", err, tt.kind)
			}
			if !IsTerminal(err) {
				t.Errorf("%s is not terminal", tt.kind)
			}
			t.Logf("error: %v", err)
			for _, secret := range []string{"passphrase-42", string(tt.repo.Auth.SSHPrivateKey)} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("error or logs contain a secret")
				}
			}
		})
	}

	t.Run("a SHA is fetched alone when the server allows it", func(t *testing.T) {
		h.gitIn(h.bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
		c := newTestCache(t, nil)
		repo := Repository{URL: url, Auth: Auth{SSHPrivateKey: s.clientKey, SSHKnownHosts: s.knownHosts}}
		a, err := c.Fetch(t.Context(), repo, h.c1)
		if err != nil {
			t.Fatal(err)
		}
		if a.Revision != h.c1 || readFile(t, a, "app.yaml") != "v1\n" {
			t.Errorf("fetched %s, want %s", a.Revision, h.c1)
		}
		r, err := git.PlainOpen(filepath.Join(c.opts.Root, mustKey(t, url), "repo.git"))
		if err != nil {
			t.Fatal(err)
		}
		if shallow, _ := r.Storer.Shallow(); len(shallow) != 1 || shallow[0].String() != h.c1 {
			t.Errorf("cache is not a depth-1 fetch of %s: shallow commits %v", h.c1, shallow)
		}
	})
}

// encryptKey re-encrypts an OpenSSH private key with a passphrase.
func encryptKey(t *testing.T, key []byte, passphrase string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-N", passphrase, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNetworkFailuresAreRetryable(t *testing.T) {
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	silent := silentServer(t)
	sshAuth := Auth{SSHPrivateKey: mustKeyPEM(t), InsecureSkipHostKey: true}
	tests := []struct {
		name    string
		repo    Repository
		timeout time.Duration // the caller's deadline; zero uses Options.Timeout
	}{
		{name: "https to a closed port is refused", repo: Repository{URL: "https://" + closed + "/r.git", Auth: Auth{Password: "tok-abcdef"}}},
		{name: "ssh to a closed port is refused", repo: Repository{URL: "ssh://git@" + closed + "/r.git", Auth: sshAuth}},
		{name: "https to a server that never answers times out with the context", repo: Repository{URL: "https://" + silent + "/r.git"}, timeout: 500 * time.Millisecond},
		{name: "ssh to a server that never answers times out with the context", repo: Repository{URL: "ssh://git@" + silent + "/r.git", Auth: sshAuth}, timeout: 500 * time.Millisecond},
		{name: "https to a server that never answers times out per attempt", repo: Repository{URL: "https://" + silent + "/r.git"}},
		{name: "ssh to a server that never answers times out per attempt", repo: Repository{URL: "ssh://git@" + silent + "/r.git", Auth: sshAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := newTestCache(t, &logs, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			ctx := t.Context()
			if tt.timeout > 0 {
				c.opts.Timeout = time.Minute
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			for op, call := range map[string]func() error{
				"Resolve": func() error { _, err := c.Resolve(ctx, tt.repo, "main"); return err },
				"Fetch":   func() error { _, err := c.Fetch(ctx, tt.repo, "main"); return err },
			} {
				err := call()
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindUnavailable {
					t.Fatalf("%s error = %v, want kind %s", op, err, KindUnavailable)
				}
				if IsTerminal(err) {
					t.Errorf("%s: a network failure is terminal", op)
				}
				if strings.Contains(tt.name, "never answers") && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s error %v is not a deadline", op, err)
				}
				if strings.Contains(err.Error(), "tok-abcdef") || strings.Contains(logs.String(), "tok-abcdef") {
					t.Errorf("%s: error or logs contain the token", op)
				}
				t.Logf("%s after %s: %v", op, time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}

func mustKeyPEM(t *testing.T) []byte {
	k, _ := newEd25519Key(t)
	return k
}

// commitManyFiles commits n small manifests in 30 directories and pushes.
func commitManyFiles(u *upstream, n int) string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("manifests/d%02d/cm-%04d.yaml", i%30, i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  n: %q\n", i, fmt.Sprint(i))
	}
	commit := u.commit(fmt.Sprintf("%d files", n), files)
	u.push("main")
	return commit
}

func TestFetchesThousandsOfFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("writes thousands of files; skipped with -short")
	}
	u := newUpstream(t)
	commit := commitManyFiles(u, 3000)
	for transport, repo := range transports(t, u) {
		t.Run(transport+": every file is written", func(t *testing.T) {
			c := newTestCache(t, nil)
			start := time.Now()
			a, err := c.Fetch(t.Context(), repo, "main")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("fetched and wrote 3000 files over %s in %s", transport, time.Since(start).Round(time.Millisecond))
			if a.Revision != commit {
				t.Errorf("fetched %s, want %s", a.Revision, commit)
			}
			n := 0
			err = filepath.WalkDir(a.Dir, func(_ string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					n++
				}
				return err
			})
			if err != nil || n != 3000 {
				t.Errorf("checkout holds %d files (err %v), want 3000", n, err)
			}
		})
	}
}

// BenchmarkFetchThousandsOfFiles measures a first fetch (into an empty
// cache) of a commit of 3000 files from a local repository.
func BenchmarkFetchThousandsOfFiles(b *testing.B) {
	u := newUpstream(b)
	commitManyFiles(u, 3000)
	for b.Loop() {
		c, err := New(Options{Root: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Fetch(b.Context(), Repository{URL: u.bare}, "main"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckoutKeepsModesAndSymlinks(t *testing.T) {
	u := newUpstream(t)
	u.commit("files", map[string]string{"run.sh": "#!/bin/sh\n", "data/real.yaml": "x: 1\n"})
	if err := os.Chmod(filepath.Join(u.work, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data/real.yaml", filepath.Join(u.work, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	u.git("add", "-A")
	u.git("commit", "--quiet", "-m", "modes")
	u.push("main")
	c := newTestCache(t, nil)
	a, err := c.Fetch(t.Context(), Repository{URL: u.bare}, "main")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(a.Dir, "run.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v (err %v), want 0755", info.Mode(), err)
	}
	if info, err := os.Stat(filepath.Join(a.Dir, "data/real.yaml")); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("data/real.yaml mode = %v (err %v), want 0644", info.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(a.Dir, "link.yaml")); err != nil || target != "data/real.yaml" {
		t.Errorf("link.yaml → %q (err %v), want data/real.yaml", target, err)
	}
}
