package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/itchyny/gojq"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IgnoreDifference is one entry of spec.ignoreDifferences: fields of the
// matching objects that do not count as drift (Argo CD's
// ResourceIgnoreDifferences).
type IgnoreDifference struct {
	Group                 string   `json:"group"`
	Kind                  string   `json:"kind"`
	Name                  string   `json:"name"`
	Namespace             string   `json:"namespace"`
	JSONPointers          []string `json:"jsonPointers"`
	JQPathExpressions     []string `json:"jqPathExpressions"`
	ManagedFieldsManagers []string `json:"managedFieldsManagers"`
}

// matches reports whether the entry applies to u (group and kind may be
// globs, as in Argo CD; name and namespace are exact when set).
func (d IgnoreDifference) matches(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	glob := func(pattern, s string) bool {
		ok, err := path.Match(pattern, s)
		return err == nil && ok
	}
	return glob(d.Group, gvk.Group) && glob(d.Kind, gvk.Kind) &&
		(d.Name == "" || d.Name == u.GetName()) && (d.Namespace == "" || d.Namespace == u.GetNamespace())
}

// validate names an entry Fjord cannot act on.
func (d IgnoreDifference) validate(i int) []error {
	var errs []error
	if d.Kind == "" {
		errs = append(errs, fmt.Errorf("spec.ignoreDifferences[%d].kind: required", i))
	}
	for j, p := range d.JSONPointers {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("spec.ignoreDifferences[%d].jsonPointers[%d] %q: a JSON pointer starts with /", i, j, p))
		}
	}
	for j, q := range d.JQPathExpressions {
		if _, err := gojq.Parse("path(" + q + ")"); err != nil {
			errs = append(errs, fmt.Errorf("spec.ignoreDifferences[%d].jqPathExpressions[%d] %q: %v", i, j, q, err))
		}
	}
	return errs
}

// ignoreLive returns desired with the fields the rules ignore taken from
// live: the value live has, or none when live has none. A dry run or an
// apply of the result neither sees nor changes those fields, which is how
// Argo CD leaves an HPA's replicas alone (RespectIgnoreDifferences). A new
// object (live nil) is returned as Git has it, as Argo CD creates it.
func ignoreLive(rules []IgnoreDifference, desired, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if live == nil {
		return desired, nil
	}
	var paths [][]any
	for _, r := range rules {
		if !r.matches(desired) {
			continue
		}
		for _, p := range r.JSONPointers {
			paths = append(paths, pointerPath(p))
		}
		for _, q := range r.JQPathExpressions {
			ps, err := jqPaths(q, desired.Object)
			if err != nil {
				return nil, err
			}
			paths = append(paths, ps...)
		}
		for _, m := range r.ManagedFieldsManagers {
			paths = append(paths, managedPaths(live, desired, m)...)
		}
	}
	if len(paths) == 0 {
		return desired, nil
	}
	out := desired.DeepCopy()
	// Deepest and highest index first, so that removing an element does not
	// move the ones still to be handled.
	sort.SliceStable(paths, func(i, j int) bool { return pathLess(paths[j], paths[i]) })
	for _, p := range paths {
		if v, ok := valueAt(live.Object, p); ok {
			setAt(out.Object, p, runtime.DeepCopyJSONValue(v))
		} else {
			deleteAt(out.Object, p)
		}
	}
	return out, nil
}

// pointerPath splits an RFC 6901 JSON pointer; a token that is a number
// may index a list.
func pointerPath(p string) []any {
	var out []any
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if n, err := strconv.Atoi(tok); err == nil {
			out = append(out, n)
			continue
		}
		out = append(out, tok)
	}
	return out
}

// jqPaths runs path(expr) over obj with gojq.
func jqPaths(expr string, obj map[string]any) ([][]any, error) {
	q, err := gojq.Parse("path(" + expr + ")")
	if err != nil {
		return nil, fmt.Errorf("jqPathExpressions %q: %w", expr, err)
	}
	// gojq takes JSON's types (float64, not int64).
	data, _ := json.Marshal(obj)
	var in any
	json.Unmarshal(data, &in)
	var out [][]any
	iter := q.Run(in)
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			return nil, fmt.Errorf("jqPathExpressions %q: %w", expr, err)
		}
		if p, ok := v.([]any); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// managedPaths lists the leaf fields of desired that manager owns on live
// (its managedFields entries), as paths of desired.
func managedPaths(live, desired *unstructured.Unstructured, manager string) [][]any {
	var out [][]any
	for _, mf := range live.GetManagedFields() {
		if mf.Manager != manager || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		out = append(out, ownedPaths(fields, desired.Object, nil)...)
	}
	return out
}

// ownedPaths walks a FieldsV1 set (f:name for a field, k:{...} for a list
// element by its keys, i:N by index) alongside node, returning the path of
// each owned leaf that node has.
func ownedPaths(fields map[string]any, node any, prefix []any) [][]any {
	var out [][]any
	for k, sub := range fields {
		if k == "." {
			continue
		}
		kind, key, _ := strings.Cut(k, ":")
		var p []any
		var child any
		switch kind {
		case "f":
			m, ok := node.(map[string]any)
			if !ok {
				continue
			}
			if child, ok = m[key]; !ok {
				continue
			}
			p = appendPath(prefix, key)
		case "k":
			list, ok := node.([]any)
			if !ok {
				continue
			}
			var want map[string]any
			if json.Unmarshal([]byte(key), &want) != nil {
				continue
			}
			i := indexByKeys(list, want)
			if i < 0 {
				continue
			}
			child, p = list[i], appendPath(prefix, i)
		case "i":
			list, ok := node.([]any)
			n, err := strconv.Atoi(key)
			if !ok || err != nil || n >= len(list) {
				continue
			}
			child, p = list[n], appendPath(prefix, n)
		default:
			continue
		}
		subFields, _ := sub.(map[string]any)
		if isLeaf(subFields) {
			out = append(out, p)
			continue
		}
		out = append(out, ownedPaths(subFields, child, p)...)
	}
	return out
}

func appendPath(prefix []any, k any) []any {
	return append(append([]any(nil), prefix...), k)
}

// isLeaf reports whether a FieldsV1 node owns a value, not fields below it.
func isLeaf(fields map[string]any) bool {
	for k := range fields {
		if k != "." {
			return false
		}
	}
	return true
}

// indexByKeys finds the list element whose fields equal want.
func indexByKeys(list []any, want map[string]any) int {
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		match := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != fmt.Sprint(v) {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}

// index reads a path element as a list index (gojq gives float64s).
func index(k any) (int, bool) {
	switch n := k.(type) {
	case int:
		return n, true
	case float64:
		return int(n), true
	}
	return 0, false
}

func valueAt(node any, p []any) (any, bool) {
	for _, k := range p {
		switch n := node.(type) {
		case map[string]any:
			s, ok := k.(string)
			if !ok {
				return nil, false
			}
			if node, ok = n[s]; !ok {
				return nil, false
			}
		case []any:
			i, ok := index(k)
			if !ok || i < 0 || i >= len(n) {
				return nil, false
			}
			node = n[i]
		default:
			return nil, false
		}
	}
	return node, true
}

// setAt sets the value at p, creating missing maps on the way; a list
// element that does not exist is not created.
func setAt(root map[string]any, p []any, v any) {
	if len(p) == 0 {
		return
	}
	var node any = root
	for i, k := range p {
		last := i == len(p)-1
		switch n := node.(type) {
		case map[string]any:
			s, ok := k.(string)
			if !ok {
				return
			}
			if last {
				n[s] = v
				return
			}
			next, ok := n[s]
			if !ok {
				next = map[string]any{}
				n[s] = next
			}
			node = next
		case []any:
			j, ok := index(k)
			if !ok || j < 0 || j >= len(n) {
				return
			}
			if last {
				n[j] = v
				return
			}
			node = n[j]
		default:
			return
		}
	}
}

func deleteAt(root map[string]any, p []any) {
	if len(p) == 0 {
		return
	}
	parentPath, last := p[:len(p)-1], p[len(p)-1]
	parent, ok := valueAt(root, parentPath)
	if !ok {
		return
	}
	switch n := parent.(type) {
	case map[string]any:
		if s, ok := last.(string); ok {
			delete(n, s)
		}
	case []any:
		j, ok := index(last)
		if !ok || j < 0 || j >= len(n) {
			return
		}
		n = append(n[:j], n[j+1:]...)
		if len(parentPath) == 0 {
			return
		}
		setAt(root, parentPath, n)
	}
}

// pathLess orders paths so that handling them from the greatest down never
// invalidates a later one: shorter first, then by element.
func pathLess(a, b []any) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for i := range a {
		ai, aok := index(a[i])
		bi, bok := index(b[i])
		if aok && bok && ai != bi {
			return ai < bi
		}
		as, bs := fmt.Sprint(a[i]), fmt.Sprint(b[i])
		if as != bs {
			return as < bs
		}
	}
	return false
}

// withIgnored returns o with the fields app's ignoreDifferences ignore
// taken from the live object (ignoreLive); o itself when no rule matches
// it or it does not exist yet.
func (e *Engine) withIgnored(ctx context.Context, app *Application, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if app == nil || !slices.ContainsFunc(app.Spec.IgnoreDifferences, func(d IgnoreDifference) bool { return d.matches(o) }) {
		return o, nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
		if isNotFound(err) {
			return o, nil
		}
		return nil, err
	}
	return ignoreLive(app.Spec.IgnoreDifferences, o, live)
}

// diffIgnoring dry-runs o against the cluster, the ignored fields left out
// of the comparison.
func (e *Engine) diffIgnoring(ctx context.Context, app *Application, o *unstructured.Unstructured) (*ssa.ChangeSetEntry, error) {
	d, err := e.withIgnored(ctx, app, o)
	if err != nil {
		return nil, err
	}
	entry, _, _, err := e.rm.Diff(ctx, d, ssa.DiffOptions{})
	return entry, err
}
