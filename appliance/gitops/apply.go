package gitops

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// applyConcurrency bounds the server-side dry runs and applies in flight for
// one sync. The API server and etcd batch concurrent writes (one fsync for
// many), so a wave of a thousand objects costs a few dozen round trips'
// worth of time instead of a thousand one after the other, which is what
// ssa's ApplyAll does after its (parallel) dry runs.
const applyConcurrency = 32

// dryRun is the verdict of the atomic dry run on one object.
type dryRun struct {
	action ssa.Action
	// replace is set for Replace=true: the object is created or replaced
	// (PUT), not server-side applied.
	replace bool
}

// dryRunReplace asks the API server whether it would create or replace o.
func (e *Engine) dryRunReplace(ctx context.Context, o *unstructured.Unstructured) (dryRun, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live)
	if isNotFound(err) {
		return dryRun{action: ssa.CreatedAction, replace: true}, e.client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldOwner(FieldManager))
	}
	if err != nil {
		return dryRun{}, err
	}
	obj := o.DeepCopy()
	obj.SetResourceVersion(live.GetResourceVersion())
	return dryRun{action: ssa.ConfiguredAction, replace: true}, e.client.Update(ctx, obj, client.DryRunAll, client.FieldOwner(FieldManager))
}

// replace creates o, or replaces the live object with it (Replace=true,
// kubectl replace as Argo CD runs it).
func (e *Engine) replace(ctx context.Context, o *unstructured.Unstructured) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live)
	if isNotFound(err) {
		return e.client.Create(ctx, o, client.FieldOwner(FieldManager))
	}
	if err != nil {
		return err
	}
	o.SetResourceVersion(live.GetResourceVersion())
	return e.client.Update(ctx, o, client.FieldOwner(FieldManager))
}

// applyWave writes one sync wave with server-side apply (field manager
// fjord, forcing ownership as ssa does) in the stages of ssa's
// ApplyAllStaged: cluster definitions (CRDs, Namespaces, ClusterRoles), then
// class definitions, each waited for until ready, then everything else.
// Inside a stage the objects are applied concurrently. verdicts holds what
// the dry run found: an object it found unchanged is not written; one it
// did not see (its namespace or CRD is created by this sync) is created.
// Every object's failure is collected; the error lists them all.
// What was written is recorded in written, with the resourceVersion the API
// server answered with.
func (e *Engine) applyWave(ctx context.Context, wave []*unstructured.Unstructured, verdicts map[objKey]dryRun, opts ssa.ApplyOptions, written *[]writtenObj) ([]resourceResult, error) {
	var defs, classes, rest []*unstructured.Unstructured
	for _, o := range wave {
		switch {
		case utils.IsClusterDefinition(o):
			defs = append(defs, o)
		case utils.IsClassDefinition(o):
			classes = append(classes, o)
		default:
			rest = append(rest, o)
		}
	}
	var results []resourceResult
	for i, stage := range [][]*unstructured.Unstructured{defs, classes, rest} {
		if len(stage) == 0 {
			continue
		}
		rs, err := e.applyConcurrently(ctx, stage, verdicts, written)
		results = append(results, rs...)
		if err != nil {
			return results, err
		}
		if i < 2 {
			set := make(object.ObjMetadataSet, 0, len(stage))
			for _, o := range stage {
				set = append(set, object.UnstructuredToObjMetadata(o))
			}
			if err := e.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: opts.WaitInterval, Timeout: opts.WaitTimeout}); err != nil {
				return results, err
			}
		}
	}
	return results, nil
}

// applyConcurrently applies objs at most applyConcurrency at a time and
// returns a result per object in objs' order; what it wrote goes into
// written.
func (e *Engine) applyConcurrently(ctx context.Context, objs []*unstructured.Unstructured, verdicts map[objKey]dryRun, written *[]writtenObj) ([]resourceResult, error) {
	results := make([]resourceResult, len(objs))
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
		sem    = make(chan struct{}, applyConcurrency)
	)
	for i, o := range objs {
		v, seen := verdicts[keyOf(o)]
		if seen && (v.action == ssa.UnchangedAction || v.action == ssa.SkippedAction) {
			results[i] = resultFor(o, "Synced", string(ssa.UnchangedAction))
			continue
		}
		action := ssa.CreatedAction
		if seen {
			action = v.action
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			obj := o.DeepCopy() // Patch writes the server's answer into it
			var err error
			if v.replace {
				err = e.replace(ctx, obj)
			} else {
				err = e.client.Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
			}
			if err != nil {
				results[i] = resultFor(o, "SyncFailed", cleanErr(err))
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s: %s", keyOf(o), cleanErr(err)))
				mu.Unlock()
				return
			}
			results[i] = resultFor(o, "Synced", string(action))
			mu.Lock()
			*written = append(*written, writtenObj{gvk: o.GroupVersionKind(), namespace: o.GetNamespace(), name: o.GetName(), resourceVersion: obj.GetResourceVersion()})
			mu.Unlock()
			if v.replace && action == ssa.ConfiguredAction {
				results[i].Message = "replaced"
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Strings(failed)
		return results, fmt.Errorf("%d of %d objects failed: %s", len(failed), len(objs), strings.Join(failed, "; "))
	}
	return results, nil
}
