package gitops

import (
	"bytes"
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// lineApply is server-side apply (client.Apply) with the object's JSON
// broken into lines, one member or element per line.
//
// The API server reads every apply patch as YAML: to check it and keep a
// JSON copy for audit, to apply it, and with fieldValidation Warn (the
// default) once more, strictly. YAML's scanner keeps a line's tokens
// queued while a key may still start on it, so a whole object on one
// line, as client.Apply sends it, costs the first two reads 73 KB of
// garbage for a small Deployment and 39 KB for a ConfigMap, where the
// same JSON broken into lines costs 31 and 18 KB
// (BenchmarkApplyPatchDecode). A sync of a thousand objects is mostly the
// API server's allocations, and the collector's work follows them.
type lineApply struct{}

func (lineApply) Type() types.PatchType { return types.ApplyPatchType }

func (lineApply) Data(obj client.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(data) + len(data)/4)
	if err := json.Indent(&buf, data, "", ""); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// withLineApply returns c with every client.Apply sent as lineApply: the
// engine's own applies and those of fluxcd/pkg/ssa, which is given this
// client.
//
// They are sent with fieldValidation Ignore unless the caller asks for
// another: for an apply patch the only thing Warn adds is the third,
// strict read of the patch (duplicate keys), whose findings come back as
// warnings, and the engine's client drops warnings (rest.NoWarnings). A
// field the schema does not know fails an apply whatever the validation.
func withLineApply(c client.WithWatch) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if patch == client.Apply {
				patch = lineApply{}
				opts = append([]client.PatchOption{client.FieldValidation(metav1.FieldValidationIgnore)}, opts...)
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
}
