package gitops

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fjord-dev/fjord/appliance/gitops/source"
)

// AppProjectGVR is Argo CD's AppProject resource.
var AppProjectGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}

// DefaultProject is the project of an Application that names none, created
// at start allowing everything, as Argo CD creates it.
const DefaultProject = "default"

// AppProject is the part of Argo CD's AppProject spec Fjord enforces.
type AppProject struct {
	Name string
	Spec AppProjectSpec
}

// AppProjectSpec limits where an Application's sources come from, where it
// deploys, and which kinds it may write.
type AppProjectSpec struct {
	SourceRepos                []string             `json:"sourceRepos"`
	Destinations               []ProjectDestination `json:"destinations"`
	ClusterResourceWhitelist   []GroupKindPattern   `json:"clusterResourceWhitelist"`
	ClusterResourceBlacklist   []GroupKindPattern   `json:"clusterResourceBlacklist"`
	NamespaceResourceWhitelist []GroupKindPattern   `json:"namespaceResourceWhitelist"`
	NamespaceResourceBlacklist []GroupKindPattern   `json:"namespaceResourceBlacklist"`
}

// ProjectDestination is one permitted destination: server (or cluster
// name) and namespace, globs.
type ProjectDestination struct {
	Server    string `json:"server"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// GroupKindPattern names kinds by group and kind globs.
type GroupKindPattern struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}

// defaultProject is the project Fjord creates at start when it is missing:
// any repository, any namespace, any kind.
func defaultProject(namespace string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": DefaultProject, "namespace": namespace},
		"spec": map[string]any{
			"description":              "Fjord's default project: any source, any destination, any kind",
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	}}
}

// ensureDefaultProject creates the default AppProject unless it exists (a
// changed one is left as it is), waiting for its CRD to be served.
func (e *Engine) ensureDefaultProject(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := e.dyn.Resource(AppProjectGVR).Namespace(e.cfg.Namespace).Create(ctx, defaultProject(e.cfg.Namespace), metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			return fmt.Errorf("creating the default AppProject: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// project reads the Application's AppProject.
func (e *Engine) project(ctx context.Context, app *Application) (*AppProject, error) {
	name := orDefault(app.Spec.Project, DefaultProject)
	u, err := e.dyn.Resource(AppProjectGVR).Namespace(e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("spec.project: AppProject %q does not exist in namespace %s", name, e.cfg.Namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("reading AppProject %s: %w", name, err)
	}
	return parseProject(u)
}

func parseProject(u *unstructured.Unstructured) (*AppProject, error) {
	p := &AppProject{Name: u.GetName()}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &p.Spec); err != nil {
		return nil, fmt.Errorf("reading AppProject %s: %w", p.Name, err)
	}
	return p, nil
}

// checkSource refuses an Application whose repository or destination the
// project does not permit (Argo CD's InvalidSpecError).
func (p *AppProject) checkSource(app *Application) error {
	var errs []error
	for _, src := range app.SourceList() {
		if !p.repoPermitted(src.RepoURL) {
			errs = append(errs, fmt.Errorf("application repo %s is not permitted in project '%s' (sourceRepos %s)", src.RepoURL, p.Name, strings.Join(p.Spec.SourceRepos, ", ")))
		}
	}
	if ns := app.Spec.Destination.Namespace; !p.destinationPermitted(app.Spec.Destination, ns) {
		errs = append(errs, fmt.Errorf("application destination {%s %s} is not permitted in project '%s' (destinations %s)", destinationName(app.Spec.Destination), ns, p.Name, p.destinationList()))
	}
	return errors.Join(errs...)
}

// checkObjects refuses the objects the project does not let the
// Application write: a kind outside the resource white- or blacklists, or
// a namespace outside its destinations (Argo CD's ComparisonError names
// each).
func (p *AppProject) checkObjects(app *Application, objs []*unstructured.Unstructured) error {
	var errs []error
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		namespaced := o.GetNamespace() != ""
		if !p.kindPermitted(gk, namespaced) {
			list := "clusterResourceWhitelist/Blacklist"
			if namespaced {
				list = "namespaceResourceWhitelist/Blacklist"
			}
			errs = append(errs, fmt.Errorf("%s: resource %s:%s is not permitted in project %s (%s)", describe(o), gk.Group, gk.Kind, p.Name, list))
			continue
		}
		if namespaced && !p.destinationPermitted(app.Spec.Destination, o.GetNamespace()) {
			errs = append(errs, fmt.Errorf("%s: namespace %s is not permitted in project '%s' (destinations %s)", describe(o), o.GetNamespace(), p.Name, p.destinationList()))
		}
	}
	return errors.Join(errs...)
}

func describe(o *unstructured.Unstructured) string {
	if o.GetName() == "" {
		return keyOf(o).String() + o.GetGenerateName() + "*"
	}
	return keyOf(o).String()
}

func destinationName(d Destination) string {
	if d.Server != "" {
		return d.Server
	}
	return d.Name
}

func (p *AppProject) destinationList() string {
	var out []string
	for _, d := range p.Spec.Destinations {
		out = append(out, fmt.Sprintf("{%s %s}", orDefault(d.Server, d.Name), d.Namespace))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// repoPermitted matches the repository against sourceRepos; a pattern
// starting with ! denies what it matches (Argo CD 2.11+).
func (p *AppProject) repoPermitted(repo string) bool {
	norm, _ := source.NormalizeURL(repo)
	return allowedByPatterns(p.Spec.SourceRepos, func(pattern string) bool {
		n, _ := source.NormalizeURL(pattern)
		return globMatch(pattern, repo) || (n != "" && globMatch(n, norm))
	})
}

// destinationPermitted matches a destination (the Application's server or
// cluster name) and a namespace against the project's destinations.
func (p *AppProject) destinationPermitted(d Destination, namespace string) bool {
	for _, pd := range p.Spec.Destinations {
		server := pd.Server != "" && d.Server != "" && globMatch(pd.Server, strings.TrimSuffix(d.Server, "/"))
		name := pd.Name != "" && globMatch(pd.Name, orDefault(d.Name, "in-cluster"))
		// The in-cluster server and the in-cluster name are one cluster.
		if !server && !name && pd.Server != "" && d.Server == "" && d.Name == "in-cluster" {
			server = globMatch(pd.Server, InClusterServer)
		}
		if !server && !name && pd.Name != "" && d.Server != "" {
			name = strings.TrimSuffix(d.Server, "/") == InClusterServer && globMatch(pd.Name, "in-cluster")
		}
		if (server || name) && globMatch(pd.Namespace, namespace) {
			return true
		}
	}
	return false
}

// kindPermitted applies the resource lists as Argo CD's
// IsGroupKindPermitted does: a cluster-scoped kind needs the (default
// empty) cluster whitelist; a namespaced kind is permitted unless a
// namespace whitelist is set and leaves it out; a blacklist always denies.
func (p *AppProject) kindPermitted(gk schema.GroupKind, namespaced bool) bool {
	in := func(list []GroupKindPattern) bool {
		for _, item := range list {
			if globMatch(item.Group, gk.Group) && globMatch(item.Kind, gk.Kind) {
				return true
			}
		}
		return false
	}
	if namespaced {
		white := p.Spec.NamespaceResourceWhitelist
		return (white == nil || in(white)) && !in(p.Spec.NamespaceResourceBlacklist)
	}
	return in(p.Spec.ClusterResourceWhitelist) && !in(p.Spec.ClusterResourceBlacklist)
}

// allowedByPatterns is true when a pattern without ! matches and no !
// pattern does.
func allowedByPatterns(patterns []string, match func(string) bool) bool {
	allowed := false
	for _, pat := range patterns {
		if neg, ok := strings.CutPrefix(pat, "!"); ok {
			if match(neg) {
				return false
			}
			continue
		}
		allowed = allowed || match(pat)
	}
	return allowed
}

// globMatch matches s against a glob where * is any run of characters,
// slashes included, and ? one character (gobwas/glob without separators,
// as Argo CD compiles its project patterns). A ! prefix negates.
func globMatch(pattern, s string) bool {
	if neg, ok := strings.CutPrefix(pattern, "!"); ok {
		return !globMatch(neg, s)
	}
	if pattern == "*" || pattern == s {
		return true
	}
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	ok, _ := regexp.MatchString(b.String(), s)
	return ok
}
