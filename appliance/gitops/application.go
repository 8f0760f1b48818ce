package gitops

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ApplicationGVR is Argo CD's Application resource.
var ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// InClusterServer is the only destination server Fjord syncs to.
const InClusterServer = "https://kubernetes.default.svc"

// Application is the part of Argo CD's Application spec Fjord acts on.
type Application struct {
	Name      string
	Namespace string
	// Generation is metadata.generation, to tell spec changes apart.
	Generation int64
	Spec       ApplicationSpec
}

// ApplicationSpec mirrors argoproj.io/v1alpha1 ApplicationSpec (the fields
// Fjord supports).
type ApplicationSpec struct {
	Project     string      `json:"project"`
	Source      *Source     `json:"source"`
	Destination Destination `json:"destination"`
	SyncPolicy  *SyncPolicy `json:"syncPolicy"`
}

// Source says where the manifests come from.
type Source struct {
	RepoURL        string     `json:"repoURL"`
	TargetRevision string     `json:"targetRevision"`
	Path           string     `json:"path"`
	Directory      *Directory `json:"directory"`
}

// Directory holds the options of a plain directory of manifests.
type Directory struct {
	Recurse bool `json:"recurse"`
}

// Destination says where the manifests go.
type Destination struct {
	Server    string `json:"server"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// SyncPolicy is Argo CD's sync policy.
type SyncPolicy struct {
	Automated   *Automated `json:"automated"`
	SyncOptions []string   `json:"syncOptions"`
}

// Automated turns on syncing without a person asking.
type Automated struct {
	Prune      bool `json:"prune"`
	SelfHeal   bool `json:"selfHeal"`
	AllowEmpty bool `json:"allowEmpty"`
}

// parseApplication reads an Application from its unstructured form.
func parseApplication(u *unstructured.Unstructured) (*Application, error) {
	app := &Application{Name: u.GetName(), Namespace: u.GetNamespace(), Generation: u.GetGeneration()}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &app.Spec); err != nil {
		return app, fmt.Errorf("reading spec: %w", err)
	}
	return app, nil
}

// Automated reports whether Fjord syncs the Application on its own.
func (a *Application) Automated() bool {
	return a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil
}

// Prune reports whether objects that left Git are deleted.
func (a *Application) Prune() bool { return a.Automated() && a.Spec.SyncPolicy.Automated.Prune }

// SelfHeal reports whether drift is reverted.
func (a *Application) SelfHeal() bool { return a.Automated() && a.Spec.SyncPolicy.Automated.SelfHeal }

// AllowEmpty reports whether pruning everything is allowed.
func (a *Application) AllowEmpty() bool {
	return a.Automated() && a.Spec.SyncPolicy.Automated.AllowEmpty
}

// SyncOption reports whether the sync option name (e.g. CreateNamespace) is
// set to true.
func (a *Application) SyncOption(name string) bool {
	if a.Spec.SyncPolicy == nil {
		return false
	}
	for _, o := range a.Spec.SyncPolicy.SyncOptions {
		k, v, _ := strings.Cut(o, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.EqualFold(strings.TrimSpace(v), "true")
		}
	}
	return false
}

// validate returns why Fjord cannot sync the Application, or nil.
func (a *Application) validate() error {
	var errs []error
	if p := a.Spec.Project; p != "" && p != "default" {
		errs = append(errs, fmt.Errorf("spec.project %q: AppProjects are not supported yet; use project \"default\"", p))
	}
	d := a.Spec.Destination
	switch {
	case d.Server == "" && d.Name == "":
		errs = append(errs, errors.New("spec.destination: set server: "+InClusterServer+" (or name: in-cluster)"))
	case d.Server != "" && strings.TrimSuffix(d.Server, "/") != InClusterServer:
		errs = append(errs, fmt.Errorf("spec.destination.server %q: Fjord syncs only to the local cluster (%s)", d.Server, InClusterServer))
	case d.Server == "" && d.Name != "in-cluster":
		errs = append(errs, fmt.Errorf("spec.destination.name %q: Fjord syncs only to the local cluster (in-cluster)", d.Name))
	}
	if a.Spec.Source == nil || a.Spec.Source.RepoURL == "" {
		errs = append(errs, errors.New("spec.source.repoURL: required (multiple sources are not supported yet)"))
	}
	return errors.Join(errs...)
}
