package sealcompat

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	ssv1alpha1 "github.com/bitnami/sealed-secrets/pkg/apis/sealedsecrets/v1alpha1"
	"github.com/bitnami/sealed-secrets/pkg/crypto"
	"github.com/fjord-dev/fjord/appliance/sealing"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// compatKeys are two Fjord keys, made once per test binary: 2048 bits keep
// the tests fast, and the format does not depend on the size.
var compatKeys = sync.OnceValues(func() ([2]*sealing.Key, error) {
	var keys [2]*sealing.Key
	for i := range keys {
		k, err := sealing.GenerateKey(2048, 24*time.Hour, "sealed-secret")
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// fjordKeys returns the key things are sealed with and another one, which
// must never open them.
func fjordKeys(t *testing.T) (sealWith, other *sealing.Key) {
	t.Helper()
	keys, err := compatKeys()
	if err != nil {
		t.Fatalf("generating keys: %v", err)
	}
	return keys[0], keys[1]
}

// upstreamKeys is the key map upstream's Unseal and HybridDecrypt take,
// by fingerprint as upstream's key registry builds it.
func upstreamKeys(t *testing.T, keys ...*sealing.Key) map[string]*rsa.PrivateKey {
	t.Helper()
	m := map[string]*rsa.PrivateKey{}
	for _, k := range keys {
		fp, err := crypto.PublicKeyFingerprint(&k.Private.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		m[fp] = k.Private
	}
	return m
}

// privateKeys is the key list Fjord's Unseal takes.
func privateKeys(keys ...*sealing.Key) []*rsa.PrivateKey {
	out := make([]*rsa.PrivateKey, len(keys))
	for i, k := range keys {
		out[i] = k.Private
	}
	return out
}

// scopes pairs each Fjord scope with upstream's and the annotations that
// ask for it on a Secret.
var scopes = []struct {
	fjord       sealing.Scope
	upstream    ssv1alpha1.SealingScope
	annotations map[string]string
}{
	{sealing.Strict, ssv1alpha1.StrictScope, nil},
	{sealing.NamespaceWide, ssv1alpha1.NamespaceWideScope, map[string]string{ssv1alpha1.SealedSecretNamespaceWideAnnotation: "true"}},
	{sealing.ClusterWide, ssv1alpha1.ClusterWideScope, map[string]string{ssv1alpha1.SealedSecretClusterWideAnnotation: "true"}},
}

// shopSecret is the Secret most tests seal: metadata worth keeping, a
// binary value, an empty one and a stringData one.
func shopSecret(extraAnnotations map[string]string) *corev1.Secret {
	ann := map[string]string{"team": "payments"}
	maps.Copy(ann, extraAnnotations)
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop",
			Labels:      map[string]string{"app": "shop"},
			Annotations: ann,
		},
		Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{
			"username": []byte("admin"),
			"password": []byte("s3cr3t-p@ss"),
			"blob":     {0x00, 0xff, 0x10, 0x80},
			"empty":    {},
		},
		StringData: map[string]string{"note": "two\nlines"},
	}
}

// shopTemplates are spec.template.data entries: a template over sealed
// and literal values, a literal, and a null that drops a sealed key.
func shopTemplates() map[string]*string {
	s := func(v string) *string { return &v }
	return map[string]*string{
		"dsn":    s("postgres://{{ .username }}:{{ .password | urlquery }}@db:5432/{{ .dbname }}"),
		"dbname": s("orders"),
		"shout":  s("{{ .username | upper }}"),
		"note":   nil,
	}
}

// encodeUpstream writes obj the way kubeseal prints it (-o yaml, minus
// the leading "---").
func encodeUpstream(t *testing.T, obj runtime.Object, gv schema.GroupVersion) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	if !ok {
		t.Fatal("no YAML serializer")
	}
	b, err := runtime.Encode(scheme.Codecs.EncoderForVersion(info.Serializer, gv), obj)
	if err != nil {
		t.Fatalf("encoding %T: %v", obj, err)
	}
	return b
}

// decodeUpstream reads a SealedSecret as kubeseal --recovery-unseal does.
func decodeUpstream(t *testing.T, b []byte) *ssv1alpha1.SealedSecret {
	t.Helper()
	var ss ssv1alpha1.SealedSecret
	if err := runtime.DecodeInto(scheme.Codecs.UniversalDecoder(), b, &ss); err != nil {
		t.Fatalf("upstream decoding a SealedSecret: %v\n%s", err, b)
	}
	return &ss
}

// decodeFjord reads a SealedSecret as Fjord's GitOps pipeline does: YAML
// into the typed struct.
func decodeFjord(t *testing.T, b []byte) *sealing.SealedSecret {
	t.Helper()
	var ss sealing.SealedSecret
	if err := yaml.UnmarshalStrict(b, &ss); err != nil {
		t.Fatalf("decoding a SealedSecret: %v\n%s", err, b)
	}
	return &ss
}

// upstreamSeal seals secret with upstream's library, as kubeseal does, and
// returns the YAML.
func upstreamSeal(t *testing.T, pub *rsa.PublicKey, secret *corev1.Secret, templates map[string]*string) []byte {
	t.Helper()
	ss, err := ssv1alpha1.NewSealedSecret(scheme.Codecs, pub, secret.DeepCopy())
	if err != nil {
		t.Fatalf("upstream sealing: %v", err)
	}
	ss.Spec.Template.Data = templates
	return encodeUpstream(t, ss, ssv1alpha1.SchemeGroupVersion)
}

// withV1Data turns upstream's deprecated spec.data support on for one test.
func withV1Data(t *testing.T) {
	saved := ssv1alpha1.AcceptDeprecatedV1Data
	ssv1alpha1.AcceptDeprecatedV1Data = true
	t.Cleanup(func() { ssv1alpha1.AcceptDeprecatedV1Data = saved })
}

// localNamespace is the kubeseal.ClientConfig of a machine without a
// cluster: the Secret's namespace is the only one it knows.
type localNamespace string

func (localNamespace) ClientConfig() (*rest.Config, error) {
	return nil, errors.New("no cluster: seal with a certificate")
}

func (n localNamespace) Namespace() (string, bool, error) { return string(n), false, nil }

// secretYAML is secret as a user would give it to kubeseal.
func secretYAML(t *testing.T, secret *corev1.Secret) []byte {
	t.Helper()
	b, err := yaml.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dataDiff lists the keys whose values differ between two Secrets' data.
func dataDiff(got, want map[string][]byte) error {
	var errs []error
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("key %q is missing", k))
		case string(g) != string(w):
			errs = append(errs, fmt.Errorf("key %q = %q, want %q", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			errs = append(errs, fmt.Errorf("key %q is extra", k))
		}
	}
	return errors.Join(errs...)
}
