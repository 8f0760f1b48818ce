// Package verify checks a repository of manifests the way Fjord's GitOps
// engine would sync it, on a throwaway control plane (`fjord verify`), and
// runs named local clusters (`fjord up`, `down`, `list`). Both run this
// binary's own `fjord server --disable-agent` as a child process on free
// ports.
//
// A verification is a linear pipeline: start (the server boots while the
// sources render) → render (the engine's build stage, from the files on
// disk, uncommitted changes included) → dry run (server-side, every object
// the API server can judge yet) → apply (server-side apply with ssa, wave by
// wave, definitions first) → health (kstatus, as the engine judges it).
// Every object becomes a Case with a Result; nothing is retried.
package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/appliance/sealing"
)

// Options say what to verify and how.
type Options struct {
	// Dir is the repository, or a directory inside it. The repository root
	// is the top of the Git work tree holding Dir, else Dir itself.
	Dir string
	// Path is the path to render, relative to the repository root. Empty:
	// Dir itself (when no AppFiles).
	Path string
	// AppFiles hold Argo CD Applications: each is verified with its own
	// source path and options, its repoURL standing for the repository root.
	AppFiles []string
	// SealingKeys is a key backup (fjord sealing-keys export) that every
	// SealedSecret must unseal with; empty skips that check.
	SealingKeys string
	// Timeout bounds dry run, apply and health together; the server's start
	// is bounded apart (StartTimeout).
	Timeout time.Duration
	// Self is the fjord executable that runs the server.
	Self string
	// TempDir is where the server's throwaway data dir is made; empty
	// picks /dev/shm when it has room, else the system's temp dir.
	TempDir string
	// Progress shows the phases; may be nil.
	Progress *Progress
	// WithNode runs the node too (as root, one per machine: CheckNode), so
	// workloads must turn healthy; their images come from ImageArchives.
	WithNode      bool
	ImageArchives []string
}

// UsageError means the options themselves are wrong; nothing was verified.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// StartTimeout bounds the throwaway server's start.
const StartTimeout = 3 * time.Minute

// errInterrupted is the cause when the caller's context ends (Ctrl-C).
var errInterrupted = errors.New("interrupted")

// Run verifies and returns the report; the server and its data dir are gone
// when it returns, whatever happened. The error is a *UsageError, or a
// failure to set up the run (no temp dir); a verification that fails is a
// report that did not pass, not an error.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Path != "" && len(o.AppFiles) > 0 {
		return nil, &UsageError{errors.New("--path and --app exclude each other: an Application names its own path")}
	}
	if o.Timeout <= 0 {
		return nil, &UsageError{errors.New("--timeout must be positive")}
	}
	// The node's preconditions first: no point reading a repository that
	// cannot be verified here.
	if o.WithNode {
		if err := CheckNode(); err != nil {
			return nil, &UsageError{err}
		}
	} else if len(o.ImageArchives) > 0 {
		return nil, &UsageError{errors.New("--image-archive needs --with-node: without a node no image is pulled")}
	}
	root, rel, err := repoRoot(o.Dir)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("repository: %w", err)}
	}
	if o.SealingKeys != "" {
		if o.SealingKeys, err = filepath.Abs(o.SealingKeys); err != nil {
			return nil, &UsageError{err}
		}
		// Read now: a bad backup is the caller's mistake, not the repository's.
		if _, err := sealing.ReadKeyFile(o.SealingKeys); err != nil {
			return nil, &UsageError{fmt.Errorf("--sealing-keys: %w", err)}
		}
	}
	began := time.Now()
	r := &Report{Root: root, WithNode: o.WithNode}
	defer func() { r.Seconds = time.Since(began).Seconds() }()

	// The server's start has a bound of its own (StartTimeout), so that a
	// slow start on a loaded machine does not eat the time the repository's
	// objects get: ctx gets the --timeout deadline once the server is ready.
	parent := ctx
	cause := func() string {
		if parent.Err() != nil {
			return errInterrupted.Error()
		}
		if err := context.Cause(ctx); err != nil {
			return err.Error()
		}
		return ""
	}

	var sources []*source
	if len(o.AppFiles) > 0 {
		repos := map[string]bool{}
		for _, f := range o.AppFiles {
			srcs, err := readApplications(f)
			if err != nil {
				r.Cases = append(r.Cases, &Case{Source: f, Name: "read " + f, Result: Failed, Message: oneLine(err.Error())})
				continue
			}
			for _, s := range srcs {
				repos[s.app.Spec.Source.RepoURL] = true
				r.Notes = append(r.Notes, prefixed(s.name, s.notes)...)
			}
			sources = append(sources, srcs...)
		}
		if len(repos) > 1 {
			r.Notes = append(r.Notes, fmt.Sprintf("the Applications name %d repositories; all of them were read from %s", len(repos), root))
		}
	} else {
		path := o.Path
		if path == "" {
			path = rel
		}
		sources = []*source{{name: path, path: path}}
	}

	tmp, err := makeTempDir(o.TempDir)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() { // after the server is gone: deferred first, runs last
		if !keep {
			os.RemoveAll(tmp)
		}
	}()

	// The server boots while the sources render.
	o.Progress.Begin("start")
	type started struct {
		srv *Server
		err error
	}
	startc := make(chan started, 1)
	sctx, stopStart := context.WithTimeoutCause(parent, StartTimeout, fmt.Errorf("the control plane was not ready within %s", StartTimeout))
	ports, err := FreePorts(nil)
	if err != nil {
		stopStart()
		return nil, err
	}
	go func() {
		srv, err := StartServer(sctx, ServerOptions{
			Self: o.Self, DataDir: filepath.Join(tmp, "data"), Ports: ports, LogFile: filepath.Join(tmp, "server.log"),
			SealingKeys: o.SealingKeys, SealingKeyBits: 2048, Status: o.Progress.Status,
			WithNode: o.WithNode, ImageArchives: o.ImageArchives,
		})
		startc <- started{srv, err}
	}()
	var srv *Server
	startDone := false
	defer func() {
		stopStart()
		if !startDone {
			st := <-startc
			srv = st.srv
		}
		if srv != nil {
			srv.Kill()
		}
		if o.WithNode {
			// Pods outlive the server (their shims are not its children):
			// stop them before the data dir goes. A failure keeps the dir,
			// since volumes may still be mounted in it.
			if err := StopNode(o.Self, filepath.Join(tmp, "data")); err != nil {
				r.Notes = append(r.Notes, err.Error()+"; the throwaway data dir "+tmp+" was kept")
				keep = true
			}
		}
	}()

	o.Progress.Begin("render")
	objs, renderDetail := renderAll(root, sources, r)
	r.Phases = append(r.Phases, o.Progress.End("render", renderDetail))

	todo := 0
	for _, obj := range objs {
		if !obj.done() {
			todo++
		}
	}
	if todo == 0 {
		r.Phases = append(r.Phases, o.Progress.End("start", "not needed: nothing to apply"))
		return r.finish(objs, cause()), nil
	}

	st := <-startc
	srv, startDone = st.srv, true
	if st.err != nil {
		msg := oneLine(st.err.Error())
		if parent.Err() != nil {
			msg = errInterrupted.Error()
		}
		r.Phases = append(r.Phases, o.Progress.End("start", "failed"))
		r.Cases = append([]*Case{{Name: "start", Result: Failed, Message: msg}}, r.Cases...)
		return r.finish(objs, "the control plane did not start"), nil
	}
	what := "control plane"
	if o.WithNode {
		what = "control plane and node"
	}
	r.Phases = append(r.Phases, o.Progress.End("start", what+" ready at "+srv.URL()+" (throwaway data in "+tmp+")"))
	ctx, cancel := context.WithTimeoutCause(parent, o.Timeout, fmt.Errorf("timed out after %s (--timeout)", o.Timeout))
	defer cancel()

	c, err := connect(srv.Kubeconfig())
	if err == nil {
		err = c.prepare(ctx)
	}
	if err != nil {
		r.Cases = append([]*Case{{Name: "start", Result: Failed, Message: oneLine(err.Error())}}, r.Cases...)
		return r.finish(objs, "the control plane could not be reached"), nil
	}
	c.sealingKeys, c.withNode = o.SealingKeys != "", o.WithNode

	o.Progress.Begin("dry run")
	c.normalize(objs)
	accepted, deferred := c.dryRun(ctx, objs)
	refused := countFailed(objs)
	detail := fmt.Sprintf("%d accepted, %d refused", accepted, refused)
	if deferred > 0 {
		detail += fmt.Sprintf(", %d checked at apply (their Namespace or CRD comes with them)", deferred)
	}
	r.Phases = append(r.Phases, o.Progress.End("dry run", detail))
	for _, src := range sources {
		if n := countFailedOf(objs, src); n > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: the API server refused %s, so a sync would apply none of its objects; "+
				"verify applied the others anyway, to report every problem in one run", src.name, plural(n, "object")))
		}
	}
	if ctx.Err() != nil {
		return r.finish(objs, cause()), nil
	}

	o.Progress.Begin("apply")
	before := countFailed(objs)
	applied, err := c.apply(ctx, objs, sources)
	detail = fmt.Sprintf("%d applied, %d refused or held back", applied, countFailed(objs)-before)
	if err != nil {
		detail += ": " + cause()
	}
	r.Phases = append(r.Phases, o.Progress.End("apply", detail))
	if ctx.Err() != nil {
		return r.finish(objs, cause()), nil
	}

	o.Progress.Begin("health")
	err = c.settle(ctx, objs)
	r.finish(objs, cause())
	detail = healthDetail(r)
	if err != nil {
		detail += ": " + cause()
	}
	r.Phases = append(r.Phases, o.Progress.End("health", detail))
	return r, nil
}

// renderAll renders every source and returns its objects, each with its
// case in r; a source that does not render, or renders nothing, is a failed
// case of its own. It returns the phase's detail.
func renderAll(root string, sources []*source, r *Report) ([]*object, string) {
	var objs []*object
	var details []string
	for _, s := range sources {
		res, err := render(root, s)
		if err != nil {
			r.Cases = append(r.Cases, &Case{Source: s.name, Name: "render " + s.path, Result: Failed, Message: oneLine(err.Error())})
			details = append(details, s.path+": failed")
			continue
		}
		for _, w := range res.Warnings {
			r.Notes = append(r.Notes, s.name+": "+w)
		}
		if res.Empty() {
			r.Cases = append(r.Cases, &Case{Source: s.name, Name: "render " + s.path, Result: Failed,
				Message: "renders no objects: a sync would apply nothing (a wrong path, or every manifest gone?)"})
			details = append(details, s.path+": no objects")
			continue
		}
		for _, u := range res.Objects {
			gvk := u.GroupVersionKind()
			c := &Case{Source: s.name, Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
			obj := &object{u: u, src: s, c: c}
			if gvk.Group == "argoproj.io" && gvk.Kind == "Application" {
				c.Result, c.Message = Skipped, "an Application is not applied: the engine would sync it from its repoURL; verify it with --app"
				obj.settled = true
			}
			if phases, ok := gitops.HookOf(u); ok {
				if c.Name == "" {
					c.Name = u.GetGenerateName() + "*"
				}
				c.Result, c.Message = Skipped, "a resource hook is not applied: a sync creates it in its phase ("+orNone(strings.Join(phases, ", "))+")"
				obj.settled = true
			}
			objs = append(objs, obj)
			r.Cases = append(r.Cases, c)
		}
		details = append(details, fmt.Sprintf("%s: %d objects (%s)", s.path, len(res.Objects), res.SourceType))
	}
	return objs, strings.Join(details, "; ")
}

// finish gives every object still without a result its result: what its
// health settled to, or a failure saying what stopped it (why).
func (r *Report) finish(objs []*object, why string) *Report {
	for _, o := range objs {
		if o.done() {
			continue
		}
		action := o.c.Message
		switch {
		case !o.applied:
			o.fail("not applied: " + orElse(why, "an earlier step failed"))
		case !o.settled:
			o.fail(fmt.Sprintf("%s; not healthy: %s: %s", action, orElse(o.c.health, "not looked at yet"), orElse(why, "not settled")))
		case o.c.verdict == healthy && o.gk() == sealedSecretGK:
			o.c.Result, o.c.Message = Healthy, action+"; "+o.c.health
		case o.c.verdict == healthy:
			o.c.Result = Healthy
		case o.c.verdict == unjudged:
			o.c.Result, o.c.Message = Applied, action+"; "+o.c.health
		case o.c.verdict == skipped:
			o.c.Result, o.c.Message = Skipped, action+"; "+o.c.health
		case o.c.verdict == unsealable:
			o.fail(action + "; " + o.c.health)
		default:
			o.fail(action + "; Degraded: " + o.c.health)
		}
	}
	r.Passed = r.Count(Failed) == 0
	if r.Count(Applied) > 0 && !r.WithNode {
		r.Notes = append(r.Notes, "workloads were applied but their health was not judged: pods need a node, "+
			"and this control plane has none (add --with-node, as root, to run them)")
	}
	return r
}

func healthDetail(r *Report) string {
	var parts []string
	for _, p := range []struct {
		res  Result
		text string
	}{{Healthy, "healthy"}, {Applied, "not judged (need a node)"}, {Skipped, "skipped"}, {Failed, "failed"}} {
		if n := r.Count(p.res); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, p.text))
		}
	}
	return strings.Join(parts, ", ")
}

func countFailed(objs []*object) int {
	n := 0
	for _, o := range objs {
		if o.c.Result == Failed {
			n++
		}
	}
	return n
}

func countFailedOf(objs []*object, src *source) int {
	n := 0
	for _, o := range objs {
		if o.src == src && o.c.Result == Failed {
			n++
		}
	}
	return n
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func prefixed(prefix string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = prefix + ": " + l
	}
	return out
}

// tempPrefix names the throwaway data dirs, so that one left behind by a
// killed run can be recognised and removed by the next.
const tempPrefix = "fjord-verify-"

// makeTempDir makes the run's directory under dir, or /dev/shm when it has
// at least 1 GiB free (the datastore then never waits for a disk), or the
// system's temp dir. It removes directories of earlier runs whose process
// is gone (killed with SIGKILL, so no cleanup ran).
func makeTempDir(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
		var st syscall.Statfs_t
		if syscall.Statfs("/dev/shm", &st) == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 && syscall.Access("/dev/shm", 2) == nil {
			dir = "/dev/shm"
		}
	}
	if old, err := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); err == nil {
		for _, d := range old {
			pid, err := os.ReadFile(filepath.Join(d, "owner.pid"))
			if n, perr := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil && perr == nil && !processAlive(n) {
				os.RemoveAll(d)
			}
		}
	}
	tmp, err := os.MkdirTemp(dir, tempPrefix)
	if err != nil {
		return "", fmt.Errorf("creating a temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("creating a temporary directory: %w", err)
	}
	return tmp, nil
}

func orNone(s string) string {
	if s == "" {
		return "none: it is not run"
	}
	return s
}
