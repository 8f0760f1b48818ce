package gitops

import (
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Health is Argo CD's word for an object's health.
type Health string

// Argo CD's health words.
const (
	Healthy     Health = "Healthy"
	Progressing Health = "Progressing"
	Degraded    Health = "Degraded"
	Missing     Health = "Missing"
	Suspended   Health = "Suspended"
	Unknown     Health = "Unknown"
)

// healthOf computes an object's health with kstatus; nil means Missing.
func healthOf(live *unstructured.Unstructured) (Health, string) {
	if live == nil {
		return Missing, "not found"
	}
	if gvk := live.GroupVersionKind(); gvk.Group == "bitnami.com" && gvk.Kind == "SealedSecret" {
		return sealedSecretHealth(live)
	}
	res, err := status.Compute(live)
	if err != nil {
		return Unknown, err.Error()
	}
	switch res.Status {
	case status.CurrentStatus:
		return Healthy, res.Message
	case status.InProgressStatus, status.TerminatingStatus:
		return Progressing, res.Message
	case status.FailedStatus:
		return Degraded, res.Message
	case status.NotFoundStatus:
		return Missing, res.Message
	}
	return Unknown, res.Message
}

// worse orders health from best to worst, as Argo CD aggregates it.
func worse(a, b Health) Health {
	rank := map[Health]int{Healthy: 0, Suspended: 1, Progressing: 2, Unknown: 3, Missing: 4, Degraded: 5}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// sealedSecretHealth reads the Synced condition the sealed-secrets
// controller sets, as Argo CD's built-in health check for SealedSecrets does.
func sealedSecretHealth(live *unstructured.Unstructured) (Health, string) {
	gen, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Synced" {
			continue
		}
		if gen != live.GetGeneration() {
			break
		}
		msg, _ := m["message"].(string)
		switch m["status"] {
		case "True":
			return Healthy, "unsealed"
		case "False":
			return Degraded, "cannot be unsealed: " + msg
		}
	}
	return Progressing, "waiting to be unsealed"
}
