package gitops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchObjects are the bench's kinds (e2e/bench/gitops) as the engine
// sends them: labels and the tracking annotation set.
func patchObjects() map[string]*unstructured.Unstructured {
	meta := func(name string) map[string]any {
		return map[string]any{"name": name, "namespace": "bench",
			"labels":      map[string]any{"app.kubernetes.io/part-of": "fjord-anchor", "app.kubernetes.io/instance": "bench"},
			"annotations": map[string]any{"argocd.argoproj.io/tracking-id": "bench:/Kind:bench/" + name}}
	}
	return map[string]*unstructured.Unstructured{
		"ConfigMap": {Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm-00001"),
			"data": map[string]any{"key": "value-00001", "multi": "line one\nline two\n"}}},
		"Service": {Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta("svc-00001"),
			"spec": map[string]any{"selector": map[string]any{"app": "dep-00001"},
				"ports": []any{map[string]any{"name": "http", "port": int64(80), "targetPort": int64(8080)}}}}},
		"Deployment": {Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("dep-00001"),
			"spec": map[string]any{"replicas": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"app": "dep-00001"}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "dep-00001"}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}}}}}}},
	}
}

// The API server reads the patch as YAML: it must read back as the very
// object client.Apply would have sent, one member per line.
func TestLineApplyIsTheSameObject(t *testing.T) {
	for kind, o := range patchObjects() {
		lines, err := lineApply{}.Data(o)
		if err != nil {
			t.Fatal(err)
		}
		oneLine, err := client.Apply.Data(o)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(oneLine, []byte("\n")) != 0 || bytes.Count(lines, []byte("\n")) < 10 {
			t.Errorf("%s: %d lines sent, against %d for client.Apply", kind, bytes.Count(lines, []byte("\n"))+1, bytes.Count(oneLine, []byte("\n"))+1)
		}
		var want, asJSON, asYAML map[string]any
		if err := json.Unmarshal(oneLine, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(lines, &asJSON); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if err := yaml.Unmarshal(lines, &asYAML); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var wantYAML map[string]any
		if err := yaml.Unmarshal(oneLine, &wantYAML); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(asJSON, want) || !reflect.DeepEqual(asYAML, wantYAML) {
			t.Errorf("%s: the patch reads back as\n%v\nnot\n%v", kind, asYAML, wantYAML)
		}
	}
	if (lineApply{}).Type() != client.Apply.Type() {
		t.Errorf("patch type %s, want %s", lineApply{}.Type(), client.Apply.Type())
	}
}

// BenchmarkApplyPatchDecode is what the API server does with one apply
// patch before applying it (handlers.PatchResource: yaml.ToJSON for the
// audit copy, yaml.Unmarshal into the patch object), for the object on one
// line (client.Apply) and broken into lines (lineApply).
func BenchmarkApplyPatchDecode(b *testing.B) {
	for _, kind := range []string{"ConfigMap", "Service", "Deployment"} {
		o := patchObjects()[kind]
		for _, p := range []struct {
			name  string
			patch client.Patch
		}{{"one-line", client.Apply}, {"lines", lineApply{}}} {
			data, err := p.patch.Data(o)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%s", kind, p.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := yaml.ToJSON(data); err != nil {
						b.Fatal(err)
					}
					var m map[string]any
					if err := yaml.Unmarshal(data, &m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		// The third read, which fieldValidation Warn or Strict adds and
		// Ignore (withLineApply) leaves out.
		data, err := lineApply{}.Data(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kind+"/strict", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := yaml.UnmarshalStrict(data, &map[string]any{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
