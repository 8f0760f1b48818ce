package gitops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Annotations Argo CD users already write.
const (
	annotationTrackingID  = "argocd.argoproj.io/tracking-id"
	annotationSyncWave    = "argocd.argoproj.io/sync-wave"
	annotationSyncOptions = "argocd.argoproj.io/sync-options"
	// annotationCompareOptions holds IgnoreExtraneous.
	annotationCompareOptions = "argocd.argoproj.io/compare-options"
)

// objKey identifies one object across API versions.
type objKey struct {
	Group, Kind, Namespace, Name string
}

func keyOf(u *unstructured.Unstructured) objKey {
	gvk := u.GroupVersionKind()
	return objKey{Group: gvk.Group, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

func (k objKey) String() string {
	kind := k.Kind
	if k.Group != "" {
		kind = k.Kind + "." + k.Group
	}
	if k.Namespace == "" {
		return kind + "/" + k.Name
	}
	return kind + "/" + k.Namespace + "/" + k.Name
}

// trackingID is Argo CD's annotation tracking value for an object of app.
func trackingID(app *Application, u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return fmt.Sprintf("%s:%s/%s:%s/%s", app.Name, gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName())
}

// trackedBy returns the Application name in an object's tracking annotation.
func trackedBy(u *unstructured.Unstructured) string {
	id := u.GetAnnotations()[annotationTrackingID]
	name, _, ok := strings.Cut(id, ":")
	if !ok {
		return ""
	}
	return name
}

// syncWave returns the object's sync wave: its sync-wave annotation, else
// its helm.sh/hook-weight, else 0 (gitops-engine syncwaves.Wave).
func syncWave(u *unstructured.Unstructured) int {
	for _, k := range []string{annotationSyncWave, annotationHelmHookWeight} {
		if v, ok := u.GetAnnotations()[k]; ok {
			if w, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return w
			}
		}
	}
	return 0
}

// hasSyncOption reports whether the object's sync-options annotation says
// option (e.g. "Prune=false").
func hasSyncOption(u *unstructured.Unstructured, option string) bool {
	return hasAnnotationOption(u, annotationSyncOptions, option)
}

// hasCompareOption reports whether the object's compare-options
// annotation says option (e.g. "IgnoreExtraneous").
func hasCompareOption(u *unstructured.Unstructured, option string) bool {
	return hasAnnotationOption(u, annotationCompareOptions, option)
}

// hasAnnotationOption reports whether the comma-separated annotation key
// holds option, case-insensitively.
func hasAnnotationOption(u *unstructured.Unstructured, key, option string) bool {
	for _, o := range strings.Split(u.GetAnnotations()[key], ",") {
		if strings.EqualFold(strings.TrimSpace(o), option) {
			return true
		}
	}
	return false
}

// byWave groups objects by sync wave, lowest first.
func byWave(objs []*unstructured.Unstructured) [][]*unstructured.Unstructured {
	groups := map[int][]*unstructured.Unstructured{}
	for _, o := range objs {
		w := syncWave(o)
		groups[w] = append(groups[w], o)
	}
	waves := make([]int, 0, len(groups))
	for w := range groups {
		waves = append(waves, w)
	}
	sort.Ints(waves)
	out := make([][]*unstructured.Unstructured, 0, len(waves))
	for _, w := range waves {
		out = append(out, groups[w])
	}
	return out
}

// resourceStatus is one entry of status.resources (Argo CD's
// ResourceStatus); together they are the Application's inventory.
type resourceStatus struct {
	Group           string        `json:"group,omitempty"`
	Version         string        `json:"version"`
	Kind            string        `json:"kind"`
	Namespace       string        `json:"namespace,omitempty"`
	Name            string        `json:"name"`
	Status          string        `json:"status,omitempty"`
	Health          *healthStatus `json:"health,omitempty"`
	RequiresPruning bool          `json:"requiresPruning,omitempty"`
	// ignoreExtraneous is set on an object that left Git whose live
	// annotation says compare-options IgnoreExtraneous: it does not make
	// the Application OutOfSync. Never written.
	IgnoreExtraneous bool `json:"-"`
}

type healthStatus struct {
	Status  Health `json:"status"`
	Message string `json:"message,omitempty"`
}

func (r resourceStatus) key() objKey {
	return objKey{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

func (r resourceStatus) gvk() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}
