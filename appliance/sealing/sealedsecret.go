package sealing

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// The SealedSecret API, as upstream serves it.
const (
	Group    = "bitnami.com"
	Version  = "v1alpha1"
	Kind     = "SealedSecret"
	Resource = "sealedsecrets"
)

// GVR and GVK of SealedSecret.
var (
	GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}
	GVK = schema.GroupVersionKind{Group: Group, Version: Version, Kind: Kind}
)

// SealedSecret is bitnami.com/v1alpha1 SealedSecret, field for field.
type SealedSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              Spec    `json:"spec"`
	Status            *Status `json:"status,omitempty"`
}

// Spec is a SealedSecret's spec.
type Spec struct {
	// Template is the Secret to create, minus its data.
	Template Template `json:"template,omitempty"`
	// Data is the deprecated v1 form: one ciphertext of a whole JSON Secret.
	Data []byte `json:"data,omitempty"`
	// EncryptedData holds one base64 ciphertext per key.
	EncryptedData map[string]string `json:"encryptedData"`
}

// Template is the shape of the Secret a SealedSecret unseals into. Its
// data values are Go templates over the decrypted values (with sprig);
// a null value drops that key from the Secret.
type Template struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Type              corev1.SecretType  `json:"type,omitempty"`
	Immutable         *bool              `json:"immutable,omitempty"`
	Data              map[string]*string `json:"data,omitempty"`
}

// Status is a SealedSecret's status.
type Status struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
}

// Condition is a SealedSecret condition; upstream sets only Synced.
type Condition struct {
	Type               string                 `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	LastUpdateTime     metav1.Time            `json:"lastUpdateTime,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
}

// Scope is the scope a SealedSecret was sealed with, from its annotations.
func (s *SealedSecret) Scope() Scope { return ScopeOf(s.Annotations) }

// Seal makes the SealedSecret kubeseal makes for secret: each value of
// data and stringData sealed on its own, the rest of the Secret kept in
// the template. scope overrides the Secret's scope annotations unless it
// is Strict.
func Seal(rnd io.Reader, pub *rsa.PublicKey, secret *corev1.Secret, scope Scope) (*SealedSecret, error) {
	secret = secret.DeepCopy()
	if scope != Strict {
		secret.Annotations = scope.annotate(secret.Annotations)
	}
	scope = ScopeOf(secret.Annotations)
	if secret.Name == "" && scope != ClusterWide {
		return nil, errors.New("the Secret has no metadata.name")
	}
	if secret.Namespace == "" && scope != ClusterWide {
		return nil, errors.New("the Secret must declare a namespace (or be sealed cluster-wide)")
	}
	// Server-side fields have no place in Git.
	secret.UID, secret.ResourceVersion, secret.Generation = "", "", 0
	secret.SelfLink, secret.CreationTimestamp = "", metav1.Time{}
	secret.DeletionTimestamp, secret.DeletionGracePeriodSeconds = nil, nil
	secret.OwnerReferences, secret.ManagedFields = nil, nil
	if secret.Annotations != nil {
		delete(secret.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
		delete(secret.Annotations, "kubecfg.ksonnet.io/last-applied-configuration")
	}
	out := &SealedSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: GVK.GroupVersion().String(), Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{Name: secret.Name, Namespace: secret.Namespace, Annotations: scope.annotate(nil)},
		Spec: Spec{
			Template:      Template{ObjectMeta: secret.ObjectMeta, Type: secret.Type, Immutable: secret.Immutable},
			EncryptedData: map[string]string{},
		},
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	label := Label(scope, secret.Namespace, secret.Name)
	put := func(k string, v []byte) error {
		c, err := Encrypt(rnd, pub, v, label)
		if err != nil {
			return fmt.Errorf("sealing key %q: %w", k, err)
		}
		out.Spec.EncryptedData[k] = base64.StdEncoding.EncodeToString(c)
		return nil
	}
	for k, v := range secret.Data {
		if err := put(k, v); err != nil {
			return nil, err
		}
	}
	for k, v := range secret.StringData {
		if err := put(k, []byte(v)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SealValue seals one value, as `kubeseal --raw` does, and returns it in
// base64.
func SealValue(rnd io.Reader, pub *rsa.PublicKey, value []byte, scope Scope, namespace, name string) (string, error) {
	if scope != ClusterWide && namespace == "" {
		return "", errors.New("a namespace is required unless the scope is cluster-wide")
	}
	if scope == Strict && name == "" {
		return "", errors.New("a name is required for the strict scope")
	}
	c, err := Encrypt(rnd, pub, value, Label(scope, namespace, name))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(c), nil
}

// keyErrors collects one problem per key, in key order.
type keyErrors map[string]string

func (e keyErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("key %q: %s", k, e[k]))
	}
	return errors.New(strings.Join(parts, "; "))
}

// AcceptV1Data turns on the deprecated spec.data form. Upstream keeps it
// behind a flag; Fjord accepts it unless told not to.
var AcceptV1Data = true

// Unseal decrypts s with any of keys into the Secret it stands for, owned
// by s unless its template says otherwise. The error names the keys that
// failed and why, and never holds a decrypted value.
func Unseal(s *SealedSecret, keys []*rsa.PrivateKey) (*corev1.Secret, error) {
	return unseal(s, keys, true)
}

// Verify reports whether every value of s decrypts, without rendering
// the template (so an unauthenticated caller cannot use it as an oracle).
func Verify(s *SealedSecret, keys []*rsa.PrivateKey) error {
	_, err := unseal(s, keys, false)
	return err
}

func unseal(s *SealedSecret, keys []*rsa.PrivateKey, render bool) (*corev1.Secret, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sealing keys loaded")
	}
	label := Label(s.Scope(), s.Namespace, s.Name)
	secret := &corev1.Secret{}
	switch {
	case s.Spec.Data != nil:
		if !AcceptV1Data {
			return nil, errors.New("spec.data is the deprecated v1 form, which is turned off; reseal with kubeseal into encryptedData")
		}
		if len(s.Spec.EncryptedData) > 0 {
			return nil, errors.New("spec.data (deprecated) and spec.encryptedData cannot both be set")
		}
		plain, err := Decrypt(keys, s.Spec.Data, label)
		if err != nil {
			return nil, fmt.Errorf("spec.data: %w", err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(plain, nil, secret)
		if err != nil {
			return nil, errors.New("spec.data: the decrypted content is not a Secret")
		}
		var ok bool
		if secret, ok = obj.(*corev1.Secret); !ok {
			return nil, errors.New("spec.data: the decrypted content is not a Secret")
		}
		secret.TypeMeta = metav1.TypeMeta{}
	default:
		if len(s.Spec.EncryptedData) == 0 && len(s.Spec.Template.Data) == 0 {
			return nil, errors.New("spec.encryptedData is empty: nothing to unseal")
		}
		s.Spec.Template.ObjectMeta.DeepCopyInto(&secret.ObjectMeta)
		secret.Type, secret.Immutable = s.Spec.Template.Type, s.Spec.Template.Immutable
		secret.Data = map[string][]byte{}
		problems := keyErrors{}
		values := map[string]string{}
		for k, v := range s.Spec.EncryptedData {
			c, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				problems[k] = "not valid base64: " + err.Error()
				continue
			}
			plain, err := Decrypt(keys, c, label)
			if err != nil {
				problems[k] = err.Error()
				continue
			}
			secret.Data[k] = plain
			values[k] = string(plain)
		}
		if render {
			renderTemplate(s, secret, values, problems)
		}
		if err := problems.err(); err != nil {
			return nil, err
		}
	}
	secret.Namespace, secret.Name = s.Namespace, s.Name
	secret.ResourceVersion, secret.UID = "", ""
	secret.OwnerReferences = nil
	if s.Spec.Template.Annotations[SkipOwnerAnnotation] != "true" {
		yes := true
		secret.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: GVK.GroupVersion().String(), Kind: Kind,
			Name: s.Name, UID: s.UID, Controller: &yes,
		}}
	}
	return secret, nil
}

// funcs are sprig's functions without those that reach outside the
// template (environment, DNS), as upstream allows.
var funcs = func() template.FuncMap {
	m := sprig.GenericFuncMap()
	for _, f := range []string{"env", "expandenv", "getHostByName"} {
		delete(m, f)
	}
	return m
}()

// renderTemplate fills secret.Data from spec.template.data. A template
// sees every decrypted value and every literal template value by key.
func renderTemplate(s *SealedSecret, secret *corev1.Secret, values map[string]string, problems keyErrors) {
	data := make(map[string]string, len(values)+len(s.Spec.Template.Data))
	for k, v := range values {
		data[k] = v
	}
	for k, v := range s.Spec.Template.Data {
		if _, ok := data[k]; !ok && v != nil {
			data[k] = *v
		}
	}
	for k, v := range s.Spec.Template.Data {
		if v == nil {
			delete(secret.Data, k)
			continue
		}
		t, err := template.New(k).Funcs(funcs).Option("missingkey=default").Parse(*v)
		if err != nil {
			// The template text is in Git in the clear: its error is safe.
			// text/template's errors already begin with "template: ".
			problems[k] = err.Error()
			continue
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			problems[k] = execError(err)
			continue
		}
		if _, sealed := s.Spec.EncryptedData[k]; !sealed {
			secret.Data[k] = b.Bytes()
		}
	}
}

// execError keeps where a template failed and drops why: the reason of an
// execution error (a failed conversion, say) can quote a decrypted value.
func execError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ">: "); i >= 0 {
		msg = msg[:i+1]
	} else if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[:i]
	}
	return msg + ": failed to render (the reason is withheld: it may quote a secret value)"
}

// ToUnstructured converts s for the dynamic client.
func (s *SealedSecret) ToUnstructured() (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(s)
}

// FromUnstructured reads a SealedSecret from the dynamic client's form.
func FromUnstructured(obj map[string]any) (*SealedSecret, error) {
	s := &SealedSecret{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, s); err != nil {
		return nil, fmt.Errorf("not a valid SealedSecret: %w", err)
	}
	return s, nil
}
