package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// writeStatus records an outcome on the Application, the way Argo CD lays
// out its status: sync, health, resources (the inventory), conditions and,
// when an operation ran, operationState. A requested operation is cleared.
//
// The two lists of a thousand-object Application are most of the patch;
// one that is the same as last written (st's hashes) is left out, and the
// merge patch keeps what is there.
func (e *Engine) writeStatus(ctx context.Context, u *unstructured.Unstructured, st *appState, out *outcome, op map[string]any) error {
	requested := op
	now := metav1.Now().Format(time.RFC3339)
	src, _, _ := unstructured.NestedMap(u.Object, "spec", "source")
	srcs, _, _ := unstructured.NestedSlice(u.Object, "spec", "sources")
	dst, _, _ := unstructured.NestedMap(u.Object, "spec", "destination")
	comparedTo := map[string]any{"source": src, "destination": dst}
	sync := map[string]any{"status": out.syncStatus, "revision": out.revision, "comparedTo": comparedTo}
	if len(srcs) > 0 {
		// Several sources: Argo CD's revisions and sources lists.
		comparedTo["sources"] = srcs
		sync["revisions"] = strings.Split(out.revision, ",")
	}
	status := map[string]any{
		"sync":         sync,
		"reconciledAt": now,
		"resources":    out.resources,
		"conditions":   nil,
	}
	if out.health != "" {
		status["health"] = map[string]any{"status": out.health, "message": out.healthMsg}
	}
	if out.sourceType != "" {
		status["sourceType"] = out.sourceType
	}
	if len(out.conditions) > 0 {
		conds := make([]map[string]any, 0, len(out.conditions))
		for _, c := range out.conditions {
			conds = append(conds, map[string]any{"type": c.Type, "message": c.Message, "lastTransitionTime": now})
		}
		status["conditions"] = conds
	}
	if op != nil && !out.operated {
		// A requested sync that stopped before applying still ends with a result.
		out.operated, out.phase, out.message = true, "Succeeded", "nothing to do"
		if len(out.conditions) > 0 {
			out.phase, out.message = "Failed", out.conditions[0].Type+": "+out.conditions[0].Message
		}
	}
	if op == nil {
		op = map[string]any{"sync": map[string]any{"revision": out.revision}}
	}
	results := written(out.results)
	if out.operated {
		started := out.started
		if started.IsZero() {
			started = time.Now()
		}
		finished := out.finished
		if finished.IsZero() {
			finished = time.Now()
		}
		status["operationState"] = map[string]any{
			"phase":      out.phase,
			"message":    out.message,
			"startedAt":  started.UTC().Format(time.RFC3339),
			"finishedAt": finished.UTC().Format(time.RFC3339),
			"operation":  op,
			"syncResult": map[string]any{"revision": out.revision, "resources": results, "source": src},
			"retryCount": nil,
		}
		if out.retryCount > 0 {
			status["operationState"].(map[string]any)["retryCount"] = out.retryCount
		}
	}
	e.mu.Lock()
	lastResources, lastResults, lastStates := st.resourcesHash, st.resultsHash, st.resourcesStates
	e.mu.Unlock()
	resourcesHash, resourcesStates := listHash(out.resources), lastStates
	if resourcesHash == lastResources && len(out.resources) > 0 {
		delete(status, "resources")
	} else if resourcesStates = listHash(withoutHealthMessages(out.resources)); e.messagesOnly(u, st, resourcesStates, requested != nil || out.operated) {
		// The list written last stays: its messages wait.
		delete(status, "resources")
		resourcesHash = lastResources
	}
	resultsHash := ""
	if out.operated {
		resultsHash = listHash(results)
		if resultsHash == lastResults && len(results) > 0 {
			opState := status["operationState"].(map[string]any)
			delete(opState["syncResult"].(map[string]any), "resources")
		}
	}
	if requested == nil && !out.operated && e.quietStatus(u, st, status) {
		return nil
	}
	written, err := e.patchStatus(ctx, u, st, status, requested)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		st.resourcesHash, st.resultsHash, st.resourcesStates = "", "", ""
		// The operation is still on the Application: run it again.
		st.opRVs, st.finalRV = nil, ""
		return fmt.Errorf("patching status: %w", err)
	}
	st.resourcesHash, st.resourcesStates = resourcesHash, resourcesStates
	if _, sent := status["resources"]; sent {
		st.resourcesAt = time.Now()
	}
	st.statusAt, st.refreshAsked = time.Now(), u.GetAnnotations()[refreshAnnotation]
	if out.operated {
		st.resultsHash = resultsHash
	}
	if requested != nil {
		st.finalRV = written.GetResourceVersion()
	}
	return nil
}

// refreshAnnotation asks for a refresh, as Argo CD's CLI and UI set it.
const refreshAnnotation = "argocd.argoproj.io/refresh"

// statusEvery is how often a large Application's status is written when
// nothing in it but reconciledAt changed: Argo CD's default reconciliation
// period (timeout.reconciliation, 180 s).
const statusEvery = 3 * time.Minute

// quietStatus tells a status write that would change only reconciledAt of
// an Application of releaseAfter resources or more, made within statusEvery
// of the engine's last write, which the engine skips. The poll (30 s by
// default, to pick up commits quickly) otherwise rewrites the whole
// Application each time for a timestamp: at a thousand resources that is
// 340 KB of JSON read, patched and written to etcd, and decoded again by
// every watcher of Applications, whose garbage and fragmentation held
// about 20 MiB more of the server resident 60 s after a first sync with a
// 10 s poll. Anything else that changed (sync status, revision, health,
// conditions, the resources but for their health messages
// (withoutHealthMessages), an operation, a refresh asked with the
// annotation) is written at once, and the live status is compared, so a
// status someone else rewrote is corrected.
func (e *Engine) quietStatus(u *unstructured.Unstructured, st *appState, status map[string]any) bool {
	if _, ok := status["resources"]; ok || !e.recentStatus(u, st) {
		return false
	}
	want := make(map[string]any, len(status))
	for k, v := range status {
		if k != "reconciledAt" && v != nil {
			want[k] = v
		}
	}
	data, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var written map[string]any
	if json.Unmarshal(data, &written) != nil {
		return false
	}
	live, _ := u.Object["status"].(map[string]any)
	for k, v := range written {
		if !reflect.DeepEqual(live[k], v) {
			return false
		}
	}
	for k, v := range status {
		if _, set := live[k]; v == nil && set {
			return false
		}
	}
	return true
}

// recentStatus reports whether u is an Application of releaseAfter
// resources or more whose status the engine wrote within statusEvery, with
// no refresh asked since: what quietStatus leaves alone, and whose
// health messages alone wait (withoutHealthMessages).
func (e *Engine) recentStatus(u *unstructured.Unstructured, st *appState) bool {
	if inventorySize(u) < releaseAfter {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return !st.statusAt.IsZero() && time.Since(st.statusAt) < statusEvery && st.refreshAsked == u.GetAnnotations()[refreshAnnotation]
}

// messagesOnly reports whether a resources list whose hash without health
// messages is states differs from the one last written only in its health
// messages, and may wait for a later write (withoutHealthMessages): not in
// an operation's write, only on a large Application written recently with
// no refresh asked since (recentStatus), and only while the list itself was
// written within statusEvery.
func (e *Engine) messagesOnly(u *unstructured.Unstructured, st *appState, states string, operation bool) bool {
	if operation || !e.recentStatus(u, st) {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return states == st.resourcesStates && time.Since(st.resourcesAt) < statusEvery
}

// withoutHealthMessages is resources with their health statuses and no
// health messages. When a refresh of a large Application (recentStatus)
// finds its resources as last written but for the health messages, the
// list is left out of the status write, as if unchanged. It is written with
// the next change of anything else in it, or once statusEvery has passed
// since it was last written, whatever else was written meanwhile. While 250
// Deployments roll out, the Deployment controller moves their messages
// ("Replicas: 0/1", then "Available: 0/1") over a minute or more, and every
// poll rewrote the whole Application (a thousand resources, 700 KB of JSON)
// for them. A health status that changes (Progressing to Healthy or
// Degraded), an object added or gone, a sync status, an operation or a
// refresh asked with the annotation is written at once.
func withoutHealthMessages(resources []resourceStatus) []resourceStatus {
	out := make([]resourceStatus, len(resources))
	for i, r := range resources {
		out[i] = r
		if r.Health != nil && r.Health.Message != "" {
			out[i].Health = &healthStatus{Status: r.Health.Status}
		}
	}
	return out
}

// patchStatus writes status and, when an operation was requested, takes
// that operation off in the same write. That write is conditional on the
// Application being as the engine last saw it, so a request made while the
// operation ran is not lost: if the operation was replaced, only the
// status is written and the new request stays.
func (e *Engine) patchStatus(ctx context.Context, u *unstructured.Unstructured, st *appState, status map[string]any, requested map[string]any) (*unstructured.Unstructured, error) {
	client := e.dyn.Resource(ApplicationGVR).Namespace(u.GetNamespace())
	body := map[string]any{"status": status}
	if requested != nil {
		e.mu.Lock()
		rv := st.opRV
		e.mu.Unlock()
		body["operation"] = nil
		body["metadata"] = map[string]any{"resourceVersion": rv}
	}
	for attempt := 0; ; attempt++ {
		patch, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		written, err := client.Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil || !apierrors.IsConflict(err) || requested == nil || attempt == 3 {
			return written, err
		}
		// Changed meanwhile (an edit, a refresh annotation, a new request).
		live, err := client.Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if reflect.DeepEqual(live.Object["operation"], requested) {
			body["metadata"] = map[string]any{"resourceVersion": live.GetResourceVersion()}
		} else {
			delete(body, "operation")
			delete(body, "metadata")
		}
	}
}

// written leaves out of syncResult the objects the sync did not write
// because the dry run (or the last applied hash) found them as in Git: the
// operation lists what it applied, pruned, refused or ran as a hook, as Argo
// CD lists it with ApplyOutOfSyncOnly, which is how Fjord always syncs. A
// no-op then adds nothing to an Application whose status.resources already
// lists every object, and that Application is written and read by every
// operation: at a thousand objects the unchanged entries were 150 KB of it.
func written(results []resourceResult) []resourceResult {
	out := make([]resourceResult, 0, len(results))
	for _, r := range results {
		if r.Status == "Synced" && r.Message == string(ssa.UnchangedAction) && r.HookType == "" {
			continue
		}
		out = append(out, r)
	}
	return out
}

// listHash identifies a status list as it is written.
func listHash(v any) string {
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// inventorySize is the length of u's status.resources, read without
// copying them.
func inventorySize(u *unstructured.Unstructured) int {
	status, _ := u.Object["status"].(map[string]any)
	resources, _ := status["resources"].([]any)
	return len(resources)
}

// inventoryOf reads status.resources: what the last sync applied.
func inventoryOf(u *unstructured.Unstructured) []resourceStatus {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "resources")
	out := make([]resourceStatus, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		var rs resourceStatus
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &rs); err == nil && rs.Kind != "" && rs.Name != "" {
			out = append(out, rs)
		}
	}
	return out
}

func statusString(u *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, append([]string{"status"}, path...)...)
	return s
}

func conditionsOf(u *unstructured.Unstructured) []condition {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var out []condition
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			t, _ := m["type"].(string)
			msg, _ := m["message"].(string)
			out = append(out, condition{Type: t, Message: msg})
		}
	}
	return out
}

// operationRunning records that the sync operation is under way and what
// it waits for (a hook, health before PostSync), as Argo CD shows a
// Running operation. The final status write replaces it.
func (e *Engine) operationRunning(ctx context.Context, u *unstructured.Unstructured, msg string) {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"operationState": map[string]any{
		"phase": "Running", "message": msg, "finishedAt": nil,
	}}})
	client := e.dyn.Resource(ApplicationGVR).Namespace(u.GetNamespace())
	written, err := client.Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		e.log.Warn("writing the operation's progress", "application", u.GetName(), "err", err)
		return
	}
	// The operation is still on the Application at this version: a copy
	// of it later is not a new request.
	e.mu.Lock()
	if st := e.states[u.GetName()]; st != nil && st.opRVs != nil {
		st.opRVs[written.GetResourceVersion()] = true
		st.opRV = written.GetResourceVersion()
	}
	e.mu.Unlock()
}
