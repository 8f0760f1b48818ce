package metrics

import (
	"strings"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
	generatedopenapi "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
	"sigs.k8s.io/metrics-server/pkg/server"
)

// useModelNames makes metrics-server v0.8.0's OpenAPI definitions fit the
// Kubernetes 0.37 libraries it runs with here. Its definitions were
// generated (for 0.33) under Go package paths
// ("k8s.io/metrics/pkg/apis/metrics/v1beta1.PodMetrics"), while the 0.37
// types name their models themselves (OpenAPIModelName:
// "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics") and the API
// installer looks them up by that name; without this, Complete fails with
// "cannot find model definition for io.k8s.metrics...PodMetrics".
func useModelNames(c *server.Config) {
	v2, v3 := c.Apiserver.OpenAPIConfig, c.Apiserver.OpenAPIV3Config
	if v2 != nil {
		v2.GetDefinitions = openAPIDefinitions
	}
	if v3 != nil {
		v3.GetDefinitions = openAPIDefinitions
		// DefaultOpenAPIV3Config computed these from the old names.
		v3.Definitions = openAPIDefinitions(func(name string) spec.Ref {
			defName, _ := v3.GetDefinitionName(name)
			return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(defName))
		})
	}
}

// openAPIDefinitions returns metrics-server's generated definitions with
// every name (keys, references, dependencies) turned into a model name.
func openAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := generatedopenapi.GetOpenAPIDefinitions(func(name string) spec.Ref { return ref(modelName(name)) })
	out := make(map[string]common.OpenAPIDefinition, len(defs))
	for name, d := range defs {
		deps := make([]string, len(d.Dependencies))
		for i, dep := range d.Dependencies {
			deps[i] = modelName(dep)
		}
		d.Dependencies = deps
		out[modelName(name)] = d
	}
	return out
}

// modelName turns a Go type name with its package path into the model name
// the 0.37 types give themselves. A name without a path is one already and
// is kept, so a metrics-server generated with model names still works.
func modelName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return util.ToRESTFriendlyName(name)
}
