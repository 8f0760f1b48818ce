package gitops

import (
	_ "embed"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// applicationCRD is Argo CD's applications.argoproj.io, v1alpha1. The schema
// keeps every field (x-kubernetes-preserve-unknown-fields), so manifests
// written for Argo CD apply verbatim; Fjord reads the fields it supports.
//
//go:embed crd-application.yaml
var applicationCRD []byte

// appProjectCRD is Argo CD's appprojects.argoproj.io, v1alpha1, kept as
// loosely as the Application's.
//
//go:embed crd-appproject.yaml
var appProjectCRD []byte

// bootstrapObjects are what Fjord installs before it watches Applications:
// the CRDs and the argocd namespace Applications live in.
func bootstrapObjects(namespace string) ([]*unstructured.Unstructured, error) {
	objs := []*unstructured.Unstructured{}
	for what, data := range map[string][]byte{"Application": applicationCRD, "AppProject": appProjectCRD} {
		crd := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			return nil, fmt.Errorf("decoding the %s CRD: %w", what, err)
		}
		objs = append(objs, crd)
	}
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace},
	}}
	return append(objs, ns), nil
}
