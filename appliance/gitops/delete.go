package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Argo CD's resources finalizer: deleting an Application that carries it
// deletes what the Application applied first (foreground cascading, or
// background with the /background form). Without it the objects stay.
const (
	finalizerResources           = "resources-finalizer.argocd.argoproj.io"
	finalizerResourcesBackground = finalizerResources + "/background"
	finalizerResourcesForeground = finalizerResources + "/foreground"
)

// resourcesFinalizer returns the resources finalizer u carries and the
// propagation it asks for, or "" when it carries none.
func resourcesFinalizer(u *unstructured.Unstructured) (string, metav1.DeletionPropagation) {
	for _, f := range u.GetFinalizers() {
		switch f {
		case finalizerResources, finalizerResourcesForeground:
			return f, metav1.DeletePropagationForeground
		case finalizerResourcesBackground:
			return f, metav1.DeletePropagationBackground
		}
	}
	return "", ""
}

// cascade deletes what a deleted Application applied, wave by wave from
// the highest down, each wave gone before the next is deleted, then takes
// the resources finalizer off so the Application goes too. Objects that
// another Application tracks now, or marked sync-options Delete=false,
// stay. It returns an error to retry.
func (e *Engine) cascade(ctx context.Context, name string, st *appState, u *unstructured.Unstructured) error {
	finalizer, propagation := resourcesFinalizer(u)
	if finalizer == "" {
		return nil
	}
	// Nothing reverts or re-syncs what is being deleted.
	e.mu.Lock()
	st.desired, st.syncing = nil, true
	e.mu.Unlock()

	waves := map[int][]*unstructured.Unstructured{}
	for _, r := range inventoryOf(u) {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(r.gvk())
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, live); err != nil {
			if isNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s: %w", r.key(), err)
		}
		if trackedBy(live) != name || hasSyncOption(live, "Delete=false") {
			continue
		}
		w := syncWave(live)
		waves[w] = append(waves[w], live)
	}
	order := make([]int, 0, len(waves))
	for w := range waves {
		order = append(order, w)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(order)))
	deleted := 0
	for _, w := range order {
		var left []string
		for _, o := range waves[w] {
			if err := e.client.Delete(ctx, o, &client.DeleteOptions{PropagationPolicy: &propagation}); err != nil && !isNotFound(err) {
				return fmt.Errorf("deleting %s: %w", keyOf(o), err)
			}
			deleted++
		}
		// The next wave waits until this one is gone, as Argo CD deletes.
		deadline := time.Now().Add(e.cfg.WaveTimeout)
		for {
			left = left[:0]
			for _, o := range waves[w] {
				err := e.client.Get(ctx, client.ObjectKeyFromObject(o), &unstructured.Unstructured{Object: map[string]any{"apiVersion": o.GetAPIVersion(), "kind": o.GetKind()}})
				if !isNotFound(err) {
					left = append(left, keyOf(o).String())
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wave %d not deleted within %s: %s", w, e.cfg.WaveTimeout, strings.Join(left, ", "))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	finalizers := slices.DeleteFunc(slices.Clone(u.GetFinalizers()), func(f string) bool { return f == finalizer })
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": finalizers}})
	if _, err := e.dyn.Resource(ApplicationGVR).Namespace(u.GetNamespace()).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("removing the finalizer %s: %w", finalizer, err)
	}
	e.log.Info("deleted application resources", "application", name, "objects", deleted, "propagation", string(propagation))
	return nil
}

// deletionError records why the deletion of an Application's resources did
// not finish, as Argo CD's DeletionError condition.
func (e *Engine) deletionError(ctx context.Context, u *unstructured.Unstructured, msg string) {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{
		{"type": "DeletionError", "message": msg, "lastTransitionTime": metav1.Now().Format(time.RFC3339)},
	}}})
	if _, err := e.dyn.Resource(ApplicationGVR).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		e.log.Warn("writing Application status", "application", u.GetName(), "err", err)
	}
}
