package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/fjord-dev/fjord/appliance/gitops/source"
)

// AppStatus is one row of `fjord status`.
type AppStatus struct {
	Name     string    `json:"name"`
	Revision string    `json:"revision"`
	Sync     string    `json:"sync"`
	Health   string    `json:"health"`
	LastSync time.Time `json:"lastSync,omitzero"`
	Phase    string    `json:"phase,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// Client is what the CLI uses to look at and drive the engine of a running
// server, through the API server only.
type Client struct{ e *Engine }

// NewClient connects to the API server with the kubeconfig in rt.
// Only the dynamic client is made here: what Diff needs besides (REST
// mapper, server-side apply manager) is made when it runs, so that status
// and sync start at once.
func NewClient(cfg Config, rt Runtime) (*Client, error) {
	e := New(cfg, rt)
	rc, err := clientcmd.BuildConfigFromFlags("", rt.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rt.Kubeconfig, err)
	}
	rc.WarningHandler = rest.NoWarnings{}
	if e.dyn, err = dynamic.NewForConfig(rc); err != nil {
		return nil, err
	}
	return &Client{e: e}, nil
}

// Status lists every Application with its sync and health state; the
// message is the first condition, else the last operation's message.
func (c *Client) Status(ctx context.Context) ([]AppStatus, error) {
	list, err := c.e.dyn.Resource(ApplicationGVR).Namespace(c.e.cfg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Applications: %w", err)
	}
	out := make([]AppStatus, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, statusOf(&list.Items[i]))
	}
	return out, nil
}

func statusOf(u *unstructured.Unstructured) AppStatus {
	s := AppStatus{Name: u.GetName(), Revision: statusString(u, "sync", "revision"), Sync: statusString(u, "sync", "status"),
		Health: statusString(u, "health", "status"), Phase: statusString(u, "operationState", "phase"),
		Message: statusString(u, "operationState", "message")}
	if t, err := time.Parse(time.RFC3339, statusString(u, "operationState", "finishedAt")); err == nil {
		s.LastSync = t
	}
	if conds := conditionsOf(u); len(conds) > 0 {
		s.Message = conds[0].Type + ": " + conds[0].Message
	}
	return s
}

// Sync asks the engine to sync name now (Argo CD's operation field), also
// when the Application has no automated policy, and waits for the result.
func (c *Client) Sync(ctx context.Context, name string) (AppStatus, error) {
	res := c.e.dyn.Resource(ApplicationGVR).Namespace(c.e.cfg.Namespace)
	// The request carries an id that comes back in operationState.operation,
	// so the answer to this request is told apart from an earlier one.
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	patch, _ := json.Marshal(map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "fjord-cli"},
		"info":        []map[string]any{{"name": requestIDInfo, "value": id}},
		"sync":        map[string]any{"revision": ""},
	}})
	cur, err := res.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "fjord-cli"})
	if apierrors.IsNotFound(err) {
		return AppStatus{}, fmt.Errorf("application %q not found in namespace %s", name, c.e.cfg.Namespace)
	}
	if err != nil {
		return AppStatus{}, fmt.Errorf("requesting a sync of %s: %w", name, err)
	}
	// Watch from the patch on: the answer arrives with the status write
	// that carries the id, without polling. A watch that ends (the API
	// server's timeout) is opened again from the last version seen.
	rv := cur.GetResourceVersion()
	for {
		w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
		if err != nil {
			if ctx.Err() != nil {
				return AppStatus{}, fmt.Errorf("waiting for the sync of %s: %w", name, ctx.Err())
			}
			return AppStatus{}, fmt.Errorf("watching %s: %w", name, err)
		}
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue // a watch error (410 Gone): open it again from rv
			}
			rv = u.GetResourceVersion()
			if requestID(u) == id {
				w.Stop()
				return statusOf(u), nil
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return AppStatus{}, fmt.Errorf("waiting for the sync of %s: %w", name, ctx.Err())
		}
		// The answer may have come while no watch was open.
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return AppStatus{}, err
		}
		if requestID(u) == id {
			return statusOf(u), nil
		}
		rv = u.GetResourceVersion()
	}
}

// requestIDInfo names the operation info entry that carries a CLI request's id.
const requestIDInfo = "fjord-request-id"

func requestID(u *unstructured.Unstructured) string {
	infos, _, _ := unstructured.NestedSlice(u.Object, "status", "operationState", "operation", "info")
	for _, i := range infos {
		if m, ok := i.(map[string]any); ok && m["name"] == requestIDInfo {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

// Diff renders name's source at its target revision and writes, per object,
// a unified diff between the cluster and what a sync would make of it
// (server-side dry-run; Secret values masked). It reports whether anything
// would change.
func (c *Client) Diff(ctx context.Context, name string, w io.Writer) (bool, error) {
	if err := c.e.connect(); err != nil {
		return false, err
	}
	u, err := c.e.dyn.Resource(ApplicationGVR).Namespace(c.e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading application %s: %w", name, err)
	}
	app, err := ParseApplication(u)
	if err != nil {
		return false, err
	}
	if err := app.Validate(); err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp("", "fjord-diff-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	cache, err := source.New(source.Options{Root: tmp})
	if err != nil {
		return false, err
	}
	srcs := app.SourceList()
	arts := make([]*source.Artifact, len(srcs))
	revs := make([]string, len(srcs))
	for i, src := range srcs {
		repo, err := c.e.repository(ctx, src.RepoURL)
		if err != nil {
			return false, err
		}
		if arts[i], err = cache.Fetch(ctx, repo, src.TargetRevision); err != nil {
			return false, err
		}
		revs[i] = arts[i].Revision
	}
	res, err := buildSources(app, arts)
	if err != nil {
		return false, err
	}
	if _, err := c.e.normalize(app, res.Objects); err != nil {
		return false, err
	}
	// Hooks are created by each sync, not compared.
	objs, _, err := splitHooks(res.Objects)
	if err != nil {
		return false, err
	}
	changed := false
	desired := map[objKey]bool{}
	for _, o := range objs {
		desired[keyOf(o)] = true
		if o, err = c.e.withIgnored(ctx, app, o); err != nil {
			return false, err
		}
		entry, live, merged, err := c.e.rm.Diff(ctx, o, ssa.DiffOptions{})
		if err != nil {
			fmt.Fprintf(w, "# %s: %s\n", keyOf(o), cleanErr(err))
			changed = true
			continue
		}
		switch entry.Action {
		case ssa.CreatedAction:
			changed = true
			fmt.Fprintf(w, "# %s: would be created\n", keyOf(o))
		case ssa.ConfiguredAction:
			changed = true
			a, _ := yaml.Marshal(clean(live).Object)
			b, _ := yaml.Marshal(clean(merged).Object)
			text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
				FromFile: "live/" + keyOf(o).String(), ToFile: "git/" + keyOf(o).String(), Context: 3,
			})
			fmt.Fprint(w, text)
		}
	}
	for _, r := range inventoryOf(u) {
		if !desired[r.key()] {
			changed = true
			verb := "would be pruned"
			if !app.Prune() {
				verb = "left Git (automated.prune is off: it would stay)"
			}
			fmt.Fprintf(w, "# %s: %s\n", r.key(), verb)
		}
	}
	fmt.Fprintf(w, "# %s at %s: %s\n", name, short(strings.Join(revs, ",")), map[bool]string{true: "changes", false: "no changes"}[changed])
	return changed, nil
}

// clean drops server-managed metadata that only adds noise to a diff.
func clean(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	return c
}
