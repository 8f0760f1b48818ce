// Package source is the first stage of the GitOps engine: it resolves an
// Argo CD targetRevision (HEAD, a branch, a tag, a full or short commit SHA)
// to a commit, fetches as little as needed into a cache directory per
// repository, and writes that commit's tree into a directory for the build
// stage. It uses go-git only; no git binary is needed.
//
// Polling is cheap: Resolve lists the remote's refs without fetching, so a
// caller compares its answer with the last Artifact's Revision and calls
// Fetch only when they differ.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// DefaultTimeout bounds one network attempt (listing refs, or fetching) when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// DefaultKeepCheckouts is Options.KeepCheckouts when zero.
const DefaultKeepCheckouts = 4

// Retry is the backoff applied to retryable failures within one call.
type Retry struct {
	// Attempts is the total number of attempts, at least 1.
	Attempts int
	// InitialDelay is the wait before the second attempt; it doubles after
	// each further failure.
	InitialDelay time.Duration
	// MaxDelay caps the wait.
	MaxDelay time.Duration
}

// DefaultRetry is used when Options.Retry is zero: 4 attempts, waiting 1s,
// 2s and 4s in between.
func DefaultRetry() Retry {
	return Retry{Attempts: 4, InitialDelay: time.Second, MaxDelay: 15 * time.Second}
}

// Options configure a Cache.
type Options struct {
	// Root is the directory holding one subdirectory per repository, named
	// after the SHA-256 of its normalised URL (see NormalizeURL), such as
	// <data-dir>/gitops/repos. It is created with mode 0700.
	Root string
	// Logger receives debug and info lines; nil discards them. Lines carry
	// URLs without credentials.
	Logger *slog.Logger
	// Timeout bounds each network attempt; zero means DefaultTimeout. The
	// caller's context bounds the whole call, retries included.
	Timeout time.Duration
	// Retry is the backoff for retryable failures; zero means DefaultRetry.
	Retry Retry
	// KeepCheckouts is how many checkouts of a repository are kept, the most
	// recently returned ones; zero means DefaultKeepCheckouts.
	KeepCheckouts int
}

// Cache fetches repositories into Options.Root. It is safe for concurrent
// use; work on one repository is serialised. One Cache must own a Root.
type Cache struct {
	opts  Options
	log   *slog.Logger
	locks repoLocks
}

// Artifact is one commit of a repository, written out as a directory.
type Artifact struct {
	// URL is the repository URL without credentials.
	URL string
	// Revision is the full commit SHA.
	Revision string
	// Ref is the ref the revision was resolved through, such as
	// refs/heads/main or refs/tags/v1.2.0; empty when a SHA was requested.
	Ref string
	// Dir is the root of the commit's tree. It holds exactly the tracked
	// files; it stays until KeepCheckouts newer checkouts of the repository
	// have been returned, and must not be written to.
	Dir string
	// Message is the commit message.
	Message string
	// Author is "Name <email>".
	Author string
	// Time is when the commit was committed.
	Time time.Time
}

// New returns a Cache storing repositories under opts.Root, creating it.
func New(opts Options) (*Cache, error) {
	if opts.Root == "" || !filepath.IsAbs(opts.Root) {
		return nil, fmt.Errorf("creating git source cache: root %q must be an absolute path", opts.Root)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retry == (Retry{}) {
		opts.Retry = DefaultRetry()
	}
	opts.Retry.Attempts = max(opts.Retry.Attempts, 1)
	opts.Retry.MaxDelay = max(opts.Retry.MaxDelay, opts.Retry.InitialDelay)
	if opts.KeepCheckouts <= 0 {
		opts.KeepCheckouts = DefaultKeepCheckouts
	}
	if err := os.MkdirAll(opts.Root, 0o700); err != nil {
		return nil, fmt.Errorf("creating git source cache: %w", err)
	}
	return &Cache{opts: opts, log: opts.Logger}, nil
}

// handle is a validated request for one repository.
type handle struct {
	ep    endpoint
	red   redactor
	dir   string
	topts transportOptions
}

func (h *handle) wrap(op string, err error) error {
	return h.red.wrap(op, h.ep.redacted, err)
}

func (c *Cache) handle(repo Repository, op string) (*handle, error) {
	red := newRedactor(repo.secrets(endpoint{})...)
	ep, err := parseEndpoint(repo.URL)
	if err != nil {
		return nil, red.wrap(op, RedactURL(repo.URL), err)
	}
	red = newRedactor(repo.secrets(ep)...)
	h := &handle{ep: ep, red: red, dir: filepath.Join(c.opts.Root, ep.key())}
	if err := repo.Validate(); err != nil {
		return nil, h.wrap(op, err)
	}
	if h.topts, err = repo.transportOptions(ep, c.opts.Root); err != nil {
		return nil, h.wrap(op, err)
	}
	return h, nil
}

// describe names a revision in messages.
func describe(revision string) string {
	if revision == "" {
		return "HEAD"
	}
	return revision
}

func notFound(revision string) error {
	return &RevisionNotFoundError{Revision: describe(revision)}
}

// Resolve returns the full SHA of the commit revision names, without
// fetching: for a ref it lists the remote's refs (one round trip), for a
// full SHA it returns the SHA itself. Only a short SHA that is neither a ref
// tip nor already cached costs a fetch of the history, once. Errors are
// *Error; see IsTerminal.
func (c *Cache) Resolve(ctx context.Context, repo Repository, revision string) (string, error) {
	rev := strings.TrimSpace(revision)
	op := fmt.Sprintf("resolving revision %q", describe(rev))
	h, err := c.handle(repo, op)
	if err != nil {
		return "", err
	}
	if isFullSHA(rev) {
		return strings.ToLower(rev), nil
	}
	commit, err := c.resolve(ctx, h, rev)
	if err != nil {
		return "", h.wrap(op, err)
	}
	c.log.Debug("resolved git revision", "url", h.ep.redacted, "revision", describe(rev), "commit", commit)
	return commit, nil
}

func (c *Cache) resolve(ctx context.Context, h *handle, rev string) (string, error) {
	var table refTable
	if h.ep.local() {
		s, err := c.openStore(h)
		if err != nil {
			return "", err
		}
		if table, err = localRefTable(s.repo.Storer); err != nil {
			return "", internal(fmt.Errorf("reading refs: %w", err))
		}
	} else {
		var err error
		if table, err = c.listRefs(ctx, h); err != nil {
			return "", err
		}
	}
	if tgt, ok := table.lookup(rev); ok {
		return tgt.commit.String(), nil
	}
	if !isShortSHA(rev) {
		return "", notFound(rev)
	}
	if hash, ok, err := uniqueShort(rev, table.tipsWithPrefix(strings.ToLower(rev))); ok || err != nil {
		return hash.String(), err
	}
	// Only history knows this commit: look in the cache, or fetch it once.
	unlock, err := c.locks.lock(ctx, h.ep.key())
	if err != nil {
		return "", err
	}
	defer unlock()
	s, err := c.openStore(h)
	if err != nil {
		return "", err
	}
	hash, _, _, err := c.obtain(ctx, h, s, table, rev)
	return hash.String(), err
}

// Fetch makes the commit revision names available as a directory: it
// resolves the revision against the remote's refs, fetches the commit into
// the repository's cache unless it is there already (depth 1 for a ref; the
// commit alone, or else the whole history, for a SHA), and writes the commit's
// tree. A ref that was force-pushed yields its new commit. Errors are *Error;
// see IsTerminal.
func (c *Cache) Fetch(ctx context.Context, repo Repository, revision string) (*Artifact, error) {
	start := time.Now()
	rev := strings.TrimSpace(revision)
	op := fmt.Sprintf("fetching revision %q", describe(rev))
	h, err := c.handle(repo, op)
	if err != nil {
		return nil, err
	}
	a, fetched, err := c.fetch(ctx, h, rev)
	if err != nil {
		return nil, h.wrap(op, err)
	}
	c.log.Info("fetched git revision", "url", h.ep.redacted, "revision", describe(rev), "commit", a.Revision,
		"downloaded", fetched, "duration", time.Since(start).Round(time.Millisecond))
	return a, nil
}

func (c *Cache) fetch(ctx context.Context, h *handle, rev string) (*Artifact, bool, error) {
	var table refTable
	if !h.ep.local() && !isFullSHA(rev) {
		var err error
		if table, err = c.listRefs(ctx, h); err != nil {
			return nil, false, err
		}
	}
	unlock, err := c.locks.lock(ctx, h.ep.key())
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	s, err := c.openStore(h)
	if err != nil {
		return nil, false, err
	}
	if h.ep.local() && !isFullSHA(rev) {
		if table, err = localRefTable(s.repo.Storer); err != nil {
			return nil, false, internal(fmt.Errorf("reading refs: %w", err))
		}
	}
	for attempt := 0; ; attempt++ {
		a, fetched, err := c.fetchLocked(ctx, h, s, table, rev)
		if err == nil || attempt > 0 || h.ep.local() || !errors.Is(err, plumbing.ErrObjectNotFound) {
			return a, fetched, err
		}
		// A cache missing objects (an interrupted write, or go-git's
		// shallow bookkeeping going wrong) is rebuilt rather than trusted.
		c.log.Warn("git cache is missing objects; fetching again from scratch", "url", h.ep.redacted, "err", h.red.redact(err.Error()))
		if err := s.reset(); err != nil {
			return nil, false, err
		}
	}
}

func (c *Cache) fetchLocked(ctx context.Context, h *handle, s *store, table refTable, rev string) (*Artifact, bool, error) {
	hash, ref, fetched, err := c.obtain(ctx, h, s, table, rev)
	if err != nil {
		return nil, false, err
	}
	commit, err := object.GetCommit(s.repo.Storer, hash)
	if err != nil {
		return nil, false, fmt.Errorf("reading commit %s: %w", hash, err)
	}
	dir, err := c.checkout(filepath.Join(h.dir, "checkouts"), commit)
	if err != nil {
		return nil, false, err
	}
	return &Artifact{
		URL:      h.ep.redacted,
		Revision: hash.String(),
		Ref:      string(ref),
		Dir:      dir,
		Message:  commit.Message,
		Author:   fmt.Sprintf("%s <%s>", commit.Author.Name, commit.Author.Email),
		Time:     commit.Committer.When,
	}, fetched, nil
}

// Remove deletes the cache directory of repo: its objects and checkouts.
// Directories of earlier Artifacts of repo are gone afterwards.
func (c *Cache) Remove(ctx context.Context, repo Repository) error {
	op := "removing cached copy"
	h, err := c.handle(repo, op)
	if err != nil {
		return err
	}
	unlock, err := c.locks.lock(ctx, h.ep.key())
	if err != nil {
		return h.wrap(op, err)
	}
	defer unlock()
	return h.wrap(op, internal(os.RemoveAll(h.dir)))
}

// obtain makes the commit rev names present in s, fetching as little as
// needed, and returns it with the remote ref it came through (empty for a
// SHA) and whether anything was downloaded. table is the remote's refs; a
// full SHA does not need it. Called with the repository lock held.
func (c *Cache) obtain(ctx context.Context, h *handle, s *store, table refTable, rev string) (plumbing.Hash, plumbing.ReferenceName, bool, error) {
	none := plumbing.ZeroHash
	if isFullSHA(rev) {
		hash := plumbing.NewHash(strings.ToLower(rev))
		if hasCommit(s.repo.Storer, hash) {
			return hash, "", false, nil
		}
		if h.ep.local() {
			return none, "", false, notFound(rev)
		}
		// Servers that allow it send a single commit by id; the others
		// (git's default for protocol v0) need the history searched.
		spec := config.RefSpec(hash.String() + ":refs/fjord/commits/" + hash.String())
		err := c.fetchInto(ctx, h, s, []config.RefSpec{spec}, 1)
		if err == nil && hasCommit(s.repo.Storer, hash) {
			return hash, "", true, nil
		}
		if err != nil && !serverRefused(err) {
			return none, "", false, err
		}
		if err := c.fetchHistory(ctx, h, s); err != nil {
			return none, "", false, err
		}
		if hasCommit(s.repo.Storer, hash) {
			return hash, "", true, nil
		}
		return none, "", false, notFound(rev)
	}

	if tgt, ok := table.lookup(rev); ok {
		if hasCommit(s.repo.Storer, tgt.commit) {
			return tgt.commit, tgt.ref, false, nil
		}
		if h.ep.local() {
			return none, "", false, fmt.Errorf("ref %s points at %s: %w", tgt.ref, tgt.commit, plumbing.ErrObjectNotFound)
		}
		local := localRef(tgt.ref)
		spec := config.RefSpec(fmt.Sprintf("+%s:%s", tgt.ref, local))
		if err := c.fetchInto(ctx, h, s, []config.RefSpec{spec}, 1); err != nil {
			return none, "", false, err
		}
		// The ref may have moved since it was listed; what was fetched is
		// newer, so it wins.
		ref, err := s.repo.Storer.Reference(local)
		if err != nil {
			return none, "", false, fmt.Errorf("reading fetched ref %s: %w", local, plumbing.ErrObjectNotFound)
		}
		commit := peel(s.repo.Storer, ref.Hash())
		if !hasCommit(s.repo.Storer, commit) {
			return none, "", false, fmt.Errorf("fetched ref %s points at %s: %w", tgt.ref, commit, plumbing.ErrObjectNotFound)
		}
		return commit, tgt.ref, true, nil
	}

	if !isShortSHA(rev) {
		return none, "", false, notFound(rev)
	}
	prefix := strings.ToLower(rev)
	find := func() (plumbing.Hash, bool, error) {
		candidates, err := commitsWithPrefix(s.repo.Storer, prefix)
		if err != nil {
			return none, false, fmt.Errorf("searching commits: %w", err)
		}
		return uniqueShort(rev, candidates)
	}
	if hash, ok, err := find(); ok || err != nil {
		return hash, "", false, err
	}
	if h.ep.local() {
		return none, "", false, notFound(rev)
	}
	// A short SHA of a ref tip needs only that ref, shallow.
	if hash, ok, err := uniqueShort(rev, table.tipsWithPrefix(prefix)); err != nil {
		return none, "", false, err
	} else if ok {
		if tip, ok := table.refAt(hash); ok {
			if _, _, _, err := c.obtain(ctx, h, s, table, string(tip)); err != nil {
				return none, "", false, err
			}
			if hasCommit(s.repo.Storer, hash) {
				return hash, "", true, nil
			}
		}
	}
	if err := c.fetchHistory(ctx, h, s); err != nil {
		return none, "", false, err
	}
	if hash, ok, err := find(); ok || err != nil {
		return hash, "", true, err
	}
	return none, "", false, notFound(rev)
}

// localRef is where a fetched remote ref is stored in the cache: under the
// same name (the cache is a mirror), HEAD under refs/fjord/HEAD.
func localRef(remote plumbing.ReferenceName) plumbing.ReferenceName {
	if strings.HasPrefix(string(remote), "refs/") {
		return remote
	}
	return plumbing.ReferenceName("refs/fjord/" + string(remote))
}

// serverRefused reports whether err is the server declining a request (as
// opposed to the network failing or credentials being wrong), after which a
// different request may succeed.
func serverRefused(err error) bool {
	if errors.Is(err, git.ErrExactSHA1NotSupported) {
		return true
	}
	if classify(err).Terminal() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	return !isNetworkError(err)
}

// fetchHistory fetches every branch and tag with full history.
func (c *Cache) fetchHistory(ctx context.Context, h *handle, s *store) error {
	shallow, err := s.repo.Storer.Shallow()
	if err != nil {
		return internal(fmt.Errorf("reading shallow commits: %w", err))
	}
	if len(shallow) > 0 {
		// go-git cannot deepen a shallow repository (it has no --unshallow:
		// a fetch without depth still declares the shallow commits and gets
		// nothing behind them), so the cache starts over.
		c.log.Info("fetching full git history", "url", h.ep.redacted)
		if err := s.reset(); err != nil {
			return err
		}
	}
	specs := []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	return c.fetchInto(ctx, h, s, specs, 0)
}

// listRefs lists the remote's refs, with peeled tags.
func (c *Cache) listRefs(ctx context.Context, h *handle) (refTable, error) {
	var refs []*plumbing.Reference
	err := c.retry(ctx, h, "listing refs", func(ctx context.Context) error {
		remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{h.ep.dial}})
		opts := &git.ListOptions{
			Auth:            h.topts.auth,
			CABundle:        h.topts.caBundle,
			InsecureSkipTLS: h.topts.insecure,
			PeelingOption:   git.AppendPeeled,
		}
		if h.ep.protocol == "ssh" {
			var release func()
			opts.ProxyOptions, release = sshProxyOptions(ctx)
			defer release()
		}
		var err error
		refs, err = remote.ListContext(ctx, opts)
		return err
	})
	if err != nil {
		return refTable{}, err
	}
	return newRefTable(refs), nil
}

// fetchInto fetches refspecs into s, depth 0 meaning full history.
func (c *Cache) fetchInto(ctx context.Context, h *handle, s *store, specs []config.RefSpec, depth int) error {
	return c.retry(ctx, h, "fetching", func(ctx context.Context) error {
		remote := git.NewRemote(s.repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{h.ep.dial}})
		opts := &git.FetchOptions{
			RemoteName:      "origin",
			RefSpecs:        specs,
			Depth:           depth,
			Auth:            h.topts.auth,
			Tags:            git.NoTags,
			Force:           true,
			CABundle:        h.topts.caBundle,
			InsecureSkipTLS: h.topts.insecure,
		}
		if h.ep.protocol == "ssh" {
			var release func()
			opts.ProxyOptions, release = sshProxyOptions(ctx)
			defer release()
		}
		err := remote.FetchContext(ctx, opts)
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
}

// store is where commits are read from: the cache's bare repository for a
// remote, the repository itself for a local one.
type store struct {
	repo *git.Repository
	// path is the cache repository's directory; empty for a local one,
	// which is never reset.
	path string
}

func (c *Cache) openStore(h *handle) (*store, error) {
	if h.ep.local() {
		repo, err := git.PlainOpenWithOptions(h.ep.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("opening %s: %w", h.ep.path, transport.ErrRepositoryNotFound)
		}
		if err != nil {
			return nil, internal(fmt.Errorf("opening %s: %w", h.ep.path, err))
		}
		return &store{repo: repo}, nil
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return nil, internal(fmt.Errorf("creating cache directory: %w", err))
	}
	// A note for whoever looks into the directory; no secrets in it.
	_ = os.WriteFile(filepath.Join(h.dir, "url"), []byte(h.ep.normalized+"\n"), 0o600)
	s := &store{path: filepath.Join(h.dir, "repo.git")}
	repo, err := git.PlainOpen(s.path)
	switch {
	case err == nil:
		s.repo = repo
		return s, nil
	case !errors.Is(err, git.ErrRepositoryNotExists):
		c.log.Warn("git cache unreadable; starting over", "url", h.ep.redacted, "err", err)
	}
	return s, s.reset()
}

// reset replaces the cache repository with an empty one.
func (s *store) reset() error {
	if s.path == "" {
		return nil
	}
	if err := os.RemoveAll(s.path); err != nil {
		return internal(fmt.Errorf("removing cache repository: %w", err))
	}
	repo, err := git.PlainInit(s.path, true)
	if err != nil {
		return internal(fmt.Errorf("creating cache repository: %w", err))
	}
	s.repo = repo
	return nil
}
