package gitops

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fjord-dev/fjord/appliance/gitops/build"
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
}

// renderKey identifies a render: the commit, the source path, the build
// options, and what normalize takes from the Application (its name for the
// tracking annotation, the destination namespace).
func renderKey(rev string, app *Application) string {
	opts := buildOptions(app)
	return fmt.Sprintf("%s\x00%s\x00recurse=%t\x00%s\x00%s", rev, app.Spec.Source.Path, opts.Recurse, app.Name, app.Spec.Destination.Namespace)
}

func buildOptions(app *Application) build.Options {
	opts := build.Options{ObjectsOnly: true}
	if d := app.Spec.Source.Directory; d != nil {
		opts.Recurse = d.Recurse
	}
	return opts
}

func newRendered(key string, objs []*unstructured.Unstructured, sourceType string) *rendered {
	r := &rendered{key: key, objs: objs, hashes: make(map[objKey]string, len(objs)), sourceType: sourceType}
	for _, o := range objs {
		r.hashes[keyOf(o)] = objectHash(o)
	}
	return r
}
