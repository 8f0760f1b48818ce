package gitops

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// rendered is one render of an Application's source: the objects its path
// builds to at one commit, normalized for the Application (namespace,
// tracking annotation), with the hash of each. A render is a pure function
// of its key, so a resync at the same key reuses it instead of fetching
// and building again. SealedSecrets are rendered as they are (the sealing
// controller unseals them in the cluster): no decrypted input or sealing
// key takes part in a render.
type rendered struct {
	key        string
	objs       []*unstructured.Unstructured
	hashes     map[objKey]string
	sourceType string
	// hooks are the render's resource hooks, run in their phases by every
	// sync operation and never part of the inventory.
	hooks []*hook
	// unknownKinds are kinds without a CRD yet whose objects skip the dry
	// run (SkipDryRunOnMissingResource).
	unknownKinds map[schema.GroupKind]bool
}

// renderKey identifies a render: the commit, the source path, the build
// options, and what normalize takes from the Application (its name for the
// tracking annotation, the destination namespace).
func renderKey(rev string, app *Application) string {
	// The whole source: path, directory, helm and kustomize options.
	src, _ := json.Marshal(app.SourceList())
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s", rev, src, app.Name, app.Spec.Destination.Namespace)
}

func newRendered(key string, objs []*unstructured.Unstructured, sourceType string) *rendered {
	r := &rendered{key: key, objs: objs, hashes: make(map[objKey]string, len(objs)), sourceType: sourceType}
	for _, o := range objs {
		r.hashes[keyOf(o)] = objectHash(o)
	}
	return r
}
