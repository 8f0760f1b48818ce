// Command gitops measures Fjord's GitOps engine against kubectl and, when
// asked, Flux, on the same machine, and prints markdown tables.
//
// It starts `fjord server --disable-agent` itself and, on that one server:
// applies N objects (50% ConfigMaps, 25% Services, 25% Deployments, the mix
// and the objects of Flux's anchor, ../shared/bench/flux/flux-bench.py)
// with `kubectl apply --server-side` into a fresh namespace, then a no-op
// re-apply, then deletes that namespace; generates a git repository (git CLI,
// served as file://) with the same N objects and times an Argo CD Application
// from its creation (one API request, as flux-bench creates its
// Kustomization) to Synced at the commit with every object present; a
// no-op `fjord sync`; a commit reaching the cluster with an immediate trigger
// (the push webhook when the binary has one, else `fjord sync`) and by
// polling; and `scale` drift on a Deployment until it is reverted. Then it
// starts an identical server with --gitops.disable, does the same kubectl
// work there and applies the same N objects with kubectl, so that the RSS
// difference between the two processes is what the engine adds. With -flux it
// finally runs Flux's flux-bench.sh against that second server (namespace of
// the kubectl copy deleted first) and prints both side by side.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

const (
	appName   = "bench"
	appNS     = "argocd"
	gitopsNS  = "bench-gitops"
	kubectlNS = "bench-kubectl"
	label     = "app.kubernetes.io/part-of=fjord-anchor"
	poll      = 20 * time.Millisecond
)

// syncTimeout bounds every wait for one sync: at N=1000 on a loaded 2-vCPU
// machine a no-op sync took more than 45 s.
var syncTimeout time.Duration

// keepLogs is where stop copies a server's log (empty: nowhere).
var keepLogs string

var applicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

func main() {
	bin := flag.String("bin", envOr("FJORD_BIN", "/tmp/fjord-bench-bin"), "fjord binary (a copy: the build may replace bin/fjord meanwhile)")
	n := flag.Int("n", 1000, "objects in the repository")
	noopRuns := flag.Int("noop-runs", 5, "no-op syncs and no-op kubectl applies (median)")
	pushRuns := flag.Int("push-runs", 3, "commits per trigger kind (median)")
	kubectlNoop := flag.Int("kubectl-noop-runs", 1, "no-op kubectl applies (median)")
	baseline := flag.Bool("baseline", true, "start server B (--gitops.disable, the same objects) for the RSS the engine adds, and for Flux")
	baselineKubectl := flag.Bool("baseline-kubectl", false, "server B gets its objects by one `kubectl apply --server-side` (sessions 4–6) instead of server-side applies 32 at a time, as the engine applies them")
	withKubectl := flag.Bool("kubectl", true, "measure kubectl apply on server A (false: the GitOps measures only, for large N)")
	kubectlOnB := flag.Bool("kubectl-on-b", true, "repeat the kubectl apply/delete on the --gitops.disable server too, so both servers saw the same history")
	flag.DurationVar(&syncTimeout, "sync-timeout", 10*time.Minute, "longest wait for one sync (fjord sync --timeout, operation field, push)")
	driftTries := flag.Int("drift-tries", 20, "scale drifts to revert")
	pollInterval := flag.Duration("poll-interval", 10*time.Second, "--gitops.poll-interval of the measured server")
	settle := flag.Duration("settle", 30*time.Second, "idle time before reading RSS")
	flux := flag.String("flux", "", "flux-bench.sh to run against the --gitops.disable server (empty: skip Flux)")
	flag.StringVar(&keepLogs, "logs", "", "directory to copy each server's log into before its data dir is removed")
	profile := flag.String("profile", "", "only profile: start server A with --debug-listen, write CPU and heap profiles of the first sync and of no-op syncs into this directory, print nothing else")
	profileSeconds := flag.Int("profile-seconds", 20, "length of each CPU profile with -profile")
	firstOnly := flag.Int("first-sync-runs", 0, "only the first sync, on this many fresh servers A, one row each (for comparing binaries or settings; polling every 10m unless -poll-interval is given)")
	after := flag.Duration("after", 0, "with -first-sync-runs: also read RSS and count the requests on Applications this long after the sync")
	idle := flag.Duration("idle", time.Minute, "how long a fresh server stays idle before its idle RSS is read and the first writes begin (at least 10 s)")
	flag.Parse()

	b := &bench{bin: *bin, n: *n, kubectlNoop: *kubectlNoop, kubectlOnB: *kubectlOnB && *withKubectl, kubectl: *withKubectl, baseline: *baseline, baselineKubectl: *baselineKubectl, idle: max(*idle, 10*time.Second), after: *after}
	if *profile != "" {
		if err := b.profile(*profile, *profileSeconds); err != nil {
			fmt.Fprintln(os.Stderr, "gitops bench:", err)
			os.Exit(1)
		}
		return
	}
	if *firstOnly > 0 {
		// A 10 m poll unless -poll-interval is given: the full run's 10 s
		// poll can land in the middle of a first sync.
		b.firstPoll = 10 * time.Minute
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "poll-interval" {
				b.firstPoll = *pollInterval
			}
		})
		if err := b.firstSyncs(*firstOnly); err != nil {
			fmt.Fprintln(os.Stderr, "gitops bench:", err)
			os.Exit(1)
		}
		return
	}
	b.machine, b.loadStart = benchutil.Machine(), benchutil.LoadAvg()
	res, err := b.run(*noopRuns, *pushRuns, *driftTries, *pollInterval, *settle, *flux)
	b.loadEnd = benchutil.LoadAvg()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitops bench:", err)
		os.Exit(1)
	}
	res.print(b)
}

type bench struct {
	bin                         string
	n, kubectlNoop              int
	kubectlOnB, kubectl         bool
	baseline, baselineKubectl   bool
	machine, loadStart, loadEnd string
	idle, after                 time.Duration // -idle, -after
	firstPoll                   time.Duration // --gitops.poll-interval with -first-sync-runs
}

// baselineHow says how server B got its objects.
func (b *bench) baselineHow() string {
	if b.baselineKubectl {
		return "by one kubectl apply --server-side"
	}
	return "server-side applied 32 at a time, as the engine applies"
}

// results holds every measure in seconds (RSS in MiB); slices keep each run.
type results struct {
	n                     int
	baselineApply         string // how server B got its objects, and how long it took
	trigger               string // "webhook" or "fjord sync"
	pollInterval          time.Duration
	settle                time.Duration // idle time before the "at the end" readings
	kubectlFirst          float64
	kubectlNoop           []float64
	kubectlFirstB         float64
	kubectlNoopB          []float64
	firstSync             float64
	firstSyncLog          float64 // Application created → "synced" log line
	firstSyncCPU          float64 // server A's CPU seconds, user and system, over the first sync
	noopCLI, noopEngine   []float64
	noopRequests          string
	cliStart              float64
	pushNow, pushPoll     []float64
	drift                 []float64
	rssGitops, hwmGitops  float64
	rssPlain, hwmPlain    float64
	anonGitops, anonPlain float64
	// idleAnon and idleRSS are server A's idle before the Application is
	// applied (idleOf); peakAnon and peakRSS the most seen during its
	// first sync (sampled every 50 ms).
	idleAnon, idleRSS, peakAnon, peakRSS float64
	// pageoutAnon and pageoutRSS are server A's right after it paged its
	// binary out at start, the idle reading of sessions 7–9.
	pageoutAnon, pageoutRSS float64
	// idleAnonPlain … peakRSSPlain are server B's, before and while the
	// same objects are applied to it by a client: the API server's share
	// of a sync's peak, which any engine writing them would cause.
	idleAnonPlain, idleRSSPlain, peakAnonPlain, peakRSSPlain float64
	idle                                                     time.Duration // -idle
	// after60Anon and after60RSS are server A's 60 s after the first sync.
	after60Anon, after60RSS float64
	// after60AnonPlain and after60Plain are server B's 60 s after kubectl
	// applied the same objects.
	after60AnonPlain, after60Plain float64
	flux                           map[string]float64
	fluxOut                        string
	syncLines                      []string
}

func (b *bench) run(noopRuns, pushRuns, driftTries int, pollInterval, settle time.Duration, fluxScript string) (*results, error) {
	r := &results{n: b.n, pollInterval: pollInterval, settle: settle, idle: b.idle}
	help, _ := exec.Command(b.bin, "server", "--help").CombinedOutput()
	webhook := strings.Contains(string(help), "--gitops.webhook-listen")
	r.trigger = "fjord sync"
	if webhook {
		r.trigger = "webhook"
	}
	work, err := os.MkdirTemp("/var/tmp", "fjord-gitops-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	repo := &gitRepo{dir: filepath.Join(work, "repo")}
	kubectlYAML := filepath.Join(work, "kubectl.yaml")
	if err := os.WriteFile(kubectlYAML, []byte(namespaceDoc(kubectlNS)+"---\n"+allDocs(b.n, kubectlNS)), 0o644); err != nil {
		return nil, err
	}
	gitopsYAML := filepath.Join(work, "gitops.yaml")
	if err := os.WriteFile(gitopsYAML, []byte(namespaceDoc(gitopsNS)+"---\n"+allDocs(b.n, gitopsNS)), 0o644); err != nil {
		return nil, err
	}

	// ---- server A: the engine on.
	extra := []string{"--gitops.poll-interval", pollInterval.String()}
	secret := "bench-webhook-secret-0123456789"
	var hookURL string
	if webhook {
		addr := fmt.Sprintf("127.0.0.1:%d", benchutil.FreePort())
		hookURL = "http://" + addr + "/api/webhook"
		extra = append(extra, "--gitops.webhook-listen", addr, "--gitops.webhook-secret", secret)
	}
	a, err := startServer(b.bin, true, extra...)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	step("server A (GitOps on, trigger %s) ready; load %s", r.trigger, benchutil.LoadAvg())

	if b.kubectl {
		if r.kubectlFirst, r.kubectlNoop, err = a.kubectlPhase(kubectlYAML, b.n, b.kubectlNoop); err != nil {
			return nil, err
		}
	}
	if err := repo.init(b.n); err != nil {
		return nil, err
	}

	// First sync: the Application created → Synced at HEAD with every object.
	head := repo.head()
	pid := a.cmd.Process.Pid
	if r.pageoutRSS, r.pageoutAnon, r.idleRSS, r.idleAnon, err = a.idleOf(b.idle); err != nil {
		return nil, err
	}
	first, err := a.measureFirstSync(repo.url(), head, b.n)
	if err != nil {
		return nil, err
	}
	r.firstSync, r.firstSyncLog, r.firstSyncCPU, r.peakRSS, r.peakAnon = first.wall, first.logged, first.cpu, first.peakRSS, first.peakAnon
	synced := first.synced
	step("first sync of %d objects: %.2fs (log line 'synced' after %.2fs; server CPU %.2fs); RSS %.0f → peak %.0f MiB, RssAnon %.0f → peak %.0f MiB", b.n, r.firstSync, r.firstSyncLog, r.firstSyncCPU, r.idleRSS, r.peakRSS, r.idleAnon, r.peakAnon)
	r.after60RSS, r.after60Anon = memAround(pid, synced.Add(60*time.Second))
	step("60 s after the first sync (median of 45–75 s): RSS %.0f MiB, RssAnon %.0f MiB", r.after60RSS, r.after60Anon)

	// No-op resync, through the CLI (what an operator types) and through the
	// operation field directly (the engine's own time, without process start
	// and the CLI's 200 ms poll).
	t0 := time.Now()
	exec.Command(b.bin, "--version").Run()
	r.cliStart = time.Since(t0).Seconds()
	for i := range noopRuns {
		// operationState.finishedAt has second resolution and `fjord sync`
		// compares it to tell a new result from the old one: keep syncs in
		// different seconds.
		time.Sleep(1100 * time.Millisecond)
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout+time.Minute)
		out, err := exec.CommandContext(ctx, b.bin, "sync", "--data-dir", a.dir, "--timeout", syncTimeout.String(), appName).CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("fjord sync (no-op) %d: %v: %s", i+1, err, out)
		}
		r.noopCLI = append(r.noopCLI, time.Since(t0).Seconds())
		time.Sleep(1100 * time.Millisecond)
		d, err := a.operate()
		if err != nil {
			return nil, fmt.Errorf("no-op operation %d: %w", i+1, err)
		}
		r.noopEngine = append(r.noopEngine, d)
		step("no-op sync %d: fjord sync %.2fs, operation field %.2fs", i+1, r.noopCLI[i], d)
	}

	// What one no-op sync asks of the API server, from its own counters.
	time.Sleep(1100 * time.Millisecond)
	before := a.requests()
	if _, err := a.operate(); err != nil {
		return nil, err
	}
	r.noopRequests = diffCounts(a.requests(), before)
	step("API requests of one no-op sync: %s", r.noopRequests)

	// Push → applied, with the immediate trigger and by polling.
	for i := range pushRuns {
		time.Sleep(time.Second)
		val := fmt.Sprintf("now-%d", i)
		rev, err := repo.setCM0(b.n, val)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		var cli *exec.Cmd
		if webhook {
			if err := postWebhook(hookURL, secret, repo.url()); err != nil {
				return nil, err
			}
		} else {
			cli = exec.Command(b.bin, "sync", "--data-dir", a.dir, "--timeout", syncTimeout.String(), appName)
			if err := cli.Start(); err != nil {
				return nil, err
			}
		}
		err = a.waitFor(syncTimeout, "cm-00000="+val, func(ctx context.Context) bool { return a.cm0(ctx) == val })
		d := time.Since(t0).Seconds()
		if cli != nil {
			cli.Wait()
		}
		if err != nil {
			return nil, err
		}
		r.pushNow = append(r.pushNow, d)
		step("push %s → applied (%s): %.2fs", short(rev), r.trigger, d)
	}
	for i := range pushRuns {
		time.Sleep(time.Second)
		val := fmt.Sprintf("poll-%d", i)
		rev, err := repo.setCM0(b.n, val)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := a.waitFor(pollInterval+syncTimeout, "cm-00000="+val, func(ctx context.Context) bool { return a.cm0(ctx) == val }); err != nil {
			return nil, err
		}
		r.pushPoll = append(r.pushPoll, time.Since(t0).Seconds())
		step("push %s → applied (polling %s): %.2fs", short(rev), pollInterval, r.pushPoll[i])
	}

	// Drift: scale dep-00000 1 → 3, time until spec.replicas is 1 again.
	for i := range driftTries {
		time.Sleep(300 * time.Millisecond)
		d, err := a.drift()
		if err != nil {
			return nil, fmt.Errorf("drift try %d: %w", i+1, err)
		}
		r.drift = append(r.drift, d)
	}
	step("drift reverted, %d tries: p50 %.3fs p95 %.3fs max %.3fs", driftTries, benchutil.Percentile(r.drift, 50), benchutil.Percentile(r.drift, 95), slices.Max(r.drift))

	r.syncLines = a.logLines(0, `msg=synced`)
	time.Sleep(settle)
	r.rssGitops, r.hwmGitops = benchutil.MemMiB(a.cmd.Process.Pid)
	r.anonGitops = benchutil.AnonMiB(a.cmd.Process.Pid)
	step("server A RSS %.0f MiB (peak %.0f) with %d objects under management", r.rssGitops, r.hwmGitops, b.n)
	a.stop()

	if !b.baseline {
		return r, nil
	}
	// ---- server B: the same without the engine.
	s, err := startServer(b.bin, false, "--gitops.disable")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	step("server B (--gitops.disable) ready; load %s", benchutil.LoadAvg())
	if b.kubectlOnB {
		if r.kubectlFirstB, r.kubectlNoopB, err = s.kubectlPhase(kubectlYAML, b.n, b.kubectlNoop); err != nil {
			return nil, err
		}
	}
	// Idle is read as A's is.
	if _, _, r.idleRSSPlain, r.idleAnonPlain, err = s.idleOf(b.idle); err != nil {
		return nil, err
	}
	_, _, stopPeak := peakOf(s.cmd.Process.Pid)
	startB := time.Now()
	if b.baselineKubectl {
		if out, err := s.kubectl("apply", "--server-side", "-f", gitopsYAML); err != nil {
			return nil, fmt.Errorf("kubectl apply on B: %v: %s", err, out)
		}
	} else if err := s.applyBurst(gitopsYAML); err != nil {
		return nil, fmt.Errorf("applying on B: %w", err)
	}
	applied := time.Now()
	r.peakRSSPlain, r.peakAnonPlain = stopPeak()
	r.baselineApply = fmt.Sprintf("%s, %.2f s", b.baselineHow(), applied.Sub(startB).Seconds())
	time.Sleep(settle)
	r.rssPlain, r.hwmPlain = benchutil.MemMiB(s.cmd.Process.Pid)
	r.anonPlain = benchutil.AnonMiB(s.cmd.Process.Pid)
	step("server B RSS %.0f MiB (peak %.0f) with the same %d objects (%s)", r.rssPlain, r.hwmPlain, b.n, r.baselineApply)
	// B 60 s after its objects landed, as A is read 60 s after its first
	// sync: the controller manager is still turning the Deployments into
	// ReplicaSets and Pods on both, and that grows both servers alike.
	r.after60Plain, r.after60AnonPlain = memAround(s.cmd.Process.Pid, applied.Add(60*time.Second))
	step("server B 60 s after the apply (median of 45–75 s): RSS %.0f MiB, RssAnon %.0f MiB", r.after60Plain, r.after60AnonPlain)

	if fluxScript != "" {
		if err := s.deleteNamespace(gitopsNS); err != nil {
			return nil, err
		}
		step("running %s on server B; load %s", fluxScript, benchutil.LoadAvg())
		cmd := exec.Command(fluxScript, s.kubeconfig, strconv.Itoa(b.n))
		cmd.Env = append(os.Environ(), "APISERVER_PID="+strconv.Itoa(s.cmd.Process.Pid))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		r.fluxOut = out.String()
		fmt.Fprint(os.Stderr, r.fluxOut)
		if err != nil {
			return nil, fmt.Errorf("flux-bench.sh: %w", err)
		}
		r.flux = parseFlux(r.fluxOut)
	}
	return r, nil
}

// peakOf reads a process's RSS and RssAnon now, then every 50 ms until
// stop is called, which returns the highest of each.
func peakOf(pid int) (rss, anon float64, stop func() (peakRSS, peakAnon float64)) {
	rss, _ = benchutil.MemMiB(pid)
	anon = benchutil.AnonMiB(pid)
	peakRSS, peakAnon := rss, anon
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			r, _ := benchutil.MemMiB(pid)
			peakRSS, peakAnon = max(peakRSS, r), max(peakAnon, benchutil.AnonMiB(pid))
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return rss, anon, func() (float64, float64) {
		close(done)
		<-sampled
		return peakRSS, peakAnon
	}
}

// idleOf waits for the server's pageout at start (it pages its binary out
// right after it logs that it is ready) and reads RSS and RssAnon then,
// then keeps it idle for d in all and returns the medians of its last 10 s.
// An idle server's RSS right after the pageout is a low that lasts
// seconds: the code an idle control plane runs, and its heap, come back
// within the first minute (226 → 279–283 MiB over 60 s in session 10),
// and the idle server, measured before there was a pageout, is
// that steady state.
func (s *server) idleOf(d time.Duration) (pageoutRSS, pageoutAnon, rss, anon float64, err error) {
	if err = s.waitFor(30*time.Second, "the pageout after start", func(context.Context) bool {
		return len(s.logLines(0, "the binary's pages")) > 0 // released, or the warning that it could not be
	}); err != nil {
		return
	}
	pid := s.cmd.Process.Pid
	since := time.Now()
	pageoutRSS, _ = benchutil.MemMiB(pid)
	pageoutAnon = benchutil.AnonMiB(pid)
	time.Sleep(time.Until(since.Add(d - 10*time.Second)))
	var rs, as []float64
	for end := since.Add(d); len(rs) == 0 || time.Now().Before(end); time.Sleep(time.Second) {
		r, _ := benchutil.MemMiB(pid)
		rs, as = append(rs, r), append(as, benchutil.AnonMiB(pid))
	}
	rss, anon = benchutil.Median(rs), benchutil.Median(as)
	step("idle: RSS %.0f MiB (RssAnon %.0f) right after the pageout at start, %.0f (%.0f) over the last 10 s of %s", pageoutRSS, pageoutAnon, rss, anon, d)
	return
}

// firstSyncRun is what measureFirstSync read of one first sync.
type firstSyncRun struct {
	wall, logged, cpu float64 // seconds: Synced, the `synced` log line, server CPU
	peakRSS, peakAnon float64 // MiB, the server's peak while it ran
	synced            time.Time
}

// measureFirstSync creates the Application at head and reads the first
// sync: its wall time, when the engine logged it, the server's CPU time
// and peak memory over it.
func (a *server) measureFirstSync(url, head string, n int) (firstSyncRun, error) {
	pid := a.cmd.Process.Pid
	logMark := a.logSize()
	_, _, stopPeak := peakOf(pid)
	cpu0 := benchutil.CPUSeconds(pid)
	t0, err := a.firstSync(url, head, n)
	if err != nil {
		stopPeak()
		return firstSyncRun{}, err
	}
	r := firstSyncRun{wall: time.Since(t0).Seconds(), cpu: benchutil.CPUSeconds(pid) - cpu0, synced: time.Now()}
	r.peakRSS, r.peakAnon = stopPeak()
	if ts := a.logTimes(logMark, `msg=synced`); len(ts) > 0 {
		r.logged = ts[0].Sub(t0).Seconds()
	}
	return r, nil
}

// memAround returns the medians of a process's RSS and RssAnon, read once
// a second from 15 s before at until 15 s after it (at least once, if that
// window has passed already): one reading lands
// anywhere in the Go heap's collection cycle, which moves RSS by tens of
// MiB on its own.
func memAround(pid int, at time.Time) (rss, anon float64) {
	time.Sleep(time.Until(at.Add(-15 * time.Second)))
	var rs, as []float64
	for end := at.Add(15 * time.Second); len(rs) == 0 || time.Now().Before(end); time.Sleep(time.Second) {
		r, _ := benchutil.MemMiB(pid)
		rs, as = append(rs, r), append(as, benchutil.AnonMiB(pid))
	}
	return benchutil.Median(rs), benchutil.Median(as)
}

// ---------------------------------------------------------------- server

type server struct {
	dir, kubeconfig, logPath string
	cmd                      *exec.Cmd
	exited                   chan struct{}
	kube                     kubernetes.Interface
	dyn                      dynamic.Interface
	meta                     metadata.Interface
}

// startServer starts `fjord server --disable-agent` on free ports in a new
// data dir and waits until it logged that every component is ready (and,
// with GitOps on, the Application CRD and namespace exist).
func startServer(bin string, gitops bool, extra ...string) (*server, error) {
	dir, err := os.MkdirTemp("/var/tmp", "fjord-gitops-bench-srv-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig.yaml"), logPath: filepath.Join(dir, "fjord.log"), exited: make(chan struct{})}
	os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600)
	args := append([]string{"server", "--disable-agent", "--data-dir", dir, "--fsync-gate=off",
		"--https-listen-port", strconv.Itoa(benchutil.FreePort()), "--etcd-client-port", strconv.Itoa(benchutil.FreePort()),
		"--etcd-peer-port", strconv.Itoa(benchutil.FreePort()), "--kube-controller-manager-port=0", "--kube-scheduler-port=0",
		"--sealing.port", strconv.Itoa(benchutil.FreePort()),
		"--config", filepath.Join(dir, "none.yaml")}, extra...)
	log, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); log.Close(); close(s.exited) }()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(s.readLog(0), `msg="fjord is ready"`) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("fjord exited before it was ready:\n%s", tail(s.readLog(0), 3000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("fjord not ready after 3m:\n%s", tail(s.readLog(0), 3000))
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.stop()
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	s.kube, _ = kubernetes.NewForConfig(cfg)
	s.dyn, _ = dynamic.NewForConfig(cfg)
	s.meta, _ = metadata.NewForConfig(cfg)
	if gitops {
		err = s.waitFor(time.Minute, "Application CRD and namespace", func(ctx context.Context) bool {
			_, err1 := s.dyn.Resource(applicationGVR).Namespace(appNS).List(ctx, metav1.ListOptions{Limit: 1})
			_, err2 := s.kube.CoreV1().Namespaces().Get(ctx, appNS, metav1.GetOptions{})
			return err1 == nil && err2 == nil
		})
	}
	// kubectl's discovery cache is warmed here, not inside a measure.
	if out, kerr := s.kubectl("api-resources"); kerr != nil && err == nil {
		err = fmt.Errorf("kubectl api-resources: %v: %s", kerr, out)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop ends the server (SIGTERM, then SIGKILL after 60 s) and removes its
// data dir; it may be called more than once.
func (s *server) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(60 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if keepLogs != "" {
		if data, err := os.ReadFile(s.logPath); err == nil {
			os.MkdirAll(keepLogs, 0o755)
			os.WriteFile(filepath.Join(keepLogs, filepath.Base(s.dir)+".log"), data, 0o644)
		}
	}
	os.RemoveAll(s.dir)
}

func (s *server) kubectl(args ...string) (string, error) {
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", s.kubeconfig, "--request-timeout=120s"}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *server) readLog(from int64) string {
	data, _ := os.ReadFile(s.logPath)
	if from > int64(len(data)) {
		return ""
	}
	return string(data[from:])
}

func (s *server) logSize() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *server) logLines(from int64, substr string) []string {
	var out []string
	for _, l := range strings.Split(s.readLog(from), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// logTimes returns the time= of every log line after from containing substr.
func (s *server) logTimes(from int64, substr string) []time.Time {
	var out []time.Time
	for _, l := range s.logLines(from, substr) {
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "time="); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// waitFor polls ok every 20 ms until it holds or timeout passes.
func (s *server) waitFor(timeout time.Duration, what string, ok func(context.Context) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := ok(ctx)
		cancel()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not reached in %s", what, timeout)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s: fjord exited:\n%s", what, tail(s.readLog(0), 3000))
		case <-time.After(poll):
		}
	}
}

// countAll counts the labelled ConfigMaps, Services and Deployments in ns.
func (s *server) countAll(ctx context.Context, ns string) int {
	total := 0
	for _, gvr := range []schema.GroupVersionResource{{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "services"}, {Group: "apps", Version: "v1", Resource: "deployments"}} {
		l, err := s.meta.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: label})
		if err != nil {
			return -1
		}
		total += len(l.Items)
	}
	return total
}

func (s *server) app(ctx context.Context) *unstructured.Unstructured {
	u, err := s.dyn.Resource(applicationGVR).Namespace(appNS).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

func (s *server) appSynced(ctx context.Context, rev string) bool {
	u := s.app(ctx)
	return u != nil && synced(u, rev)
}

// firstSync creates the Application with one API request, as flux-bench
// creates its Kustomization (no kubectl process start in the time), and
// waits for it to be Synced at rev with all n objects there. A watch opened
// before the request sees each status write as it lands; polling the
// Application every 20 ms loaded the server whose sync it timed. It returns
// when the request was sent.
func (s *server) firstSync(repoURL, rev string, n int) (time.Time, error) {
	ctx := context.Background()
	var app unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(application(repoURL)), &app.Object); err != nil {
		return time.Time{}, err
	}
	res := s.dyn.Resource(applicationGVR).Namespace(appNS)
	list, err := res.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + appName})
	if err != nil {
		return time.Time{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	w, err := res.Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + appName, ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		return time.Time{}, err
	}
	defer w.Stop()
	t0 := time.Now()
	if _, err := res.Create(ctx, &app, metav1.CreateOptions{FieldManager: "bench"}); err != nil {
		return t0, fmt.Errorf("creating the Application: %w", err)
	}
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || !synced(u, rev) {
			continue
		}
		// Synced is written once every object was applied; the count
		// checks it.
		return t0, s.waitFor(time.Minute, "all objects after Synced", func(ctx context.Context) bool {
			return s.countAll(ctx, gitopsNS) == n
		})
	}
	return t0, errors.New("first sync: not seen within 15m")
}

func synced(u *unstructured.Unstructured, rev string) bool {
	st, _, _ := unstructured.NestedString(u.Object, "status", "sync", "status")
	got, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision")
	phase, _, _ := unstructured.NestedString(u.Object, "status", "operationState", "phase")
	return st == "Synced" && got == rev && phase == "Succeeded"
}

// operate requests a sync through the operation field, as `fjord sync` does,
// and returns the seconds until the engine cleared the field and wrote a
// Succeeded operationState: the engine's time without the CLI around it.
func (s *server) operate() (float64, error) {
	total, _, err := s.operateSplit()
	return total, err
}

// operateSplit requests a sync through the operation field and returns the
// seconds from the request until the watch shows it Succeeded, and of
// those, the seconds until the request itself was stored (the patch's
// answer): the rest is the engine's.
func (s *server) operateSplit() (total, stored float64, err error) {
	ctx := context.Background()
	res := s.dyn.Resource(applicationGVR).Namespace(appNS)
	before := s.app(ctx)
	if before == nil {
		return 0, 0, errors.New("application not found")
	}
	// A watch opened before the request sees the answer as it is written
	// (what `fjord sync` and `argocd app wait` do); polling GETs of a
	// 1000-resource Application every 20 ms would load the server it times.
	wctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	w, err := res.Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + appName, ResourceVersion: before.GetResourceVersion()})
	if err != nil {
		return 0, 0, err
	}
	defer w.Stop()
	patch := []byte(`{"operation":{"initiatedBy":{"username":"bench"},"sync":{"revision":""}}}`)
	t0 := time.Now()
	if _, err := res.Patch(ctx, appName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "bench"}); err != nil {
		return 0, 0, err
	}
	stored = time.Since(t0).Seconds()
	requested := false
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		_, pending := u.Object["operation"]
		requested = requested || pending
		phase, _, _ := unstructured.NestedString(u.Object, "status", "operationState", "phase")
		if requested && !pending && phase == "Succeeded" {
			return time.Since(t0).Seconds(), stored, nil
		}
	}
	return 0, 0, fmt.Errorf("operation done: not seen within %s", syncTimeout)
}

func (s *server) cm0(ctx context.Context) string {
	cm, err := s.kube.CoreV1().ConfigMaps(gitopsNS).Get(ctx, "cm-00000", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["value"]
}

// drift scales dep-00000 to 3 through the scale subresource (what `kubectl
// scale` does) and returns the seconds from the request until a watch,
// opened before it, delivers spec.replicas back at 1.
func (s *server) drift() (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deps := s.kube.AppsV1().Deployments(gitopsNS)
	cur, err := deps.Get(ctx, "dep-00000", metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	if cur.Spec.Replicas == nil || *cur.Spec.Replicas != 1 {
		return 0, fmt.Errorf("dep-00000 has %v replicas before the drift", cur.Spec.Replicas)
	}
	w, err := deps.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=dep-00000", ResourceVersion: cur.ResourceVersion})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	t0 := time.Now()
	if _, err := deps.Patch(ctx, "dep-00000", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale"); err != nil {
		return 0, err
	}
	scaled := false
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || d.Spec.Replicas == nil {
			continue
		}
		reps := *d.Spec.Replicas
		if reps == 3 {
			scaled = true
		}
		if scaled && reps == 1 {
			return time.Since(t0).Seconds(), nil
		}
	}
	return 0, errors.New("watch ended before the drift was reverted")
}

// kubectlPhase applies file (a Namespace and n objects in it) with
// `kubectl apply --server-side` into the fresh namespace, re-applies it
// noop times unchanged, and deletes the namespace again.
func (s *server) kubectlPhase(file string, n, noop int) (first float64, noops []float64, err error) {
	t0 := time.Now()
	if out, err := s.kubectl("apply", "--server-side", "-f", file); err != nil {
		return 0, nil, fmt.Errorf("kubectl apply: %v: %s", err, tail(out, 2000))
	}
	first = time.Since(t0).Seconds()
	if c := s.countAll(context.Background(), kubectlNS); c != n {
		return 0, nil, fmt.Errorf("kubectl apply left %d of %d objects", c, n)
	}
	step("kubectl apply --server-side of %d objects into a fresh namespace: %.2fs", n, first)
	for range noop {
		t0 := time.Now()
		if out, err := s.kubectl("apply", "--server-side", "-f", file); err != nil {
			return 0, nil, fmt.Errorf("kubectl apply (no-op): %v: %s", err, tail(out, 2000))
		}
		noops = append(noops, time.Since(t0).Seconds())
	}
	step("kubectl apply --server-side no-op: %s", fmtList(noops))
	return first, noops, s.deleteNamespace(kubectlNS)
}

func (s *server) deleteNamespace(ns string) error {
	ctx := context.Background()
	if err := s.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return s.waitFor(5*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) bool {
		_, err := s.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// requests returns the API server's apiserver_request_total for the given
// resources (default: the bench kinds), by verb (and dry run), summed over
// codes.
func (s *server) requests(resources ...string) map[string]float64 {
	if len(resources) == 0 {
		resources = []string{"configmaps", "services", "deployments"}
	}
	m := map[string]float64{}
	raw, err := s.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(raw), "\n") {
		labels, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, val, _ := strings.Cut(labels, "} ")
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		if !slices.Contains(resources, l["resource"]) {
			continue
		}
		key := l["verb"]
		if l["dry_run"] != "" {
			key += " (dry run)"
		}
		if l["subresource"] != "" {
			key += " " + l["subresource"]
		}
		x, _ := strconv.ParseFloat(val, 64)
		m[key] += x
	}
	return m
}

// diffCounts prints after − before, largest first.
func diffCounts(after, before map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var d []kv
	total := 0.0
	for k, v := range after {
		if x := v - before[k]; x > 0 {
			d = append(d, kv{k, x})
			total += x
		}
	}
	slices.SortFunc(d, func(a, b kv) int { return int(b.v - a.v) })
	parts := []string{fmt.Sprintf("%.0f in all", total)}
	for _, e := range d {
		parts = append(parts, fmt.Sprintf("%s %.0f", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

func postWebhook(url, secret, repoURL string) error {
	body, _ := json.Marshal(map[string]any{"project": map[string]any{"git_http_url": repoURL}})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s", resp.Status)
	}
	return nil
}

// ---------------------------------------------------------------- git + objects

type gitRepo struct{ dir string }

func (r *gitRepo) git(args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=bench", "-c", "user.email=bench@fjord.dev"}, args...)...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (r *gitRepo) url() string { return "file://" + r.dir }

func (r *gitRepo) head() string { h, _ := r.git("rev-parse", "HEAD"); return h }

// init writes the repository of Flux's anchor under bench/: one file per
// kind and a kustomization.yaml listing them.
func (r *gitRepo) init(n int) error {
	if err := os.MkdirAll(filepath.Join(r.dir, "bench"), 0o755); err != nil {
		return err
	}
	if _, err := r.git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	cms, svcs, deps := split(n)
	files := map[string]string{
		"configmaps.yaml":    configMaps(cms, gitopsNS, "v1"),
		"services.yaml":      services(svcs, gitopsNS),
		"deployments.yaml":   deployments(deps, gitopsNS),
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [configmaps.yaml, services.yaml, deployments.yaml]\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.dir, "bench", name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return r.commit(fmt.Sprintf("bench: %d objects", n))
}

func (r *gitRepo) commit(msg string) error {
	if _, err := r.git("add", "-A"); err != nil {
		return err
	}
	_, err := r.git("commit", "-q", "-m", msg)
	return err
}

// setCM0 commits a new value of cm-00000 and returns the commit.
func (r *gitRepo) setCM0(n int, value string) (string, error) {
	cms, _, _ := split(n)
	if err := os.WriteFile(filepath.Join(r.dir, "bench", "configmaps.yaml"), []byte(configMaps(cms, gitopsNS, value)), 0o644); err != nil {
		return "", err
	}
	if err := r.commit("bench: cm-00000=" + value); err != nil {
		return "", err
	}
	return r.head(), nil
}

// split is flux-bench.py's mix: 50% ConfigMaps, 25% Services, the rest Deployments.
func split(n int) (cms, svcs, deps int) { return n / 2, n / 4, n - n/2 - n/4 }

func namespaceDoc(ns string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
}

func configMaps(n int, ns, cm0 string) string {
	docs := make([]string, n)
	for i := range n {
		v := "v1"
		if i == 0 {
			v = cm0
		}
		docs[i] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\n  namespace: %s\n"+
			"  labels: {app.kubernetes.io/part-of: fjord-anchor}\n"+
			"data:\n  index: \"%d\"\n  value: \"%s\"\n  payload: \"%s\"\n", i, ns, i, v, strings.Repeat("x", 64))
	}
	return strings.Join(docs, "---\n")
}

func services(n int, ns string) string {
	docs := make([]string, n)
	for i := range n {
		docs[i] = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%05d\n  namespace: %s\n"+
			"  labels: {app.kubernetes.io/part-of: fjord-anchor}\n"+
			"spec:\n  selector: {app: dep-%05d}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n", i, ns, i)
	}
	return strings.Join(docs, "---\n")
}

// deployments are Flux's: one replica. No node runs pods here
// (--disable-agent), so each stays Progressing with one Pending pod.
func deployments(n int, ns string) string {
	docs := make([]string, n)
	for i := range n {
		docs[i] = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-%05d\n  namespace: %s\n"+
			"  labels: {app.kubernetes.io/part-of: fjord-anchor}\n"+
			"spec:\n  replicas: 1\n  selector: {matchLabels: {app: dep-%05d}}\n"+
			"  template:\n    metadata: {labels: {app: dep-%05d}}\n"+
			"    spec:\n      containers:\n      - {name: app, image: registry.k8s.io/pause:3.10}\n", i, ns, i, i)
	}
	return strings.Join(docs, "---\n")
}

func allDocs(n int, ns string) string {
	cms, svcs, deps := split(n)
	return configMaps(cms, ns, "v1") + "---\n" + services(svcs, ns) + "---\n" + deployments(deps, ns)
}

func application(repoURL string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: %s
spec:
  project: default
  source:
    repoURL: '%s'
    targetRevision: main
    path: bench
  destination:
    server: 'https://kubernetes.default.svc'
    namespace: %s
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
`, appName, appNS, repoURL, gitopsNS)
}

// ---------------------------------------------------------------- output

func (r *results) print(b *bench) {
	fmt.Printf("\nN=%d (%d ConfigMaps, %d Services, %d Deployments with 1 replica); immediate trigger: %s; poll interval %s\n\n",
		r.n, r.n/2, r.n/4, r.n-r.n/2-r.n/4, r.trigger, r.pollInterval)
	if b.kubectl {
		fmt.Println("| measure | Fjord | kubectl apply --server-side | Fjord ÷ kubectl |")
		fmt.Println("|---|---|---|---|")
		fmt.Printf("| first apply of N objects (fresh namespace) | %.2f s | %.2f s%s | %s |\n", r.firstSync, r.kubectlFirst, onB(r.kubectlFirstB), ratio(r.firstSync, r.kubectlFirst))
		fmt.Printf("| no-op resync, `fjord sync` wall time (median of %d) | %.2f s (%s) | %.2f s (%s)%s | %s |\n", len(r.noopCLI), benchutil.Median(r.noopCLI), fmtList(r.noopCLI), benchutil.Median(r.kubectlNoop), fmtList(r.kubectlNoop), onB(benchutil.Median(r.kubectlNoopB)), ratio(benchutil.Median(r.noopCLI), benchutil.Median(r.kubectlNoop)))
	} else {
		fmt.Println("| measure | Fjord | kubectl apply --server-side (not run: -kubectl=false) | |")
		fmt.Println("|---|---|---|---|")
		fmt.Printf("| first apply of N objects (fresh namespace) | %.2f s | | |\n", r.firstSync)
		fmt.Printf("| no-op resync, `fjord sync` wall time (median of %d) | %.2f s (%s) | | |\n", len(r.noopCLI), benchutil.Median(r.noopCLI), fmtList(r.noopCLI))
	}
	fmt.Printf("| no-op resync, operation field → Succeeded (median of %d) | %.2f s (%s) | | %s |\n", len(r.noopEngine), benchutil.Median(r.noopEngine), fmtList(r.noopEngine), ratio(benchutil.Median(r.noopEngine), benchutil.Median(r.kubectlNoop)))
	fmt.Printf("\nAPI requests on ConfigMaps, Services and Deployments during one no-op sync (apiserver_request_total): %s.\n", r.noopRequests)
	fmt.Printf("\nFirst sync: Application created (one API request) → log line `synced` after %.2f s; server A's CPU over it %.2f s; `fjord --version` process start %.2f s.\n\n", r.firstSyncLog, r.firstSyncCPU, r.cliStart)
	fmt.Println("| measure | Fjord | goal |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| push → applied, %s (median of %d) | %.2f s (%s) | |\n", r.trigger, len(r.pushNow), benchutil.Median(r.pushNow), fmtList(r.pushNow))
	fmt.Printf("| push → applied, polling every %s (median of %d) | %.2f s (%s) | ≤ %.0f s |\n", r.pollInterval, len(r.pushPoll), benchutil.Median(r.pushPoll), fmtList(r.pushPoll), r.pollInterval.Seconds()+1)
	fmt.Printf("| `scale` drift → reverted (%d tries) | p50 %.3f s, p95 %.3f s, max %.3f s | p95 ≤ 0.1 s |\n", len(r.drift), benchutil.Percentile(r.drift, 50), benchutil.Percentile(r.drift, 95), slices.Max(r.drift))
	fmt.Printf("| RSS with N objects, engine on (server A) | %.0f MiB (peak %.0f) | |\n", r.rssGitops, r.hwmGitops)
	if r.rssPlain > 0 {
		fmt.Printf("| RSS with N objects, --gitops.disable (server B: %s) | %.0f MiB (peak %.0f) | |\n", r.baselineApply, r.rssPlain, r.hwmPlain)
		// Not the figure (the 60 s row is): A is read after all its
		// phases and the settle time, when it has usually trimmed its memory
		// already; B the settle time after its apply, while its controllers
		// still react to the new Deployments.
		fmt.Printf("| RSS at the end, A (after every phase and %s idle) − B (%s after its apply) | %+.0f MiB (RssAnon %.0f − %.0f = %+.0f MiB) | |\n", r.settle, r.settle, r.rssGitops-r.rssPlain, r.anonGitops, r.anonPlain, r.anonGitops-r.anonPlain)
		fmt.Printf("| RSS 60 s after the objects landed (median of 45–75 s): A (first sync) − B | %.0f − %.0f = **+%.0f MiB** (RssAnon %.0f − %.0f = +%.0f MiB) | ≤ +60 MiB |\n", r.after60RSS, r.after60Plain, r.after60RSS-r.after60Plain, r.after60Anon, r.after60AnonPlain, r.after60Anon-r.after60AnonPlain)
		fmt.Printf("| the same against B read at the end, after the settle time (sessions 4–5) | +%.0f MiB (RssAnon +%.0f MiB) | |\n", r.after60RSS-r.rssPlain, r.after60Anon-r.anonPlain)
	} else {
		fmt.Printf("| RSS of A 60 s after the first sync (no server B: -baseline=false) | %.0f MiB (RssAnon %.0f) | |\n", r.after60RSS, r.after60Anon)
	}
	fmt.Printf("| RSS peak during the first sync over A idle before it (median of the last 10 s of %s idle after its start) | %.0f → %.0f MiB, +%.0f MiB (RssAnon %.0f → %.0f, +%.0f MiB) | ≤ +150 MiB |\n", r.idle, r.idleRSS, r.peakRSS, r.peakRSS-r.idleRSS, r.idleAnon, r.peakAnon, r.peakAnon-r.idleAnon)
	if !b.kubectl { // else the kubectl phase ran between the pageout and the first sync
		fmt.Printf("| the same over A read right after it paged its binary out at start (sessions 7–9) | %.0f → %.0f MiB, +%.0f MiB (RssAnon %.0f → %.0f, +%.0f MiB) | |\n", r.pageoutRSS, r.peakRSS, r.peakRSS-r.pageoutRSS, r.pageoutAnon, r.peakAnon, r.peakAnon-r.pageoutAnon)
	}
	if r.peakRSSPlain > 0 {
		fmt.Printf("| the same writes on server B, no engine (its API server's share of the peak) | %.0f → %.0f MiB, +%.0f MiB (RssAnon %.0f → %.0f, +%.0f MiB) | |\n", r.idleRSSPlain, r.peakRSSPlain, r.peakRSSPlain-r.idleRSSPlain, r.idleAnonPlain, r.peakAnonPlain, r.peakAnonPlain-r.idleAnonPlain)
	}
	fmt.Printf("| time per object: first sync, no-op (engine) | %.2f ms, %.3f ms | |\n", 1000*r.firstSync/float64(r.n), 1000*benchutil.Median(r.noopEngine)/float64(r.n))
	if r.flux == nil {
		fmt.Println("\nFlux: not run (build it with ../shared/bench/flux/flux-build.sh, then pass -flux ../shared/bench/flux/flux-bench.sh).")
	}
	if r.flux != nil {
		f := r.flux
		fmt.Println("\n| measure | Fjord | Flux v1.9.6 (source- + kustomize-controller) | Flux ÷ Fjord |")
		fmt.Println("|---|---|---|---|")
		fmt.Printf("| first sync of N objects | %.2f s | %.2f s (GitRepository %.2f s + Kustomization %.2f s) | %s |\n", r.firstSync, f["a0"]+f["a"], f["a0"], f["a"], ratio(r.firstSync, f["a0"]+f["a"]))
		fmt.Printf("| no-op reconcile (engine, median) | %.2f s | %.2f s | %s |\n", benchutil.Median(r.noopEngine), f["b"], ratio(benchutil.Median(r.noopEngine), f["b"]))
		fmt.Printf("| push → applied, immediate trigger | %.2f s (%s) | %.2f s (source requestedAt) | %s |\n", benchutil.Median(r.pushNow), r.trigger, f["c2"], ratio(benchutil.Median(r.pushNow), f["c2"]))
		fmt.Printf("| push → applied, polling %s | %.2f s | %.2f s | |\n", r.pollInterval, benchutil.Median(r.pushPoll), f["c"])
		fmt.Printf("| drift reverted | p50 %.3f s (watch) | %.2f s (Kustomization interval 1m) | |\n", benchutil.Percentile(r.drift, 50), f["d"])
		fmt.Printf("| RSS of the GitOps part | %.0f MiB (added by the engine) | %.0f MiB (%.0f + %.0f) | |\n", r.rssGitops-r.rssPlain, f["sc_rss"]+f["kc_rss"], f["sc_rss"], f["kc_rss"])
		fmt.Printf("| RSS of everything | %.0f MiB (one process) | %.0f MiB (Fjord --gitops.disable %.0f + controllers) | |\n", r.rssGitops, f["api_rss"]+f["sc_rss"]+f["kc_rss"], f["api_rss"])
	}
	fmt.Printf("\nMachine: %s. Load average (1 5 15 min) at start %s, at end %s.\n", b.machine, b.loadStart, b.loadEnd)
	fmt.Println("\nEngine log, `synced` lines:")
	for _, l := range r.syncLines {
		fmt.Println("    " + l)
	}
}

// parseFlux reads flux-bench's SUMMARY line (and the API server RSS line).
func parseFlux(out string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "SUMMARY flux "); ok {
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				v = strings.TrimSuffix(strings.TrimSuffix(v, "MiB"), "s")
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					m[k] = x
				}
			}
		}
		if strings.Contains(line, "API server process RSS") {
			for _, f := range strings.Fields(line) {
				if x, err := strconv.ParseFloat(f, 64); err == nil {
					m["api_rss"] = x
					break
				}
			}
		}
	}
	return m
}

// ---------------------------------------------------------------- helpers

func step(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func onB(x float64) string {
	if x == 0 {
		return ""
	}
	return fmt.Sprintf(" (server B: %.2f s)", x)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", b/a)
}

func fmtList(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, ", ")
}

func short(rev string) string {
	if len(rev) > 8 {
		return rev[:8]
	}
	return rev
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
