package gitops

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Argo CD's resource hook annotations, and Helm's, which Argo CD maps onto
// them (gitops-engine pkg/sync/hook).
const (
	annotationHook             = "argocd.argoproj.io/hook"
	annotationHookDeletePolicy = "argocd.argoproj.io/hook-delete-policy"
	annotationHelmHook         = "helm.sh/hook"
	annotationHelmHookWeight   = "helm.sh/hook-weight"
	annotationHelmHookDelete   = "helm.sh/hook-delete-policy"
)

// The sync phases of an operation, in the order they run; SyncFail runs
// only when one of the others failed.
const (
	phasePreSync  = "PreSync"
	phaseSync     = "Sync"
	phasePostSync = "PostSync"
	phaseSyncFail = "SyncFail"
)

// Hook delete policies.
const (
	deleteBeforeHookCreation = "BeforeHookCreation"
	deleteHookSucceeded      = "HookSucceeded"
	deleteHookFailed         = "HookFailed"
)

// Hook phases, as operationState.syncResult.resources[].hookPhase reports
// them.
const (
	hookRunning   = "Running"
	hookSucceeded = "Succeeded"
	hookFailed    = "Failed"
)

// helmHookTypes maps the Helm hook events Argo CD runs onto its phases;
// any other event (pre-delete, test, pre-rollback, …) is not run at all.
var helmHookTypes = map[string]string{
	"pre-install": phasePreSync, "pre-upgrade": phasePreSync,
	"post-install": phasePostSync, "post-upgrade": phasePostSync,
}

var helmDeletePolicies = map[string]string{
	"before-hook-creation": deleteBeforeHookCreation,
	"hook-succeeded":       deleteHookSucceeded,
	"hook-failed":          deleteHookFailed,
}

// hook is one hook of a render in one phase: an object created (never
// server-side applied) when its phase and wave come, and waited for until
// it completes. An object annotated with several phases is one hook per
// phase.
type hook struct {
	obj    *unstructured.Unstructured
	phase  string
	wave   int
	policy map[string]bool
}

// annotationCSV splits a comma-separated annotation value, as Argo CD reads
// its hook annotations.
func annotationCSV(u *unstructured.Unstructured, key string) ([]string, bool) {
	v, ok := u.GetAnnotations()[key]
	if !ok {
		return nil, false
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, true
}

// hookPhases returns the phases an object is a hook of. isHook is false for
// an ordinary object (applied in the Sync phase); a hook with no phase
// (Skip, an unknown type, or a Helm event Argo CD does not run) is not
// applied at all. Argo CD's annotation wins over Helm's.
func hookPhases(u *unstructured.Unstructured) (phases []string, isHook bool, err error) {
	if types, ok := annotationCSV(u, annotationHook); ok {
		skip := false
		for _, t := range types {
			switch t {
			case phasePreSync, phaseSync, phasePostSync, phaseSyncFail:
				phases = append(phases, t)
			case "Skip":
				skip = true
			case "PostDelete":
				return nil, true, fmt.Errorf("%s: hook type PostDelete is not supported", keyOf(u))
			}
		}
		// Skip alone means "do not apply"; Skip beside another type is
		// ignored (gitops-engine hook.Skip).
		if skip && len(types) == 1 {
			return nil, true, nil
		}
		return dedupe(phases), true, nil
	}
	events, ok := annotationCSV(u, annotationHelmHook)
	if !ok || strings.TrimSpace(u.GetAnnotations()[annotationHelmHook]) == "crd-install" {
		return nil, false, nil
	}
	for _, e := range events {
		if p := helmHookTypes[e]; p != "" {
			phases = append(phases, p)
		}
	}
	return dedupe(phases), true, nil
}

// HookOf reports whether u is a resource hook (Argo CD's annotation, or a
// Helm hook Argo CD maps), and the phases it runs in (none for Skip and
// for Helm events Argo CD does not run). A sync creates hooks in their
// phases; they are never applied as ordinary objects.
func HookOf(u *unstructured.Unstructured) (phases []string, isHook bool) {
	phases, isHook, _ = hookPhases(u)
	return phases, isHook
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// deletePolicies returns a hook's delete policies: Argo CD's and Helm's
// annotations together, BeforeHookCreation when neither says anything.
func deletePolicies(u *unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	ps, _ := annotationCSV(u, annotationHookDeletePolicy)
	for _, p := range ps {
		switch p {
		case deleteBeforeHookCreation, deleteHookSucceeded, deleteHookFailed:
			out[p] = true
		}
	}
	hs, _ := annotationCSV(u, annotationHelmHookDelete)
	for _, p := range hs {
		if v := helmDeletePolicies[p]; v != "" {
			out[v] = true
		}
	}
	if len(out) == 0 {
		out[deleteBeforeHookCreation] = true
	}
	return out
}

// splitHooks separates a render into the objects synced as resources and
// the hooks; objects that are hooks of no phase (Skip) are in neither.
func splitHooks(objs []*unstructured.Unstructured) (resources []*unstructured.Unstructured, hooks []*hook, err error) {
	for _, o := range objs {
		phases, isHook, err := hookPhases(o)
		if err != nil {
			return nil, nil, err
		}
		if !isHook {
			if o.GetName() == "" {
				return nil, nil, fmt.Errorf("%s %s: metadata.generateName is only for hooks (argocd.argoproj.io/hook); set metadata.name", o.GetKind(), o.GetGenerateName())
			}
			resources = append(resources, o)
			continue
		}
		for _, p := range phases {
			hooks = append(hooks, &hook{obj: o, phase: p, wave: syncWave(o), policy: deletePolicies(o)})
		}
	}
	return resources, hooks, nil
}

// hookWaves returns the hooks of phase grouped by wave, lowest first; inside
// a wave in the order Argo CD creates them (kind, then name).
func hookWaves(hooks []*hook, phase string) [][]*hook {
	groups := map[int][]*hook{}
	for _, h := range hooks {
		if h.phase == phase {
			groups[h.wave] = append(groups[h.wave], h)
		}
	}
	out := make([][]*hook, 0, len(groups))
	for _, w := range slices.Sorted(maps.Keys(groups)) {
		g := groups[w]
		sort.SliceStable(g, func(i, j int) bool {
			a, b := g[i].obj, g[j].obj
			if ka, kb := kindOrder(a), kindOrder(b); ka != kb {
				return ka < kb
			}
			return a.GetName()+a.GetGenerateName() < b.GetName()+b.GetGenerateName()
		})
		out = append(out, g)
	}
	return out
}

// kindOrder puts cluster and class definitions before the objects that
// need them, as the apply stages do.
func kindOrder(u *unstructured.Unstructured) int {
	switch {
	case utils.IsClusterDefinition(u):
		return 0
	case utils.IsClassDefinition(u):
		return 1
	}
	return 2
}

// hookName is the name a hook is created with: its own, or for
// generateName the name Argo CD formulates, deterministic per operation:
// generateName + revision[:7]-phase-unix time of the operation's start.
func hookName(h *hook, rev string, startedUnix int64) string {
	if n := h.obj.GetName(); n != "" {
		return n
	}
	if len(rev) >= 8 {
		rev = rev[:7]
	}
	return h.obj.GetGenerateName() + strings.ToLower(fmt.Sprintf("%s-%s-%d", rev, h.phase, startedUnix))
}

// hookPhaseOf says whether a hook's live object is still running, has
// succeeded or has failed: a Job by its Complete or Failed condition, a Pod
// by its phase, anything else by its health (Healthy is done).
func hookPhaseOf(live *unstructured.Unstructured) (phase, msg string) {
	if live == nil {
		return hookFailed, "deleted before it completed"
	}
	gvk := live.GroupVersionKind()
	switch {
	case gvk.Group == "batch" && gvk.Kind == "Job":
		conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["status"] != "True" {
				continue
			}
			msg, _ := m["message"].(string)
			switch m["type"] {
			case "Complete":
				return hookSucceeded, orDefault(msg, "job completed")
			case "Failed":
				reason, _ := m["reason"].(string)
				return hookFailed, orDefault(strings.TrimSpace(reason+": "+msg), "job failed")
			}
		}
		return hookRunning, "job running"
	case gvk.Group == "" && gvk.Kind == "Pod":
		p, _, _ := unstructured.NestedString(live.Object, "status", "phase")
		msg, _, _ := unstructured.NestedString(live.Object, "status", "message")
		switch p {
		case "Succeeded":
			return hookSucceeded, orDefault(msg, "pod completed")
		case "Failed":
			return hookFailed, orDefault(msg, "pod failed"+podExit(live))
		}
		return hookRunning, "pod " + strings.ToLower(orDefault(p, "pending"))
	}
	switch h, m := healthOf(live); h {
	case Healthy:
		return hookSucceeded, orDefault(m, live.GetName()+" created")
	case Degraded:
		return hookFailed, m
	default:
		return hookRunning, m
	}
}

// podExit names the first container that exited non-zero.
func podExit(live *unstructured.Unstructured) string {
	cs, _, _ := unstructured.NestedSlice(live.Object, "status", "containerStatuses")
	for _, c := range cs {
		m, _ := c.(map[string]any)
		code, ok, _ := unstructured.NestedInt64(m, "state", "terminated", "exitCode")
		if ok && code != 0 {
			return fmt.Sprintf(": container %v exited %s", m["name"], strconv.FormatInt(code, 10))
		}
	}
	return ""
}

// hookRun is the hooks of one sync operation and what became of them.
type hookRun struct {
	e       *Engine
	app     *Application
	rev     string
	started time.Time
	hooks   []*hook
	// created holds the live name of each hook once created.
	created map[*hook]string
	results map[*hook]*resourceResult
	// progress reports what the operation waits for (operationState
	// Running).
	progress func(string)
}

func (e *Engine) newHookRun(app *Application, rev string, hooks []*hook, progress func(string)) *hookRun {
	return &hookRun{e: e, app: app, rev: rev, started: time.Now(), hooks: hooks,
		created: map[*hook]string{}, results: map[*hook]*resourceResult{}, progress: progress}
}

// has reports whether the operation has hooks of phase.
func (r *hookRun) has(phase string) bool {
	for _, h := range r.hooks {
		if h.phase == phase {
			return true
		}
	}
	return false
}

// target is the object a hook is created as: named, tracked.
func (r *hookRun) target(h *hook) *unstructured.Unstructured {
	o := h.obj.DeepCopy()
	o.SetName(hookName(h, r.rev, r.started.Unix()))
	o.SetGenerateName("")
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[annotationTrackingID] = trackingID(r.app, o)
	o.SetAnnotations(ann)
	return o
}

// dryRun asks the API server whether it would create each hook, without
// creating any; a hook that exists already is fine (BeforeHookCreation
// replaces it, or it is applied over).
func (r *hookRun) dryRun(ctx context.Context, skip func(*unstructured.Unstructured) bool) []string {
	var refused []string
	seen := map[*unstructured.Unstructured]bool{}
	for _, h := range r.hooks {
		if seen[h.obj] || skip(h.obj) {
			continue
		}
		seen[h.obj] = true
		o := r.target(h)
		if err := r.e.client.Create(ctx, o, client.DryRunAll, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
			refused = append(refused, fmt.Sprintf("%s (%s hook): %s", keyOf(o), h.phase, cleanErr(err)))
		}
	}
	return refused
}

// phase runs the hooks of phase wave by wave, each wave waited for until
// every hook in it completed; it stops at the first wave with a failure.
func (r *hookRun) phase(ctx context.Context, phase string) error {
	for _, wave := range hookWaves(r.hooks, phase) {
		if err := r.wave(ctx, wave); err != nil {
			return err
		}
	}
	return nil
}

// wave creates the hooks of one wave, then waits for them.
func (r *hookRun) wave(ctx context.Context, wave []*hook) error {
	if err := r.create(ctx, wave); err != nil {
		return err
	}
	return r.wait(ctx, wave)
}

// hooksOf returns the hooks of phase in sync wave w.
func (r *hookRun) hooksOf(phase string, w int) []*hook {
	for _, wave := range hookWaves(r.hooks, phase) {
		if wave[0].wave == w {
			return wave
		}
	}
	return nil
}

// create creates each hook of a wave, after deleting the one of the last
// operation for BeforeHookCreation (the default). Hooks are created, not
// server-side applied: a Job's template cannot change, and generateName
// needs a create.
func (r *hookRun) create(ctx context.Context, wave []*hook) error {
	for _, h := range wave {
		o := r.target(h)
		res := resultFor(o, "Synced", "")
		res.SyncPhase, res.HookType, res.HookPhase = h.phase, h.phase, hookRunning
		r.results[h] = &res
		if h.policy[deleteBeforeHookCreation] {
			if err := r.e.deleteAndWait(ctx, o); err != nil {
				res.Status, res.HookPhase, res.Message = "SyncFailed", hookFailed, cleanErr(err)
				return fmt.Errorf("%s: deleting the hook of the last sync: %s", keyOf(o), cleanErr(err))
			}
		}
		err := r.e.createHook(ctx, o)
		if apierrors.IsAlreadyExists(err) {
			// Kept from the last sync (no BeforeHookCreation): applied
			// over, as Argo CD does.
			err = r.e.client.Patch(ctx, o.DeepCopy(), client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
		}
		if err != nil {
			res.Status, res.HookPhase, res.Message = "SyncFailed", hookFailed, cleanErr(err)
			return fmt.Errorf("%s: %s", keyOf(o), cleanErr(err))
		}
		r.created[h] = o.GetName()
		res.Message = strings.ToLower(o.GetKind()) + "/" + o.GetName() + " created"
	}
	return nil
}

// wait polls the hooks of a wave until each has completed, or the wave
// timeout passes; it returns an error naming the hooks that failed.
func (r *hookRun) wait(ctx context.Context, wave []*hook) error {
	deadline := time.Now().Add(r.e.cfg.WaveTimeout)
	interval := 200 * time.Millisecond
	for {
		var running, failed []string
		for _, h := range wave {
			res := r.results[h]
			if res.HookPhase != hookRunning {
				if res.HookPhase == hookFailed {
					failed = append(failed, fmt.Sprintf("%s: %s", keyOfResult(res), res.Message))
				}
				continue
			}
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(h.obj.GroupVersionKind())
			err := r.e.client.Get(ctx, client.ObjectKey{Namespace: res.Namespace, Name: res.Name}, live)
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("reading hook %s: %w", keyOfResult(res), err)
			}
			if err != nil {
				live = nil
			}
			phase, msg := hookPhaseOf(live)
			res.HookPhase, res.Message = phase, msg
			switch phase {
			case hookRunning:
				running = append(running, keyOfResult(res).String())
			case hookFailed:
				failed = append(failed, fmt.Sprintf("%s: %s", keyOfResult(res), msg))
			}
		}
		if len(running) == 0 {
			if len(failed) > 0 {
				return fmt.Errorf("hook failed: %s", strings.Join(failed, "; "))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hook %s did not complete within %s", strings.Join(running, ", "), r.e.cfg.WaveTimeout)
		}
		msg := "waiting for completion of hook " + running[0]
		if len(running) > 1 {
			msg += fmt.Sprintf(" and %d more hooks", len(running)-1)
		}
		r.progress(msg)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		interval = min(2*interval, 2*time.Second)
	}
}

// cleanup deletes, once the operation ended, the completed hooks whose
// policy asks for it: HookSucceeded when the operation succeeded,
// HookFailed when it failed (gitops-engine's sync context does the same).
func (r *hookRun) cleanup(ctx context.Context, succeeded bool) {
	policy := deleteHookFailed
	if succeeded {
		policy = deleteHookSucceeded
	}
	for h, name := range r.created {
		if !h.policy[policy] || r.results[h].HookPhase == hookRunning {
			continue
		}
		o := &unstructured.Unstructured{}
		o.SetGroupVersionKind(h.obj.GroupVersionKind())
		o.SetNamespace(h.obj.GetNamespace())
		o.SetName(name)
		bg := metav1.DeletePropagationBackground
		if err := r.e.client.Delete(ctx, o, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !isNotFound(err) {
			r.e.log.Warn("deleting hook", "application", r.app.Name, "hook", keyOf(o).String(), "err", err)
		}
	}
}

// resultsOf returns the hook results of the given phases, in run order.
func (r *hookRun) resultsOf(phases ...string) []resourceResult {
	var out []resourceResult
	for _, p := range phases {
		for _, wave := range hookWaves(r.hooks, p) {
			for _, h := range wave {
				if res := r.results[h]; res != nil {
					out = append(out, *res)
				}
			}
		}
	}
	return out
}

func keyOfResult(r *resourceResult) objKey {
	return objKey{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// deleteAndWait deletes o if it exists and waits until it is gone.
func (e *Engine) deleteAndWait(ctx context.Context, o *unstructured.Unstructured) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	key := client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}
	if err := e.client.Get(ctx, key, live); err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	bg := metav1.DeletePropagationBackground
	if err := e.client.Delete(ctx, live, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !isNotFound(err) {
		return err
	}
	deadline := time.Now().Add(e.cfg.WaveTimeout)
	for {
		err := e.client.Get(ctx, key, live)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still there after %s", e.cfg.WaveTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createHook creates o. A namespace this sync created has no default
// ServiceAccount for the first moments, and pods are refused until the
// ServiceAccount controller makes it: that refusal is waited out.
func (e *Engine) createHook(ctx context.Context, o *unstructured.Unstructured) error {
	deadline := time.Now().Add(e.cfg.WaveTimeout)
	for {
		err := e.client.Create(ctx, o.DeepCopy(), client.FieldOwner(FieldManager))
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "error looking up service account") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
