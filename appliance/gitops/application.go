package gitops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-base/version"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"

	"github.com/fjord-dev/fjord/appliance/gitops/build"
)

// ApplicationGVR is Argo CD's Application resource.
var ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// InClusterServer is the only destination server Fjord syncs to.
const InClusterServer = "https://kubernetes.default.svc"

// Application is the part of Argo CD's Application spec Fjord acts on.
type Application struct {
	Name      string
	Namespace string
	// SpecHash is a digest of the spec, to tell spec changes apart:
	// metadata.generation cannot, because Argo CD's CRD has no status
	// subresource and so every status write moves it.
	SpecHash string
	Spec     ApplicationSpec
	// rawSpec is the spec as written, to name the fields Fjord does not act
	// on (validate).
	rawSpec map[string]any
}

// ApplicationSpec mirrors argoproj.io/v1alpha1 ApplicationSpec (the fields
// Fjord supports).
type ApplicationSpec struct {
	Project string  `json:"project"`
	Source  *Source `json:"source"`
	// Sources, when set, replace Source: each is rendered (but a source
	// with a ref and no path, which only lends its files to the others'
	// $ref/ value files) and the objects are synced together.
	Sources     []Source    `json:"sources"`
	Destination Destination `json:"destination"`
	SyncPolicy  *SyncPolicy `json:"syncPolicy"`
	// IgnoreDifferences are fields that do not count as drift.
	IgnoreDifferences []IgnoreDifference `json:"ignoreDifferences"`
}

// Source says where the manifests come from.
type Source struct {
	RepoURL        string     `json:"repoURL"`
	TargetRevision string     `json:"targetRevision"`
	Path           string     `json:"path"`
	Directory      *Directory `json:"directory"`
	Helm           *Helm      `json:"helm"`
	Kustomize      *Kustomize `json:"kustomize"`
	// Ref names the source for $ref/… value files of the other sources.
	Ref string `json:"ref"`
}

// Kustomize holds the options Argo CD applies to a kustomization before it
// is built (ApplicationSourceKustomize, the fields Fjord supports).
type Kustomize struct {
	Images                 []string          `json:"images"`
	NamePrefix             string            `json:"namePrefix"`
	NameSuffix             string            `json:"nameSuffix"`
	CommonLabels           map[string]string `json:"commonLabels"`
	ForceCommonLabels      bool              `json:"forceCommonLabels"`
	CommonAnnotations      map[string]string `json:"commonAnnotations"`
	ForceCommonAnnotations bool              `json:"forceCommonAnnotations"`
	Namespace              string            `json:"namespace"`
	Replicas               []struct {
		Name  string             `json:"name"`
		Count intstr.IntOrString `json:"count"`
	} `json:"replicas"`
	Patches []struct {
		Path    string          `json:"path"`
		Patch   string          `json:"patch"`
		Target  *kustomizeMatch `json:"target"`
		Options map[string]bool `json:"options"`
	} `json:"patches"`
}

// kustomizeMatch is a patch's target, in Argo CD's (and kustomize's) form.
type kustomizeMatch struct {
	Group              string `json:"group"`
	Version            string `json:"version"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	Namespace          string `json:"namespace"`
	LabelSelector      string `json:"labelSelector"`
	AnnotationSelector string `json:"annotationSelector"`
}

// Helm holds the options of a Helm chart at the source's path (Argo CD's
// ApplicationSourceHelm, the fields Fjord supports).
type Helm struct {
	ReleaseName             string          `json:"releaseName"`
	ValueFiles              []string        `json:"valueFiles"`
	IgnoreMissingValueFiles bool            `json:"ignoreMissingValueFiles"`
	Values                  string          `json:"values"`
	ValuesObject            map[string]any  `json:"valuesObject"`
	Parameters              []HelmParameter `json:"parameters"`
	SkipCrds                bool            `json:"skipCrds"`
	KubeVersion             string          `json:"kubeVersion"`
	APIVersions             []string        `json:"apiVersions"`
}

// HelmParameter is one --set of a Helm source.
type HelmParameter struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	ForceString bool   `json:"forceString"`
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
	Automated   *Automated   `json:"automated"`
	SyncOptions []string     `json:"syncOptions"`
	Retry       *RetryPolicy `json:"retry"`
}

// RetryPolicy is how often and how soon a failed sync is tried again.
// Limit 0 is no retry, a negative limit retries for ever.
type RetryPolicy struct {
	Limit   int64 `json:"limit"`
	Backoff *struct {
		Duration    string `json:"duration"`
		Factor      *int64 `json:"factor"`
		MaxDuration string `json:"maxDuration"`
	} `json:"backoff"`
}

// Argo CD's retry backoff defaults.
const (
	defaultRetryDuration    = 5 * time.Second
	defaultRetryFactor      = 2
	defaultRetryMaxDuration = 3 * time.Minute
)

// retryAfter returns how long to wait before retry number n+1 of a failed
// sync (n retries done so far), and false when the policy allows no more:
// duration·factor^n, at most maxDuration, as Argo CD computes it.
func (p *RetryPolicy) retryAfter(n int64) (time.Duration, bool) {
	if p == nil || p.Limit == 0 || (p.Limit > 0 && n >= p.Limit) {
		return 0, false
	}
	d, factor, max := defaultRetryDuration, int64(defaultRetryFactor), defaultRetryMaxDuration
	if b := p.Backoff; b != nil {
		d = parseArgoDuration(b.Duration, d)
		max = parseArgoDuration(b.MaxDuration, max)
		if b.Factor != nil {
			factor = *b.Factor
		}
	}
	for i := int64(0); i < n && d < max; i++ {
		d *= time.Duration(max64(factor, 1))
	}
	return min(d, max), true
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// parseArgoDuration reads a duration as Argo CD does: "30s", "2m", or a
// plain number of seconds.
func parseArgoDuration(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second
	}
	return def
}

// validate names a backoff Argo CD could not read either.
func (p *RetryPolicy) validate() error {
	if p == nil || p.Backoff == nil {
		return nil
	}
	for field, v := range map[string]string{"duration": p.Backoff.Duration, "maxDuration": p.Backoff.MaxDuration} {
		if v == "" {
			continue
		}
		if _, err := time.ParseDuration(v); err != nil {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("spec.syncPolicy.retry.backoff.%s %q: not a duration (such as 5s or 3m)", field, v)
			}
		}
	}
	return nil
}

// Automated turns on syncing without a person asking.
type Automated struct {
	Prune      bool `json:"prune"`
	SelfHeal   bool `json:"selfHeal"`
	AllowEmpty bool `json:"allowEmpty"`
}

// ParseApplication reads an Application from its unstructured form; it
// does not validate it (Validate).
func ParseApplication(u *unstructured.Unstructured) (*Application, error) {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	app := &Application{Name: u.GetName(), Namespace: u.GetNamespace(), SpecHash: specHash(spec)}
	app.rawSpec = spec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &app.Spec); err != nil {
		return app, fmt.Errorf("reading spec: %w", err)
	}
	return app, nil
}

// specHash identifies a spec by its content (encoding/json sorts map keys).
func specHash(spec map[string]any) string {
	data, _ := json.Marshal(spec)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// SourceList is the Application's sources: spec.sources, or spec.source
// alone.
func (a *Application) SourceList() []Source {
	if len(a.Spec.Sources) > 0 {
		return a.Spec.Sources
	}
	if a.Spec.Source == nil {
		return nil
	}
	return []Source{*a.Spec.Source}
}

// Rendered reports whether a source is built into objects: not when it
// only lends its files (ref set, no path).
func (s Source) Rendered() bool { return s.Ref == "" || s.Path != "" }

// BuildOptions are how the build stage renders the Application's source:
// directory.recurse, and a Helm chart with Argo CD's defaults (the release
// named after the Application, in its destination namespace, Fjord's
// Kubernetes version in .Capabilities).
func (a *Application) BuildOptions() build.Options {
	return a.BuildOptionsFor(a.Spec.Source, nil)
}

// BuildOptionsFor are BuildOptions for one source; refs maps the ref names
// of the Application's sources to their checkouts, for $ref/ value files.
func (a *Application) BuildOptionsFor(src *Source, refs map[string]string) build.Options {
	var opts build.Options
	if src == nil {
		return opts
	}
	if src.Directory != nil {
		opts.Recurse = src.Directory.Recurse
	}
	if k := src.Kustomize; k != nil {
		opts.Kustomize, _ = k.options() // validate reported its error
	}
	// A chart found at the path without spec.source.helm is rendered with
	// the same defaults, as in Argo CD.
	ho := &build.HelmOptions{ReleaseName: a.Name, Namespace: a.Spec.Destination.Namespace, KubeVersion: kubeVersion(), Refs: refs}
	if h := src.Helm; h != nil {
		opts.HelmSource = true
		ho.ReleaseName = orDefault(h.ReleaseName, a.Name)
		ho.ValueFiles, ho.IgnoreMissingValueFiles = h.ValueFiles, h.IgnoreMissingValueFiles
		ho.Values, ho.ValuesObject, ho.SkipCrds = h.Values, h.ValuesObject, h.SkipCrds
		ho.KubeVersion, ho.APIVersions = orDefault(h.KubeVersion, ho.KubeVersion), h.APIVersions
		for _, p := range h.Parameters {
			ho.Parameters = append(ho.Parameters, build.HelmParameter{Name: p.Name, Value: p.Value, ForceString: p.ForceString})
		}
	}
	opts.Helm = ho
	return opts
}

// options are the build stage's form of the kustomize options.
func (k *Kustomize) options() (*build.KustomizeOptions, error) {
	o := &build.KustomizeOptions{Images: k.Images, NamePrefix: k.NamePrefix, NameSuffix: k.NameSuffix,
		CommonLabels: k.CommonLabels, ForceCommonLabels: k.ForceCommonLabels,
		CommonAnnotations: k.CommonAnnotations, ForceCommonAnnotations: k.ForceCommonAnnotations, Namespace: k.Namespace}
	for _, r := range k.Replicas {
		n := int64(r.Count.IntValue())
		if r.Count.Type == intstr.String {
			v, err := strconv.ParseInt(r.Count.StrVal, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("spec.source.kustomize.replicas: %s: count %q is not a number", r.Name, r.Count.StrVal)
			}
			n = v
		}
		o.Replicas = append(o.Replicas, types.Replica{Name: r.Name, Count: n})
	}
	for _, p := range k.Patches {
		tp := types.Patch{Path: p.Path, Patch: p.Patch}
		if t := p.Target; t != nil {
			tp.Target = &types.Selector{ResId: resid.ResId{Gvk: resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind}, Name: t.Name, Namespace: t.Namespace},
				LabelSelector: t.LabelSelector, AnnotationSelector: t.AnnotationSelector}
		}
		if len(p.Options) > 0 {
			tp.Options = &types.PatchArgs{AllowNameChange: p.Options["allowNameChange"], AllowKindChange: p.Options["allowKindChange"]}
		}
		o.Patches = append(o.Patches, tp)
	}
	return o, nil
}

// kubeVersion is the Kubernetes version charts see in .Capabilities: the
// one this binary embeds (set at link time), or helm's default in a test
// binary.
func kubeVersion() string {
	v := version.Get().GitVersion
	if !strings.HasPrefix(v, "v1.") {
		return ""
	}
	return v
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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

// syncOptions are the sync options Fjord acts on, with the values it
// accepts. ServerSideApply, ApplyOutOfSyncOnly and Validate are accepted
// either way: Fjord always applies server-side, writes only what the dry
// run found changed, and lets the API server validate as it does for any
// server-side apply.
var syncOptions = map[string][]string{
	"CreateNamespace": {"true", "false"}, "PruneLast": {"true", "false"},
	"ServerSideApply": {"true", "false"}, "ApplyOutOfSyncOnly": {"true", "false"},
	"Validate": {"true", "false"}, "RespectIgnoreDifferences": {"true", "false"},
	"Replace": {"true", "false"}, "SkipDryRunOnMissingResource": {"true", "false"},
	"Prune": {"true", "false"},
}

// checkSyncOption refuses a sync option Fjord does not act on, by name.
func checkSyncOption(o string) error {
	k, v, _ := strings.Cut(o, "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	for name, values := range syncOptions {
		if strings.EqualFold(name, k) {
			for _, ok := range values {
				if strings.EqualFold(ok, v) {
					return nil
				}
			}
			return fmt.Errorf("%s: the value must be one of %s", o, strings.Join(values, ", "))
		}
	}
	return fmt.Errorf("%s: Fjord does not act on this sync option", o)
}

// Validate returns why Fjord cannot sync the Application, or nil: each
// problem names the field.
func (a *Application) Validate() error {
	var errs []error
	d := a.Spec.Destination
	switch {
	case d.Server == "" && d.Name == "":
		errs = append(errs, errors.New("spec.destination: set server: "+InClusterServer+" (or name: in-cluster)"))
	case d.Server != "" && strings.TrimSuffix(d.Server, "/") != InClusterServer:
		errs = append(errs, fmt.Errorf("spec.destination.server %q: Fjord syncs only to the local cluster (%s)", d.Server, InClusterServer))
	case d.Server == "" && d.Name != "in-cluster":
		errs = append(errs, fmt.Errorf("spec.destination.name %q: Fjord syncs only to the local cluster (in-cluster)", d.Name))
	}
	switch {
	case len(a.Spec.Sources) > 0:
		refs := map[string]bool{}
		for i, s := range a.Spec.Sources {
			if s.RepoURL == "" {
				errs = append(errs, fmt.Errorf("spec.sources[%d].repoURL: required", i))
			}
			if s.Ref != "" && refs[s.Ref] {
				errs = append(errs, fmt.Errorf("spec.sources[%d].ref %q: another source has this ref", i, s.Ref))
			}
			refs[s.Ref] = true
		}
	case a.Spec.Source == nil || a.Spec.Source.RepoURL == "":
		errs = append(errs, errors.New("spec.source.repoURL: required (or spec.sources)"))
	}
	errs = append(errs, unsupportedFields(a.rawSpec)...)
	for i, d := range a.Spec.IgnoreDifferences {
		errs = append(errs, d.validate(i)...)
	}
	if a.Spec.SyncPolicy != nil {
		if err := a.Spec.SyncPolicy.Retry.validate(); err != nil {
			errs = append(errs, err)
		}
		for _, o := range a.Spec.SyncPolicy.SyncOptions {
			if err := checkSyncOption(o); err != nil {
				errs = append(errs, fmt.Errorf("spec.syncPolicy.syncOptions: %w", err))
			}
		}
	}
	for _, s := range a.SourceList() {
		if s.Kustomize != nil {
			if _, err := s.Kustomize.options(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// supportedFields are the parts of Argo CD's Application spec Fjord acts on,
// by path; true means every field below is supported too. A field set
// anywhere else is refused by name, so that nothing is silently half-synced.
var supportedFields = map[string]bool{
	"project": true, "destination": true, "info": true, "revisionHistoryLimit": true, "ignoreDifferences": true,
	"source": false, "source.repoURL": true, "source.targetRevision": true, "source.path": true, "source.ref": true,
	"source.directory": false, "source.directory.recurse": true,
	"source.helm": false, "source.helm.releaseName": true, "source.helm.valueFiles": true,
	"source.helm.ignoreMissingValueFiles": true, "source.helm.values": true, "source.helm.valuesObject": true,
	"source.helm.parameters": true, "source.helm.skipCrds": true, "source.helm.kubeVersion": true,
	"source.helm.apiVersions": true,
	"source.kustomize":        false, "source.kustomize.images": true, "source.kustomize.namePrefix": true,
	"source.kustomize.nameSuffix": true, "source.kustomize.commonLabels": true, "source.kustomize.forceCommonLabels": true,
	"source.kustomize.commonAnnotations": true, "source.kustomize.forceCommonAnnotations": true,
	"source.kustomize.namespace": true, "source.kustomize.replicas": true, "source.kustomize.patches": true,
	"syncPolicy": false, "syncPolicy.automated": true, "syncPolicy.syncOptions": true,
	"syncPolicy.retry": false, "syncPolicy.retry.limit": true, "syncPolicy.retry.backoff": false,
	"syncPolicy.retry.backoff.duration": true, "syncPolicy.retry.backoff.factor": true, "syncPolicy.retry.backoff.maxDuration": true,
}

// unsupportedHint says what to do instead of a field Fjord does not act on.
var unsupportedHint = map[string]string{
	"source.chart":             "charts from a Helm repository cannot be fetched (no repository is reachable): commit the chart to Git and point path at it",
	"source.plugin":            "config management plugins are not supported",
	"source.kustomize":         "kustomize options on the Application are not supported yet: put them in the kustomization.yaml",
	"source.directory.jsonnet": "Jsonnet is not supported",
}

// unsupportedFields names every field of spec, set to something other than
// its zero value, that Fjord does not act on. Each of spec.sources is held
// to what spec.source supports.
func unsupportedFields(spec map[string]any) []error {
	var errs []error
	// walk checks m, whose fields are known as known+key and named in
	// errors as shown+key.
	var walk func(known, shown string, m map[string]any)
	walk = func(known, shown string, m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, p := m[k], known+k
			if isZero(v) {
				continue
			}
			if p == "sources" {
				list, _ := v.([]any)
				for i, el := range list {
					if sub, ok := el.(map[string]any); ok {
						walk("source.", fmt.Sprintf("sources[%d].", i), sub)
					}
				}
				continue
			}
			all, known := supportedFields[p]
			switch {
			case known && all:
			case known:
				if sub, ok := v.(map[string]any); ok {
					walk(p+".", shown+k+".", sub)
				}
			default:
				hint := unsupportedHint[p]
				if hint == "" {
					hint = "Fjord does not support this field of an Argo CD Application"
				}
				errs = append(errs, fmt.Errorf("spec.%s%s: %s", shown, k, hint))
			}
		}
	}
	walk("", "", spec)
	return errs
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case map[string]any:
		for _, x := range v {
			if !isZero(x) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}
