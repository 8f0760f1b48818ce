package sealing

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// plaintext is the secret value most tests seal; no error may quote it.
const plaintext = "s3cr3t-v@lue"

func strptr(s string) *string { return &s }

// dbSecret is the Secret the round trips seal.
func dbSecret(annotations map[string]string) *corev1.Secret {
	immutable := true
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop",
			Labels:      map[string]string{"app": "shop"},
			Annotations: annotations,
		},
		Type:       corev1.SecretTypeBasicAuth,
		Immutable:  &immutable,
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte(plaintext)},
		StringData: map[string]string{"note": "two\nlines"},
	}
}

// sealValues seals values for namespace/name under scope, annotated as
// scope, the way a SealedSecret in Git carries them.
func sealValues(t *testing.T, k *Key, scope Scope, namespace, name string, values map[string]string) *SealedSecret {
	t.Helper()
	ss := &SealedSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "bitnami.com/v1alpha1", Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("ss-uid"), Annotations: scope.annotate(nil)},
		Spec:       Spec{EncryptedData: map[string]string{}},
	}
	for k2, v := range values {
		c, err := SealValue(rand.Reader, &k.Private.PublicKey, []byte(v), scope, namespace, name)
		if err != nil {
			t.Fatal(err)
		}
		ss.Spec.EncryptedData[k2] = c
	}
	return ss
}

// flipByte flips one bit of the i-th byte of a base64 ciphertext; a
// negative i counts from the end.
func flipByte(t *testing.T, b64 string, i int) string {
	t.Helper()
	c, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x01
	return base64.StdEncoding.EncodeToString(c)
}

func TestSealUnsealRoundTrip(t *testing.T) {
	keys := sealingKeys(t)
	for _, tt := range []struct {
		name        string
		annotations map[string]string
		scope       Scope
		want        Scope
	}{
		{"strict by default", nil, Strict, Strict},
		{"namespace-wide from the argument", nil, NamespaceWide, NamespaceWide},
		{"cluster-wide from the argument", nil, ClusterWide, ClusterWide},
		{"namespace-wide from the Secret's annotation", map[string]string{NamespaceWideAnnotation: "true"}, Strict, NamespaceWide},
		{"cluster-wide from the Secret's annotation", map[string]string{ClusterWideAnnotation: "true"}, Strict, ClusterWide},
		{"the argument overrides the annotation", map[string]string{NamespaceWideAnnotation: "true"}, ClusterWide, ClusterWide},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := dbSecret(tt.annotations)
			before := in.DeepCopy()
			ss, err := Seal(rand.Reader, &keys[0].Private.PublicKey, in, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, before) {
				t.Error("Seal changed its input")
			}
			if ss.Scope() != tt.want || ss.APIVersion != "bitnami.com/v1alpha1" || ss.Kind != Kind {
				t.Errorf("sealed %s as %s/%s, want scope %s", ss.Scope(), ss.APIVersion, ss.Kind, tt.want)
			}
			if got := ScopeOf(ss.Spec.Template.Annotations); got != tt.want {
				t.Errorf("the template says %s", got)
			}
			for k, v := range ss.Spec.EncryptedData {
				if strings.Contains(v, plaintext) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte(plaintext))) {
					t.Errorf("key %q is in the clear", k)
				}
			}
			ss.UID = "ss-uid"
			got, err := Unseal(ss, []*rsa.PrivateKey{keys[1].Private, keys[0].Private})
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			want := map[string][]byte{"username": []byte("admin"), "password": []byte(plaintext), "note": []byte("two\nlines")}
			if !reflect.DeepEqual(got.Data, want) || got.StringData != nil {
				t.Errorf("data %q, stringData %q", got.Data, got.StringData)
			}
			if got.Namespace != "shop" || got.Name != "db" || got.Type != corev1.SecretTypeBasicAuth ||
				got.Immutable == nil || !*got.Immutable || got.Labels["app"] != "shop" {
				t.Errorf("the template's fields are lost: %+v", got.ObjectMeta)
			}
			yes := true
			wantOwner := []metav1.OwnerReference{{APIVersion: "bitnami.com/v1alpha1", Kind: Kind, Name: "db", UID: "ss-uid", Controller: &yes}}
			if !reflect.DeepEqual(got.OwnerReferences, wantOwner) {
				t.Errorf("owner references %+v", got.OwnerReferences)
			}
			if err := Verify(ss, []*rsa.PrivateKey{keys[0].Private}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestSealKeepsServerFieldsOut(t *testing.T) {
	keys := sealingKeys(t)
	in := dbSecret(map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"czNjcjN0"}}`,
		"kubecfg.ksonnet.io/last-applied-configuration":    `{"data":{"password":"czNjcjN0"}}`,
		"keep": "me",
	})
	in.UID, in.ResourceVersion, in.Generation, in.SelfLink = "uid", "42", 3, "/api/v1/x"
	in.CreationTimestamp = metav1.Now()
	in.OwnerReferences = []metav1.OwnerReference{{Name: "someone"}}
	in.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	ss, err := Seal(rand.Reader, &keys[0].Private.PublicKey, in, Strict)
	if err != nil {
		t.Fatal(err)
	}
	m := ss.Spec.Template.ObjectMeta
	if m.UID != "" || m.ResourceVersion != "" || m.Generation != 0 || m.SelfLink != "" || !m.CreationTimestamp.IsZero() ||
		m.OwnerReferences != nil || m.ManagedFields != nil {
		t.Errorf("server-side fields in the template: %+v", m)
	}
	if want := map[string]string{"keep": "me"}; !maps.Equal(m.Annotations, want) {
		t.Errorf("template annotations %v, want %v", m.Annotations, want)
	}
	if ss.Annotations != nil {
		t.Errorf("a strict SealedSecret has annotations %v", ss.Annotations)
	}
}

func TestSealRejects(t *testing.T) {
	keys := sealingKeys(t)
	pub := &keys[0].Private.PublicKey
	for _, tt := range []struct {
		name  string
		edit  func(*corev1.Secret)
		scope Scope
		ok    bool
	}{
		{"a Secret without a name", func(s *corev1.Secret) { s.Name = "" }, Strict, false},
		{"a namespace-wide Secret without a name", func(s *corev1.Secret) { s.Name = "" }, NamespaceWide, false},
		{"a Secret without a namespace", func(s *corev1.Secret) { s.Namespace = "" }, Strict, false},
		{"a cluster-wide Secret without a namespace or name is fine", func(s *corev1.Secret) { s.Namespace, s.Name = "", "" }, ClusterWide, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := dbSecret(nil)
			tt.edit(in)
			_, err := Seal(rand.Reader, pub, in, tt.scope)
			if (err == nil) != tt.ok {
				t.Errorf("Seal: %v", err)
			}
		})
	}
	for _, tt := range []struct {
		scope           Scope
		namespace, name string
	}{
		{Strict, "shop", ""},
		{Strict, "", "db"},
		{NamespaceWide, "", "db"},
	} {
		if _, err := SealValue(rand.Reader, pub, []byte("v"), tt.scope, tt.namespace, tt.name); err == nil {
			t.Errorf("SealValue(%s, %q, %q) accepted it", tt.scope, tt.namespace, tt.name)
		}
	}
	if _, err := SealValue(rand.Reader, pub, []byte("v"), ClusterWide, "", ""); err != nil {
		t.Errorf("SealValue cluster-wide without a place: %v", err)
	}
}

func TestUnsealRejects(t *testing.T) {
	keys := sealingKeys(t)
	mine := []*rsa.PrivateKey{keys[0].Private}
	strict := func(t *testing.T) *SealedSecret {
		return sealValues(t, keys[0], Strict, "shop", "db", map[string]string{"password": plaintext})
	}
	v1 := func(t *testing.T, plain []byte) *SealedSecret {
		c, err := Encrypt(rand.Reader, &keys[0].Private.PublicKey, plain, Label(Strict, "shop", "db"))
		if err != nil {
			t.Fatal(err)
		}
		return &SealedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: Spec{Data: c}}
	}
	tests := []struct {
		name  string
		make  func(t *testing.T) *SealedSecret
		keys  []*rsa.PrivateKey
		v1Off bool
		want  string
	}{
		{"a value sealed for another key", strict, []*rsa.PrivateKey{keys[1].Private, keys[2].Private}, false,
			`key "password": no key could decrypt secret`},
		{"no keys loaded", strict, nil, false, "no sealing keys loaded"},
		{"a strict value moved to another namespace", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Namespace = "other"
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"a strict value under another name", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Name = "other"
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"a namespace-wide value moved to another namespace", func(t *testing.T) *SealedSecret {
			ss := sealValues(t, keys[0], NamespaceWide, "shop", "db", map[string]string{"password": plaintext})
			ss.Namespace = "other"
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"sealed namespace-wide but annotated cluster-wide", func(t *testing.T) *SealedSecret {
			ss := sealValues(t, keys[0], NamespaceWide, "shop", "db", map[string]string{"password": plaintext})
			ss.Annotations = ClusterWide.annotate(ss.Annotations)
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"sealed cluster-wide but annotated strict", func(t *testing.T) *SealedSecret {
			ss := sealValues(t, keys[0], ClusterWide, "shop", "db", map[string]string{"password": plaintext})
			ss.Annotations = nil
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"a scope annotation on the template only", func(t *testing.T) *SealedSecret {
			// The label comes from the SealedSecret's own annotations, as upstream's does.
			ss := sealValues(t, keys[0], ClusterWide, "shop", "db", map[string]string{"password": plaintext})
			ss.Spec.Template.Annotations, ss.Annotations = ss.Annotations, nil
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"a flipped byte in the RSA part", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.EncryptedData["password"] = flipByte(t, ss.Spec.EncryptedData["password"], 2+17)
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"a flipped byte in the GCM part", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.EncryptedData["password"] = flipByte(t, ss.Spec.EncryptedData["password"], -3)
			return ss
		}, mine, false, `key "password": no key could decrypt secret`},
		{"invalid base64", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.EncryptedData["password"] = "not base64!"
			return ss
		}, mine, false, `key "password": not valid base64`},
		{"a ciphertext too short for its header", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.EncryptedData["password"] = base64.StdEncoding.EncodeToString([]byte{1})
			return ss
		}, mine, false, `key "password": ciphertext too short`},
		{"every bad key is named, in order", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.EncryptedData["b"] = "!!"
			ss.Spec.EncryptedData["a"] = flipByte(t, ss.Spec.EncryptedData["password"], -1)
			return ss
		}, mine, false, `key "a": no key could decrypt secret; key "b": not valid base64`},
		{"a template that fails to parse", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.Template.Data = map[string]*string{"dsn": strptr("{{ .password ")}
			return ss
		}, mine, false, `key "dsn": template: dsn:1: unclosed action`},
		{"a template calling env, which is removed", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.Template.Data = map[string]*string{"home": strptr(`{{ env "HOME" }}`)}
			return ss
		}, mine, false, `key "home": template: home:1: function "env" not defined`},
		{"a template calling getHostByName, which is removed", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.Template.Data = map[string]*string{"ip": strptr(`{{ getHostByName "example.com" }}`)}
			return ss
		}, mine, false, `function "getHostByName" not defined`},
		// Upstream unseals this (kubeseal --allow-empty-data makes it) into
		// a Secret without data; Fjord refuses it.
		{"no encryptedData and no template data", func(t *testing.T) *SealedSecret {
			return sealValues(t, keys[0], Strict, "shop", "db", nil)
		}, mine, false, "spec.encryptedData is empty"},
		{"spec.data and encryptedData both set", func(t *testing.T) *SealedSecret {
			ss := strict(t)
			ss.Spec.Data = []byte{1, 2, 3}
			return ss
		}, mine, false, "spec.data (deprecated) and spec.encryptedData cannot both be set"},
		{"spec.data sealed for another key", func(t *testing.T) *SealedSecret {
			return v1(t, []byte(`{"apiVersion":"v1","kind":"Secret"}`))
		}, []*rsa.PrivateKey{keys[1].Private}, false, "spec.data: no key could decrypt secret"},
		{"spec.data that is not a Secret", func(t *testing.T) *SealedSecret {
			return v1(t, []byte(`{"apiVersion":"v1","kind":"ConfigMap","data":{"password":"`+plaintext+`"}}`))
		}, mine, false, "spec.data: the decrypted content is not a Secret"},
		{"spec.data that is not even JSON", func(t *testing.T) *SealedSecret {
			return v1(t, []byte(plaintext))
		}, mine, false, "spec.data: the decrypted content is not a Secret"},
		{"spec.data when the v1 form is turned off", func(t *testing.T) *SealedSecret {
			return v1(t, []byte(`{"apiVersion":"v1","kind":"Secret"}`))
		}, mine, true, "spec.data is the deprecated v1 form, which is turned off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setAcceptV1Data(t, !tt.v1Off)
			got, err := Unseal(tt.make(t), tt.keys)
			if err == nil {
				t.Fatalf("Unseal succeeded: %q", got.Data)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), plaintext) {
				t.Errorf("the error quotes the plaintext: %v", err)
			}
		})
	}
}

// setAcceptV1Data sets the package switch for one test.
func setAcceptV1Data(t *testing.T, on bool) {
	saved := AcceptV1Data
	AcceptV1Data = on
	t.Cleanup(func() { AcceptV1Data = saved })
}

// Some sprig functions put their input in their error; that input can be a
// decrypted value, and Unseal's error ends up in events and status.
func TestTemplateErrorsDoNotQuoteValues(t *testing.T) {
	keys := sealingKeys(t)
	// A leading "[" makes the value an invalid regexp too.
	const value = "[" + plaintext
	tests := []struct {
		name, template string
		leaksRaw       bool
	}{
		{"fail", `{{ fail .password }}`, true},
		{"mustRegexMatch", `{{ mustRegexMatch .password "x" }}`, true},
		{"mustRegexFind in a pipeline", `{{ "x" | mustRegexFind .password }}`, true},
		{"mustToDate", `{{ mustToDate "2006-01-02" .password }}`, true},
		{"mustDateModify", `{{ mustDateModify .password now }}`, true},
		{"semverCompare", `{{ semverCompare .password "1.0.0" }}`, true},
		{"fail inside a defined template", `{{ define "inner" }}{{ fail . }}{{ end }}{{ template "inner" .password }}`, true},
		{"div by a converted zero", `{{ .password | int | div 0 }}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rawTemplateError(t, tt.template, map[string]string{"password": value})
			if raw == nil {
				t.Fatal("the template does not fail")
			}
			if got := strings.Contains(raw.Error(), plaintext); got != tt.leaksRaw {
				t.Fatalf("text/template's own error quoting the value is %v, want %v (sprig changed?): %v", got, tt.leaksRaw, raw)
			}
			ss := sealValues(t, keys[0], Strict, "shop", "db", map[string]string{"password": value})
			ss.Spec.Template.Data = map[string]*string{"conn": strptr(tt.template)}
			got, err := Unseal(ss, []*rsa.PrivateKey{keys[0].Private})
			if err == nil {
				t.Fatalf("Unseal succeeded: %q", got.Data)
			}
			if strings.Contains(err.Error(), plaintext) {
				t.Errorf("the error quotes the decrypted value: %v", err)
			}
			if !strings.Contains(err.Error(), `key "conn": template: `) || !strings.Contains(err.Error(), "failed to render") {
				t.Errorf("the error should say which key failed where: %v", err)
			}
			if err := Verify(ss, []*rsa.PrivateKey{keys[0].Private}); err != nil {
				t.Errorf("Verify renders the template: %v", err)
			}
		})
	}
}

// rawTemplateError is what text/template and sprig alone report.
func rawTemplateError(t *testing.T, text string, data map[string]string) error {
	t.Helper()
	tmpl, err := template.New("conn").Funcs(sprig.GenericFuncMap()).Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl.Execute(&bytes.Buffer{}, data)
}

func TestUnsealTemplates(t *testing.T) {
	keys := sealingKeys(t)
	sealed := map[string]string{"username": "admin", "password": "p@ss"}
	tests := []struct {
		name      string
		templates map[string]*string
		sealed    map[string]string
		want      map[string]string
	}{
		{"a template sees sealed values and literals",
			map[string]*string{"dsn": strptr("pg://{{ .username }}:{{ .password | urlquery }}@{{ .host }}/app"), "host": strptr("db.shop")}, sealed,
			map[string]string{"username": "admin", "password": "p@ss", "host": "db.shop", "dsn": "pg://admin:p%40ss@db.shop/app"}},
		{"null drops a sealed key, which templates still see",
			map[string]*string{"password": nil, "auth": strptr(`{{ printf "%s:%s" .username .password | b64enc }}`)}, sealed,
			map[string]string{"username": "admin", "auth": "YWRtaW46cEBzcw=="}},
		{"a sealed value wins over a template of the same key",
			map[string]*string{"password": strptr("plain")}, sealed,
			map[string]string{"username": "admin", "password": "p@ss"}},
		{"a sealed value wins over a literal in what templates see",
			map[string]*string{"username": strptr("root"), "who": strptr("{{ .username }}")}, sealed,
			map[string]string{"username": "admin", "password": "p@ss", "who": "admin"}},
		{"a missing key renders as text/template's <no value>",
			map[string]*string{"x": strptr("[{{ .nope }}]")}, sealed,
			map[string]string{"username": "admin", "password": "p@ss", "x": "[<no value>]"}},
		{"templates without sealed values",
			map[string]*string{"config.yaml": strptr("level: {{ \"debug\" | upper }}")}, nil,
			map[string]string{"config.yaml": "level: DEBUG"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := sealValues(t, keys[0], Strict, "shop", "db", tt.sealed)
			ss.Spec.Template.Data = tt.templates
			got, err := Unseal(ss, []*rsa.PrivateKey{keys[0].Private})
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			gotStrings := map[string]string{}
			for k, v := range got.Data {
				gotStrings[k] = string(v)
			}
			if !maps.Equal(gotStrings, tt.want) {
				t.Errorf("data %q, want %q", gotStrings, tt.want)
			}
			if err := Verify(ss, []*rsa.PrivateKey{keys[0].Private}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestUnsealOwnerReference(t *testing.T) {
	keys := sealingKeys(t)
	yes := true
	owner := []metav1.OwnerReference{{APIVersion: "bitnami.com/v1alpha1", Kind: Kind, Name: "db", UID: "ss-uid", Controller: &yes}}
	tests := []struct {
		name     string
		template map[string]string
		object   map[string]string
		want     []metav1.OwnerReference
	}{
		{"the SealedSecret owns its Secret", nil, nil, owner},
		{"skip-set-owner-references in the template leaves it unowned", map[string]string{SkipOwnerAnnotation: "true"}, nil, nil},
		{"only \"true\" skips", map[string]string{SkipOwnerAnnotation: "false"}, nil, owner},
		{"the annotation counts on the template only, as upstream reads it", nil, map[string]string{SkipOwnerAnnotation: "true"}, owner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := sealValues(t, keys[0], Strict, "shop", "db", map[string]string{"password": plaintext})
			ss.Spec.Template.Annotations = tt.template
			ss.Annotations = tt.object
			// Whatever the template says, the SealedSecret decides ownership.
			ss.Spec.Template.OwnerReferences = []metav1.OwnerReference{{Name: "intruder"}}
			got, err := Unseal(ss, []*rsa.PrivateKey{keys[0].Private})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.OwnerReferences, tt.want) {
				t.Errorf("owner references %+v, want %+v", got.OwnerReferences, tt.want)
			}
		})
	}
}

func TestUnsealV1Data(t *testing.T) {
	setAcceptV1Data(t, true)
	keys := sealingKeys(t)
	in := dbSecret(map[string]string{NamespaceWideAnnotation: "true"})
	in.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	in.UID, in.ResourceVersion = "secret-uid", "7"
	plain, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Encrypt(rand.Reader, &keys[0].Private.PublicKey, plain, Label(NamespaceWide, "shop", ""))
	if err != nil {
		t.Fatal(err)
	}
	ss := &SealedSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "renamed", UID: "ss-uid", Annotations: NamespaceWide.annotate(nil)},
		Spec:       Spec{Data: c},
	}
	got, err := Unseal(ss, []*rsa.PrivateKey{keys[0].Private})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.Namespace != "shop" || got.UID != "" || got.ResourceVersion != "" || got.TypeMeta != (metav1.TypeMeta{}) {
		t.Errorf("the SealedSecret's place and no server fields: %+v", got.ObjectMeta)
	}
	if string(got.Data["password"]) != plaintext || got.StringData["note"] != "two\nlines" || got.Type != corev1.SecretTypeBasicAuth {
		t.Errorf("unsealed %+v", got)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "ss-uid" {
		t.Errorf("owner references %+v", got.OwnerReferences)
	}
	if err := Verify(ss, []*rsa.PrivateKey{keys[0].Private}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestUnsealLeavesItsInputAlone(t *testing.T) {
	keys := sealingKeys(t)
	ss := sealValues(t, keys[0], Strict, "shop", "db", map[string]string{"password": plaintext})
	ss.Spec.Template.Labels = map[string]string{"app": "shop"}
	ss.Spec.Template.Data = map[string]*string{"x": strptr("{{ .password }}"), "password": nil}
	before, err := ss.ToUnstructured()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(ss, []*rsa.PrivateKey{keys[0].Private})
	if err != nil {
		t.Fatal(err)
	}
	got.Labels["app"] = "changed"
	after, err := ss.ToUnstructured()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("Unseal changed the SealedSecret, or the Secret shares its maps")
	}
	back, err := FromUnstructured(after)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.ToUnstructured()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, after) {
		t.Errorf("the unstructured form does not survive FromUnstructured:\n%v\n%v", again, after)
	}
}

// Verify answers whether the values decrypt and nothing else: it would
// otherwise render templates an unauthenticated caller chose (an oracle).
func TestVerifyDoesNotRenderTemplates(t *testing.T) {
	keys := sealingKeys(t)
	mine := []*rsa.PrivateKey{keys[0].Private}
	ss := sealValues(t, keys[0], Strict, "shop", "db", map[string]string{"password": plaintext})
	ss.Spec.Template.Data = map[string]*string{"a": strptr("{{ fail .password }}"), "b": strptr("{{ unclosed")}
	if err := Verify(ss, mine); err != nil {
		t.Errorf("Verify with failing templates: %v", err)
	}
	if _, err := Unseal(ss, mine); err == nil {
		t.Error("Unseal with failing templates succeeded")
	}
	if err := Verify(ss, []*rsa.PrivateKey{keys[1].Private}); err == nil || !strings.Contains(err.Error(), `key "password"`) {
		t.Errorf("Verify with another key: %v", err)
	}
}
