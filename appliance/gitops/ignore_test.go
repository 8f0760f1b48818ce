package gitops

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestIgnoreLive(t *testing.T) {
	deploy := func(t *testing.T, replicas int64, initImage string, managed string) *unstructured.Unstructured {
		u := mustUnstructured(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: payments}
spec:
  replicas: 1
  template:
    spec:
      initContainers:
      - {name: setup, image: setup:1}
      - {name: injected-init-container, image: injected:1}
      containers:
      - {name: web, image: web:1}
`)
		unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
		if initImage == "" {
			unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "setup", "image": "setup:1"}}, "spec", "template", "spec", "initContainers")
		} else {
			ics, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "initContainers")
			ics[1].(map[string]any)["image"] = initImage
			unstructured.SetNestedSlice(u.Object, ics, "spec", "template", "spec", "initContainers")
		}
		if managed != "" {
			u.Object["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{
				"manager": managed, "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
				"fieldsV1": map[string]any{"f:spec": map[string]any{"f:replicas": map[string]any{}}},
			}}
		}
		return u
	}
	replicas := func(u *unstructured.Unstructured) any {
		v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
		if !ok {
			return nil
		}
		return v
	}
	initContainers := func(u *unstructured.Unstructured) []any {
		v, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "initContainers")
		return v
	}
	// Argo CD's documented examples (user-guide/diffing.md).
	replicasRule := []IgnoreDifference{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}}}
	jqRule := []IgnoreDifference{{Group: "apps", Kind: "Deployment",
		JQPathExpressions: []string{`.spec.template.spec.initContainers[] | select(.name == "injected-init-container")`}}}
	managersRule := []IgnoreDifference{{Group: "*", Kind: "*", ManagedFieldsManagers: []string{"kube-controller-manager"}}}

	t.Run("a JSON pointer takes the live value: an HPA's replicas stay", func(t *testing.T) {
		got, err := ignoreLive(replicasRule, deploy(t, 3, "injected:1", ""), deploy(t, 5, "injected:1", ""))
		if err != nil || replicas(got) != int64(5) {
			t.Errorf("replicas = %v, %v", replicas(got), err)
		}
	})
	t.Run("a new object is created as Git has it", func(t *testing.T) {
		if got, _ := ignoreLive(replicasRule, deploy(t, 3, "injected:1", ""), nil); replicas(got) != int64(3) {
			t.Errorf("replicas = %v", replicas(got))
		}
	})
	t.Run("a field live does not have is left out", func(t *testing.T) {
		live := deploy(t, 5, "injected:1", "")
		unstructured.RemoveNestedField(live.Object, "spec", "replicas")
		if got, _ := ignoreLive(replicasRule, deploy(t, 3, "injected:1", ""), live); replicas(got) != nil {
			t.Errorf("replicas = %v", replicas(got))
		}
	})
	t.Run("a rule of another kind changes nothing", func(t *testing.T) {
		rule := []IgnoreDifference{{Kind: "StatefulSet", JSONPointers: []string{"/spec/replicas"}}}
		if got, _ := ignoreLive(rule, deploy(t, 3, "injected:1", ""), deploy(t, 5, "injected:1", "")); replicas(got) != int64(3) {
			t.Errorf("replicas = %v", replicas(got))
		}
	})
	t.Run("a jq path expression selects list elements: the injected init container takes live's image", func(t *testing.T) {
		got, err := ignoreLive(jqRule, deploy(t, 3, "injected:1", ""), deploy(t, 3, "injected:2", ""))
		if err != nil {
			t.Fatal(err)
		}
		want := []any{map[string]any{"name": "setup", "image": "setup:1"}, map[string]any{"name": "injected-init-container", "image": "injected:2"}}
		if !reflect.DeepEqual(initContainers(got), want) {
			t.Errorf("initContainers = %v", initContainers(got))
		}
	})
	t.Run("a jq-selected element live does not have is left out", func(t *testing.T) {
		got, _ := ignoreLive(jqRule, deploy(t, 3, "injected:1", ""), deploy(t, 3, "", ""))
		if ics := initContainers(got); len(ics) != 1 || ics[0].(map[string]any)["name"] != "setup" {
			t.Errorf("initContainers = %v", ics)
		}
	})
	t.Run("the fields a manager owns take the live value", func(t *testing.T) {
		got, _ := ignoreLive(managersRule, deploy(t, 3, "injected:1", ""), deploy(t, 7, "injected:1", "kube-controller-manager"))
		if replicas(got) != int64(7) {
			t.Errorf("replicas = %v", replicas(got))
		}
		got, _ = ignoreLive(managersRule, deploy(t, 3, "injected:1", ""), deploy(t, 7, "injected:1", "someone-else"))
		if replicas(got) != int64(3) {
			t.Errorf("replicas = %v, another manager's field was ignored", replicas(got))
		}
	})
	t.Run("caBundle of every webhook, with the optional iterator", func(t *testing.T) {
		hook := func(ca string) *unstructured.Unstructured {
			return mustUnstructured(t, `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: inject}
webhooks:
- {name: a.example.com, clientConfig: {caBundle: `+ca+`}}
- {name: b.example.com, clientConfig: {caBundle: `+ca+`}}
`)
		}
		rule := []IgnoreDifference{{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration", JQPathExpressions: []string{".webhooks[]?.clientConfig.caBundle"}}}
		got, err := ignoreLive(rule, hook("Zm9v"), hook("YmFy"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Object["webhooks"], hook("YmFy").Object["webhooks"]) {
			t.Errorf("webhooks = %v", got.Object["webhooks"])
		}
	})
}

func TestIgnoreDifferencesValidate(t *testing.T) {
	errs := IgnoreDifference{Kind: "Deployment", JSONPointers: []string{"spec/replicas"}, JQPathExpressions: []string{".spec.["}}.validate(0)
	if len(errs) != 2 {
		t.Errorf("errors = %v", errs)
	}
}
