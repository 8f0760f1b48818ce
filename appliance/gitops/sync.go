package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fjord-dev/fjord/appliance/gitops/build"
	"github.com/fjord-dev/fjord/appliance/gitops/source"
)

// outcome is what one reconcile found and did; it becomes the status.
type outcome struct {
	revision   string
	sourceType string
	syncStatus string // Synced, OutOfSync, Unknown
	health     Health
	healthMsg  string
	resources  []resourceStatus
	conditions []condition
	// operated is set when an apply ran (or was refused): operationState is
	// then rewritten with phase, message and per-resource results.
	operated bool
	phase    string // Succeeded, Failed, Error
	message  string
	results  []resourceResult
	// retryCount is the number of retries of this sync (syncPolicy.retry).
	retryCount int64
	started    time.Time
	finished   time.Time
	retry      bool
	// refreshed is set when nothing was attempted: health and drift of the
	// last applied revision were only looked at again.
	refreshed bool
	// attempt is revision@generation once the revision was fetched.
	attempt string
	// rendered is the number of objects built from Git by this reconcile
	// (0 when the render was reused).
	rendered int
	// endBurst ends the gcBurst a sync of many writes started; reconcile
	// calls it after the status write.
	endBurst func()
	// took is how long each step of a sync took, as the `synced` log line
	// reports it (step, duration, ...).
	took []any
}

// step records how long a step of the sync took, since *from, and moves
// *from on.
func (o *outcome) step(name string, from *time.Time) {
	now := time.Now()
	o.took = append(o.took, name, now.Sub(*from).Round(time.Millisecond))
	*from = now
}

type condition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// resourceResult is one entry of operationState.syncResult.resources.
type resourceResult struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
	SyncPhase string `json:"syncPhase,omitempty"`
	// HookType and HookPhase are set on hooks: their type and whether
	// they are Running, Succeeded or Failed.
	HookType  string `json:"hookType,omitempty"`
	HookPhase string `json:"hookPhase,omitempty"`
}

func resultFor(u *unstructured.Unstructured, status, msg string) resourceResult {
	gvk := u.GroupVersionKind()
	return resourceResult{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Status: status, Message: msg, SyncPhase: "Sync"}
}

// failed returns an outcome that keeps the previous inventory and says why.
func failed(prev []resourceStatus, condType, msg string, retry bool) *outcome {
	return &outcome{syncStatus: "Unknown", resources: prev, conditions: []condition{{Type: condType, Message: msg}}, retry: retry}
}

// sync runs the pipeline for app: fetch → build → apply → prune → health.
// SealedSecrets are applied as they are; the in-process sealed-secrets
// controller unseals them and their health says whether it could. Nothing
// is applied or pruned unless every earlier stage succeeded.
func (e *Engine) sync(ctx context.Context, app *Application, st *appState, operation bool, u *unstructured.Unstructured) *outcome {
	prev := inventoryOf(u)
	if err := app.Validate(); err != nil {
		return failed(prev, "InvalidSpecError", err.Error(), false)
	}
	// A health change of an applied object needs a status refresh, not a
	// question to the Git host: the revision stays what was last attempted.
	e.mu.Lock()
	retryDue := st.retryDue
	st.retryDue = false
	healthOnly := st.healthOnly && !operation && !retryDue
	st.healthOnly = false
	rev, attemptedSpec, _ := strings.Cut(st.attempted, "@")
	e.mu.Unlock()
	if healthOnly && rev != "" && attemptedSpec == app.SpecHash {
		e.mu.Lock()
		st.app = app
		e.mu.Unlock()
		return e.refresh(ctx, app, st, rev, prev, u)
	}
	// A retry of a failed sync runs the operation again, as if asked for.
	operation = operation || retryDue
	proj, err := e.project(ctx, app)
	if err == nil {
		err = proj.checkSource(app)
	}
	if err != nil {
		return failed(prev, "InvalidSpecError", err.Error(), false)
	}
	srcs := app.SourceList()
	repos := make([]source.Repository, len(srcs))
	revs := make([]string, len(srcs))
	for i, src := range srcs {
		if repos[i], err = e.repository(ctx, src.RepoURL); err != nil {
			return failed(prev, "ComparisonError", err.Error(), true)
		}
		if revs[i], err = e.sources.Resolve(ctx, repos[i], src.TargetRevision); err != nil {
			return failed(prev, "ComparisonError", err.Error(), !source.IsTerminal(err))
		}
	}
	// With several sources the revision is theirs, in order, joined.
	rev = strings.Join(revs, ",")
	attempt := rev + "@" + app.SpecHash
	e.mu.Lock()
	st.app = app
	unchanged := st.attempted == attempt && !operation
	r := st.render
	e.mu.Unlock()
	if unchanged {
		// Nothing moved in Git or in the spec: refresh health and drift only.
		return e.refresh(ctx, app, st, rev, prev, u)
	}

	start := time.Now()
	built := 0
	var renderTook time.Duration
	if r == nil || r.key != renderKey(rev, app) {
		// Not rendered yet at this commit: fetch and build. A no-op resync
		// (fjord sync, a poll of an Application without automated) skips this.
		arts := make([]*source.Artifact, len(srcs))
		for i, src := range srcs {
			if arts[i], err = e.sources.Fetch(ctx, repos[i], src.TargetRevision); err != nil {
				return failed(prev, "ComparisonError", err.Error(), !source.IsTerminal(err))
			}
			revs[i] = arts[i].Revision
		}
		rev = strings.Join(revs, ",")
		attempt = rev + "@" + app.SpecHash
		res, err := buildSources(app, arts)
		e.mu.Lock()
		st.attempted = attempt
		e.mu.Unlock()
		if err != nil {
			out := failed(prev, "ComparisonError", err.Error(), false)
			out.revision = rev
			e.event(u, true, "ComparisonError", out.conditions[0].Message)
			return withAttempt(attempt, out)
		}
		unknown, err := e.normalize(app, res.Objects)
		if err != nil {
			out := failed(prev, "ComparisonError", err.Error(), false)
			out.revision = rev
			return withAttempt(attempt, out)
		}
		resources, hooks, err := splitHooks(res.Objects)
		if err != nil {
			out := failed(prev, "ComparisonError", err.Error(), false)
			out.revision = rev
			return withAttempt(attempt, out)
		}
		r = newRendered(renderKey(rev, app), resources, string(res.SourceType))
		r.hooks, r.unknownKinds = hooks, unknown
		built = len(r.objs)
		renderTook = time.Since(start)
		e.mu.Lock()
		st.render = r
		e.mu.Unlock()
	} else {
		e.mu.Lock()
		st.attempted = attempt
		e.mu.Unlock()
	}
	// Nothing the project does not permit is written (hooks included).
	checked := slices.Clone(r.objs)
	for _, h := range r.hooks {
		checked = append(checked, h.obj)
	}
	if err := proj.checkObjects(app, checked); err != nil {
		out := failed(prev, "ComparisonError", err.Error(), false)
		out.revision = rev
		if operation {
			out.operated, out.phase, out.message = true, "Failed", "ComparisonError: "+err.Error()
		}
		return withAttempt(attempt, out)
	}
	if !app.Automated() && !operation {
		out := e.compare(ctx, app, st, rev, r, prev)
		out.rendered = built
		return withAttempt(attempt, out)
	}
	out := e.apply(ctx, app, st, rev, r, prev, u)
	if built > 0 {
		out.took = append([]any{"render", renderTook.Round(time.Millisecond)}, out.took...)
	}
	if out.phase == "Succeeded" {
		args := []any{"application", app.Name, "revision", short(rev), "objects", len(r.objs), "pruned", countStatus(out.results, "Pruned")}
		e.log.Info("synced", append(args, out.took...)...)
	}
	out.rendered = built
	out.sourceType = r.sourceType
	out.started, out.finished = start, time.Now()
	syncDuration.WithLabelValues(app.Name).Observe(out.finished.Sub(start).Seconds())
	return withAttempt(attempt, out)
}

// objectHash identifies the desired state of one object.
func objectHash(o *unstructured.Unstructured) string {
	data, _ := json.Marshal(o.Object) // map keys are sorted: stable
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func withAttempt(attempt string, o *outcome) *outcome {
	o.attempt = attempt
	return o
}

// normalize sets the destination namespace on namespaced objects without
// one and marks every object with Argo CD's tracking annotation.
func (e *Engine) normalize(app *Application, objs []*unstructured.Unstructured) (unknown map[schema.GroupKind]bool, err error) {
	crdKinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crdKinds[schema.GroupKind{Group: g, Kind: k}] = scope == "Namespaced"
		}
	}
	seen := map[objKey]bool{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced, known := crdKinds[gvk.GroupKind()]
		if !known {
			m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			switch {
			case meta.IsNoMatchError(err) && (app.SyncOption("SkipDryRunOnMissingResource") || hasSyncOption(o, "SkipDryRunOnMissingResource=true")):
				// Its CRD comes from elsewhere (an operator, another
				// Application): not dry-run, applied as a namespaced object
				// unless it names none and no destination namespace is set.
				if unknown == nil {
					unknown = map[schema.GroupKind]bool{}
				}
				unknown[gvk.GroupKind()] = true
				namespaced = o.GetNamespace() != "" || app.Spec.Destination.Namespace != ""
			case meta.IsNoMatchError(err):
				return nil, fmt.Errorf("%s %s: unknown kind (is its CustomResourceDefinition installed? syncOptions SkipDryRunOnMissingResource=true skips it in the dry run)", gvk.GroupVersion(), gvk.Kind)
			case err != nil:
				return nil, fmt.Errorf("mapping %s: %w", gvk, err)
			default:
				namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
			}
		}
		if namespaced && o.GetNamespace() == "" {
			o.SetNamespace(app.Spec.Destination.Namespace)
			if o.GetNamespace() == "" {
				return nil, fmt.Errorf("%s %s: namespaced object without a namespace, and spec.destination.namespace is empty", gvk.Kind, o.GetName())
			}
		}
		if !namespaced {
			o.SetNamespace("")
		}
		k := keyOf(o)
		if seen[k] && k.Name != "" { // hooks with generateName have none yet
			return nil, fmt.Errorf("%s: defined twice", k)
		}
		seen[k] = true
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[annotationTrackingID] = trackingID(app, o)
		o.SetAnnotations(ann)
	}
	return unknown, nil
}

// apply syncs objs: a dry run of everything first (atomic: nothing is
// written when any object is refused), then the waves in order, then prune.
func (e *Engine) apply(ctx context.Context, app *Application, st *appState, rev string, r *rendered, prev []resourceStatus, u *unstructured.Unstructured) *outcome {
	objs := r.objs
	out := &outcome{revision: rev, operated: true, resources: prev, syncStatus: "OutOfSync"}
	fail := func(condType, msg string) *outcome {
		out.phase, out.message = "Failed", msg
		out.conditions = append(out.conditions, condition{Type: condType, Message: msg})
		syncTotal.WithLabelValues(app.Name, "failed").Inc()
		e.event(u, true, "SyncFailed", msg)
		e.log.Warn("sync failed", "application", app.Name, "revision", short(rev), "reason", msg)
		return out
	}
	e.mu.Lock()
	st.syncing = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		st.syncing = false
		e.mu.Unlock()
	}()

	// Safety first: an empty render never prunes, and never "syncs".
	newKeys := map[objKey]*unstructured.Unstructured{}
	for _, o := range objs {
		newKeys[keyOf(o)] = o
	}
	var prune []resourceStatus
	for _, r := range prev {
		if _, ok := newKeys[r.key()]; !ok {
			prune = append(prune, r)
		}
	}
	if len(objs) == 0 && len(prev) > 0 && !app.AllowEmpty() {
		return fail("SyncError", fmt.Sprintf("%s at %s renders no objects; refusing to prune all %d objects (set syncPolicy.automated.allowEmpty to allow it)", sourcePaths(app), short(rev), len(prev)))
	}
	if app.Prune() && !app.AllowEmpty() && len(prev) >= 4 && float64(len(prune)) > e.cfg.PruneProtectRatio*float64(len(prev)) {
		return fail("SyncError", fmt.Sprintf("revision %s would prune %d of %d objects at once; refusing (set syncPolicy.automated.allowEmpty to allow it)", short(rev), len(prune), len(prev)))
	}

	// Atomic: dry-run every object before writing any.
	mark := time.Now()
	createNS := app.SyncOption("CreateNamespace") && app.Spec.Destination.Namespace != ""
	newNamespaces := map[string]bool{}
	newCRDs := map[schema.GroupKind]bool{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace":
			newNamespaces[o.GetName()] = true
		case "CustomResourceDefinition":
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			newCRDs[schema.GroupKind{Group: g, Kind: k}] = true
		}
	}
	if createNS {
		newNamespaces[app.Spec.Destination.Namespace] = true
	}
	nsExists := map[string]bool{}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" {
			if _, ok := nsExists[ns]; !ok {
				nsExists[ns] = existsNamespace(ctx, e.kube, ns)
			}
		}
	}

	// What is unchanged since the last sync, not drifted and still there is
	// not sent again: the watches would have seen any change to it. A no-op
	// sync of a thousand objects is then a render and a hash, not a
	// thousand dry runs.
	hashes := r.hashes
	e.mu.Lock()
	lastApplied, drifted := st.applied, maps.Clone(st.drifted)
	e.mu.Unlock()
	var toApply []*unstructured.Unstructured
	for _, o := range objs {
		k := keyOf(o)
		if lastApplied[k] != "" && lastApplied[k] == hashes[k] && !drifted[k] && e.watches.cached(o) {
			out.results = append(out.results, resultFor(o, "Synced", string(ssa.UnchangedAction)))
			continue
		}
		toApply = append(toApply, o)
	}
	if len(toApply) >= releaseAfter {
		// Held until the status write after the sync (reconcile): the
		// API server handles an Application of this many resources too.
		out.endBurst = e.gcBurst()
	}

	var (
		mu       sync.Mutex
		refused  []string
		verdicts = make(map[objKey]dryRun, len(toApply))
	)
	createdBySync := func(o *unstructured.Unstructured) bool {
		ns := o.GetNamespace()
		gk := o.GroupVersionKind().GroupKind()
		return (ns != "" && newNamespaces[ns] && !nsExists[ns]) || newCRDs[gk] || r.unknownKinds[gk]
	}
	// RespectIgnoreDifferences: the ignored fields are sent as the cluster
	// has them, so the apply leaves them alone.
	if app.SyncOption("RespectIgnoreDifferences") {
		for i, o := range toApply {
			d, err := e.withIgnored(ctx, app, o)
			if err != nil {
				return fail("SyncError", fmt.Sprintf("%s: spec.ignoreDifferences: %s", keyOf(o), cleanErr(err)))
			}
			toApply[i] = d
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(applyConcurrency)
	for _, o := range toApply {
		ns := o.GetNamespace()
		if ns != "" && !newNamespaces[ns] && !nsExists[ns] {
			refused = append(refused, fmt.Sprintf("%s: namespace %q does not exist (create it in Git or set syncOptions CreateNamespace=true)", keyOf(o), ns))
			continue
		}
		replace := app.SyncOption("Replace") || hasSyncOption(o, "Replace=true")
		if createdBySync(o) {
			// Its namespace or CRD is created by this sync (or comes
			// from elsewhere: SkipDryRunOnMissingResource).
			if replace {
				verdicts[keyOf(o)] = dryRun{action: ssa.CreatedAction, replace: true}
			}
			continue
		}
		g.Go(func() error {
			var v dryRun
			var err error
			if replace {
				v, err = e.dryRunReplace(gctx, o)
			} else {
				var entry *ssa.ChangeSetEntry
				entry, _, _, err = e.rm.Diff(gctx, o, ssa.DiffOptions{})
				if err == nil {
					v.action = entry.Action
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, fmt.Sprintf("%s: %s", keyOf(o), cleanErr(err)))
				return nil
			}
			verdicts[keyOf(o)] = v
			return nil
		})
	}
	g.Wait()
	lastProgress := ""
	run := e.newHookRun(app, rev, r.hooks, func(msg string) {
		if msg != lastProgress {
			lastProgress = msg
			e.operationRunning(ctx, u, msg)
		}
	})
	refused = append(refused, run.dryRun(ctx, createdBySync)...)
	out.step("dry-run", &mark)
	if len(refused) > 0 {
		sort.Strings(refused)
		return fail("SyncError", fmt.Sprintf("the API server refused %d of %d objects at %s; nothing was applied: %s", len(refused), len(objs)+len(r.hooks), short(rev), strings.Join(refused, "; ")))
	}
	// The informers of the objects' types load while the sync writes (a
	// sync the dry run refused writes nothing and starts none).
	e.watches.start(objs)

	applyOpts := ssa.DefaultApplyOptions()
	applyOpts.WaitInterval, applyOpts.WaitTimeout = time.Second, e.cfg.WaveTimeout
	if createNS && !nsExists[app.Spec.Destination.Namespace] {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": app.Spec.Destination.Namespace}}}
		if _, err := e.rm.Apply(ctx, ns, applyOpts); err != nil {
			return fail("SyncError", fmt.Sprintf("creating namespace %s: %s", app.Spec.Destination.Namespace, cleanErr(err)))
		}
	}
	e.mu.Lock()
	st.compared = nil // whatever happens next, the cluster changes
	e.mu.Unlock()

	// Hook results go around the resources' results: PreSync first, then
	// the Sync phase, then PostSync and SyncFail.
	var synced []resourceResult
	results := func() []resourceResult {
		rs := append(run.resultsOf(phasePreSync), synced...)
		rs = append(rs, run.resultsOf(phaseSync)...)
		return append(rs, run.resultsOf(phasePostSync, phaseSyncFail)...)
	}
	// A failure after the dry run runs the SyncFail hooks, then deletes the
	// hooks whose policy is HookFailed.
	failSync := func(msg string) *outcome {
		if run.has(phaseSyncFail) {
			if err := run.phase(ctx, phaseSyncFail); err != nil {
				msg += "; SyncFail hooks: " + cleanErr(err)
			}
		}
		run.cleanup(ctx, false)
		out.results = append(out.results, results()...)
		return fail("SyncError", msg)
	}
	out.results, synced = nil, out.results
	if err := run.phase(ctx, phasePreSync); err != nil {
		return failSync(fmt.Sprintf("PreSync at %s: %s; nothing of the Sync phase was applied", short(rev), cleanErr(err)))
	}

	// The Sync phase: each wave's objects applied and its Sync hooks
	// created, then waited for (objects healthy, hooks completed) before
	// the next wave. The last wave's objects are waited for only when
	// PostSync hooks follow (they run once everything is healthy).
	waves := byWave(toApply)
	waveNums := map[int][]*unstructured.Unstructured{}
	for _, w := range waves {
		waveNums[syncWave(w[0])] = w
	}
	for _, hw := range hookWaves(r.hooks, phaseSync) {
		if _, ok := waveNums[hw[0].wave]; !ok {
			waveNums[hw[0].wave] = nil
		}
	}
	order := slices.Sorted(maps.Keys(waveNums))
	written := make([]writtenObj, 0, len(toApply))
	for i, w := range order {
		wave := waveNums[w]
		if len(wave) > 0 {
			res, err := e.applyWave(ctx, wave, verdicts, applyOpts, &written)
			synced = append(synced, res...)
			if err != nil {
				return failSync(fmt.Sprintf("applying wave %d of %d at %s: %s", w, len(order), short(rev), cleanErr(err)))
			}
		}
		if hooks := run.hooksOf(phaseSync, w); len(hooks) > 0 {
			if err := run.wave(ctx, hooks); err != nil {
				return failSync(fmt.Sprintf("Sync hooks of wave %d at %s: %s", w, short(rev), cleanErr(err)))
			}
		}
		if len(wave) > 0 && i < len(order)-1 {
			if err := e.waitHealthy(ctx, wave); err != nil {
				return failSync(fmt.Sprintf("wave %d did not become healthy within %s: %s", w, e.cfg.WaveTimeout, cleanErr(err)))
			}
		}
	}
	out.step("apply", &mark)
	// Remember what was applied before pruning, so drift is watched from now on.
	e.mu.Lock()
	st.desired, st.revision, st.applied = newKeys, rev, hashes
	st.drifted = map[objKey]bool{}
	st.compared = nil // its verdicts are from before this apply
	e.mu.Unlock()
	e.watches.watch(objs)
	if late := e.watches.catchUp(written, 10*time.Second); late > 0 {
		e.log.Debug("watch caches behind the sync's writes; health is read from what they hold", "application", app.Name, "objects", late)
	}
	out.step("watch", &mark)

	pruned, kept, pruneMsg, err := e.pruneStep(ctx, app, objs, prune)
	if err != nil {
		return failSync(fmt.Sprintf("pruning: %s", cleanErr(err)))
	}
	for _, p := range pruned {
		synced = append(synced, resourceResult{Group: p.Group, Version: p.Version, Kind: p.Kind, Namespace: p.Namespace, Name: p.Name, Status: "Pruned", Message: "pruned", SyncPhase: "Sync"})
	}
	if len(pruned) > 0 {
		e.event(u, false, "Pruned", fmt.Sprintf("pruned %d objects removed from Git", len(pruned)))
	}
	prune = kept

	if run.has(phasePostSync) {
		run.progress("waiting for the synced objects to become healthy before the PostSync hooks")
		if err := e.waitHealthy(ctx, objs); err != nil {
			return failSync(fmt.Sprintf("the synced objects did not become healthy within %s, so the PostSync hooks did not run: %s", e.cfg.WaveTimeout, cleanErr(err)))
		}
		if err := run.phase(ctx, phasePostSync); err != nil {
			return failSync(fmt.Sprintf("PostSync at %s: %s", short(rev), cleanErr(err)))
		}
	}
	run.cleanup(ctx, true)
	out.results = results()
	out.step("prune", &mark)

	out.resources, out.health, out.healthMsg = e.inventory(ctx, objs, prune)
	out.syncStatus = "Synced"
	if extraneous(out.resources) {
		out.syncStatus = "OutOfSync"
	}
	out.phase = "Succeeded"
	out.message = fmt.Sprintf("successfully synced (all tasks run) at %s%s", short(rev), pruneMsg)
	syncTotal.WithLabelValues(app.Name, "succeeded").Inc()
	lastRevision.DeletePartialMatch(map[string]string{"application": app.Name})
	lastRevision.WithLabelValues(app.Name, rev).Set(1)
	e.event(u, false, "Synced", out.message)
	out.step("health", &mark)
	return out
}

func countStatus(rs []resourceResult, status string) int {
	n := 0
	for _, r := range rs {
		if r.Status == status {
			n++
		}
	}
	return n
}

// prune deletes the objects that left Git, except those marked Prune=false
// or no longer tracked by this Application. It returns what it deleted and
// what stays (and still requires pruning).
func (e *Engine) prune(ctx context.Context, app *Application, candidates []resourceStatus) (pruned, kept []resourceStatus, err error) {
	for _, r := range candidates {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(r.gvk())
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, live); err != nil {
			if isNotFound(err) {
				continue // already gone
			}
			return pruned, kept, err
		}
		if trackedBy(live) != app.Name {
			continue // someone else owns it now: not ours to delete
		}
		if hasSyncOption(live, "Prune=false") {
			kept = append(kept, r)
			continue
		}
		policy := metav1.DeletePropagationBackground
		if err := e.client.Delete(ctx, live, &client.DeleteOptions{PropagationPolicy: &policy}); err != nil && !isNotFound(err) {
			return pruned, kept, fmt.Errorf("deleting %s: %w", r.key(), err)
		}
		pruned = append(pruned, r)
	}
	return pruned, kept, nil
}

// pruneStep prunes candidates when the policy allows it now: never without
// automated.prune, and with PruneLast only once everything else is healthy
// (checked again on every refresh until then, without blocking).
func (e *Engine) pruneStep(ctx context.Context, app *Application, objs []*unstructured.Unstructured, candidates []resourceStatus) (pruned, kept []resourceStatus, msg string, err error) {
	switch {
	case len(candidates) == 0:
		return nil, nil, "", nil
	case !app.Prune():
		return nil, candidates, fmt.Sprintf("; %d objects require pruning (automated.prune is off)", len(candidates)), nil
	case app.SyncOption("PruneLast") && !e.healthyNow(ctx, objs):
		e.queue.AddAfter(app.Name, 2*time.Second)
		return nil, candidates, fmt.Sprintf("; %d objects will be pruned once the rest is healthy (PruneLast)", len(candidates)), nil
	}
	pruned, kept, err = e.prune(ctx, app, candidates)
	return pruned, kept, "", err
}

// healthyNow reports whether every object in objs is healthy right now.
func (e *Engine) healthyNow(ctx context.Context, objs []*unstructured.Unstructured) bool {
	for _, o := range objs {
		if h, _ := healthOf(e.watches.get(ctx, e.client, o)); h != Healthy {
			return false
		}
	}
	return true
}

// comparison is the outcome of comparing one render with the cluster.
type comparison struct {
	key       string
	outOfSync map[objKey]bool
}

// compare reports, without applying, whether the cluster equals Git (for
// Applications without automated sync). Objects compared before at the same
// render, still in the watch cache and not changed since (the watches mark
// drift) keep their verdict; the others get a server-side dry run, several
// at a time.
func (e *Engine) compare(ctx context.Context, app *Application, st *appState, rev string, r *rendered, prev []resourceStatus) *outcome {
	objs := r.objs
	out := &outcome{revision: rev, sourceType: r.sourceType, syncStatus: "Synced"}
	newKeys := make(map[objKey]*unstructured.Unstructured, len(objs))
	var removed []resourceStatus
	for _, o := range objs {
		newKeys[keyOf(o)] = o
	}
	for _, r := range prev {
		if _, ok := newKeys[r.key()]; !ok {
			removed = append(removed, r)
		}
	}
	e.mu.Lock()
	last, drifted := st.compared, maps.Clone(st.drifted)
	st.drifted = map[objKey]bool{}
	e.mu.Unlock()
	if last != nil && last.key != r.key {
		last = nil
	}
	cmp := &comparison{key: r.key, outOfSync: map[objKey]bool{}}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(applyConcurrency)
	for _, o := range objs {
		k := keyOf(o)
		if last != nil && !drifted[k] && e.watches.cached(o) {
			if last.outOfSync[k] {
				cmp.outOfSync[k] = true
			}
			continue
		}
		g.Go(func() error {
			entry, err := e.diffIgnoring(gctx, app, o)
			if err != nil || (entry.Action != ssa.UnchangedAction && entry.Action != ssa.SkippedAction) {
				mu.Lock()
				cmp.outOfSync[k] = true
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	out.resources, out.health, out.healthMsg = e.inventory(ctx, objs, removed)
	for i, o := range objs {
		if cmp.outOfSync[keyOf(o)] {
			out.resources[i].Status = "OutOfSync"
			out.syncStatus = "OutOfSync"
		}
	}
	if extraneous(out.resources) {
		out.syncStatus = "OutOfSync"
	}
	e.mu.Lock()
	st.attempted = ""
	st.compared = cmp
	if st.revision == "" {
		// Never synced: watch what Git wants, so drift marks it for the next
		// comparison instead of every object being dry-run again.
		st.desired = newKeys
	}
	e.mu.Unlock()
	e.watches.watch(objs)
	return out
}

// refresh recomputes health and drift of the last applied revision.
func (e *Engine) refresh(ctx context.Context, app *Application, st *appState, rev string, prev []resourceStatus, u *unstructured.Unstructured) *outcome {
	e.mu.Lock()
	desired := st.desired
	drifted := len(st.drifted) > 0
	applied := st.revision
	e.mu.Unlock()
	if desired == nil {
		// The last attempt at this revision failed: keep its conditions.
		out := &outcome{revision: rev, syncStatus: statusString(u, "sync", "status"), resources: prev, refreshed: true}
		out.health = Health(statusString(u, "health", "status"))
		return out
	}
	objs := make([]*unstructured.Unstructured, 0, len(desired))
	for _, k := range sortedKeys(desired) {
		objs = append(objs, desired[k])
	}
	var requiresPruning []resourceStatus
	for _, r := range prev {
		if r.RequiresPruning {
			requiresPruning = append(requiresPruning, r)
		}
	}
	out := &outcome{revision: applied, syncStatus: "Synced", refreshed: true}
	if len(requiresPruning) > 0 && app.Prune() {
		pruned, kept, _, err := e.pruneStep(ctx, app, objs, requiresPruning)
		if err != nil {
			out.conditions = append(out.conditions, condition{Type: "SyncError", Message: "pruning: " + cleanErr(err)})
		}
		if len(pruned) > 0 {
			out.operated, out.phase = true, "Succeeded"
			out.message = fmt.Sprintf("pruned %d objects removed from Git (PruneLast)", len(pruned))
			for _, p := range pruned {
				out.results = append(out.results, resourceResult{Group: p.Group, Version: p.Version, Kind: p.Kind, Namespace: p.Namespace, Name: p.Name, Status: "Pruned", Message: "pruned", SyncPhase: "Sync"})
			}
			e.event(u, false, "Pruned", out.message)
		}
		requiresPruning = kept
	}
	out.resources, out.health, out.healthMsg = e.inventory(ctx, objs, requiresPruning)
	if drifted || extraneous(out.resources) {
		out.syncStatus = "OutOfSync"
	}
	return out
}

// resourceHealth is the health entry of one of status.resources. As in
// Argo CD, a kind without a health check of its own (a ConfigMap, a Secret,
// RBAC: those the engine watches by metadata only) has none, and a healthy
// resource carries no message: kstatus's ("Resource is always ready",
// "Service is ready") would be a tenth of a large Application, decoded and
// encoded again by every write to it, the no-op sync's request included.
func resourceHealth(gk schema.GroupKind, h Health, msg string) *healthStatus {
	if metadataOnly[gk] && h == Healthy {
		return nil
	}
	if h == Healthy {
		msg = ""
	}
	return &healthStatus{Status: h, Message: msg}
}

// inventory builds status.resources for objs (live health) plus the objects
// that left Git but were not pruned.
func (e *Engine) inventory(ctx context.Context, objs []*unstructured.Unstructured, notPruned []resourceStatus) ([]resourceStatus, Health, string) {
	agg, msg := Healthy, ""
	out := make([]resourceStatus, 0, len(objs)+len(notPruned))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		live := e.watches.get(ctx, e.client, o)
		h, m := healthOf(live)
		if worse(agg, h) != agg {
			agg, msg = h, fmt.Sprintf("%s: %s", keyOf(o), m)
		}
		out = append(out, resourceStatus{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), Status: "Synced", Health: resourceHealth(gvk.GroupKind(), h, m)})
	}
	for _, r := range notPruned {
		r.Status, r.RequiresPruning = "OutOfSync", true
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(r.gvk())
		live.SetNamespace(r.Namespace)
		live.SetName(r.Name)
		if l := e.watches.get(ctx, e.client, live); l != nil && hasCompareOption(l, "IgnoreExtraneous") {
			r.IgnoreExtraneous = true
		}
		out = append(out, r)
	}
	return out, agg, msg
}

// extraneous reports whether an object that left Git is still there and
// counts for the sync status (not marked IgnoreExtraneous).
func extraneous(resources []resourceStatus) bool {
	for _, r := range resources {
		if r.RequiresPruning && !r.IgnoreExtraneous {
			return true
		}
	}
	return false
}

// cleanErr is an error's message on one line.
func cleanErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func short(rev string) string {
	if len(rev) > 10 {
		return rev[:10]
	}
	return rev
}

// waitHealthy waits until every object in objs is healthy (kstatus
// Current), at most the wave timeout.
func (e *Engine) waitHealthy(ctx context.Context, objs []*unstructured.Unstructured) error {
	set := make(object.ObjMetadataSet, 0, len(objs))
	for _, o := range objs {
		set = append(set, object.UnstructuredToObjMetadata(o))
	}
	return e.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: time.Second, Timeout: e.cfg.WaveTimeout})
}

// buildSources renders each source at its fetched commit (arts, in the
// order of app.SourceList()) and returns their objects together; a source
// with a ref lends its checkout to the others' $ref/ value files.
func buildSources(app *Application, arts []*source.Artifact) (*build.Result, error) {
	srcs := app.SourceList()
	refs := map[string]string{}
	for i, s := range srcs {
		if s.Ref != "" {
			refs[s.Ref] = arts[i].Dir
		}
	}
	var out *build.Result
	for i, s := range srcs {
		if !s.Rendered() {
			continue
		}
		opts := app.BuildOptionsFor(&s, refs)
		opts.ObjectsOnly = true
		res, err := build.Build(arts[i].Dir, s.Path, opts)
		if err != nil {
			what := s.Path
			if len(srcs) > 1 {
				what = fmt.Sprintf("spec.sources[%d] %s", i, s.Path)
			}
			return nil, fmt.Errorf("building %s at %s: %w", what, short(arts[i].Revision), err)
		}
		if out == nil {
			out = res
			continue
		}
		out.Objects = append(out.Objects, res.Objects...)
		out.Warnings = append(out.Warnings, res.Warnings...)
	}
	if out == nil {
		return nil, errors.New("spec.sources: every source has a ref and no path: nothing to render")
	}
	return out, nil
}

// sourcePaths names the rendered paths of the Application's sources.
func sourcePaths(app *Application) string {
	var paths []string
	for _, s := range app.SourceList() {
		if s.Rendered() {
			paths = append(paths, orDefault(s.Path, "."))
		}
	}
	return strings.Join(paths, ", ")
}
