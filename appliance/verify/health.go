package verify

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// verdict is what one look at a live object concluded.
type verdict int

const (
	// pending: not settled yet, look again.
	pending verdict = iota
	// healthy: settled, healthy.
	healthy
	// unjudged: settled as far as a cluster without a node can tell.
	unjudged
	// degraded: settled, failed.
	degraded
	// unsealable: a SealedSecret that the keys given cannot open.
	unsealable
	// skipped: not judged on purpose (a SealedSecret without keys).
	skipped
)

// needsNode are the kinds whose health depends on pods running (or a
// volume being provisioned for one), which a control plane without the
// node agent never gets to.
var needsNode = map[schema.GroupKind]bool{
	{Kind: "Pod"}:                            true,
	{Kind: "ReplicationController"}:          true,
	{Kind: "PersistentVolumeClaim"}:          true,
	{Group: "apps", Kind: "Deployment"}:      true,
	{Group: "apps", Kind: "ReplicaSet"}:      true,
	{Group: "apps", Kind: "StatefulSet"}:     true,
	{Group: "apps", Kind: "DaemonSet"}:       true,
	{Group: "batch", Kind: "Job"}:            true,
	{Group: "extensions", Kind: "DaemonSet"}: true,
}

var sealedSecretGK = schema.GroupKind{Group: "bitnami.com", Kind: "SealedSecret"}

// judge looks at a live object (nil: not found) the way the engine's health
// does (kstatus, and the Synced condition of a SealedSecret), and says
// whether it settled. Without a node (withNode false) a workload still in
// progress has settled as unjudged once its controller has seen it, since
// it cannot progress; with one it must turn healthy.
func judge(live *unstructured.Unstructured, withNode bool) (verdict, string) {
	if live == nil {
		return pending, "not found"
	}
	gk := live.GroupVersionKind().GroupKind()
	if gk == sealedSecretGK {
		return sealedSecretVerdict(live)
	}
	res, err := status.Compute(live)
	if err != nil {
		return pending, err.Error()
	}
	switch res.Status {
	case status.CurrentStatus:
		return healthy, res.Message
	case status.FailedStatus:
		if !withNode && gk == (schema.GroupKind{Kind: "Pod"}) && unschedulable(live) {
			return unjudged, "health not judged: a Pod needs a node (" + res.Message + ")"
		}
		return degraded, res.Message
	case status.InProgressStatus:
		if !withNode && needsNode[gk] && observed(live) && !scaledToZero(live) {
			return unjudged, fmt.Sprintf("health not judged: a %s needs a node (%s)", gk.Kind, res.Message)
		}
	}
	return pending, res.Message
}

// unschedulable reports whether a pod is pending for want of a node.
func unschedulable(pod *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(pod.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "PodScheduled" && m["status"] == "False" && m["reason"] == "Unschedulable" {
			return true
		}
	}
	return false
}

// scaledToZero reports whether the object asks for no replicas: then it
// becomes healthy without a node, so it is waited for.
func scaledToZero(live *unstructured.Unstructured) bool {
	n, found, err := unstructured.NestedInt64(live.Object, "spec", "replicas")
	return err == nil && found && n == 0
}

// observed reports whether the object's controller has seen its current
// generation; objects without status.observedGeneration (pods, claims)
// count as seen.
func observed(live *unstructured.Unstructured) bool {
	gen, found, err := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	if err != nil || !found {
		_, hasStatus := live.Object["status"]
		return hasStatus || live.GetKind() == "Pod" || live.GetKind() == "PersistentVolumeClaim"
	}
	return gen >= live.GetGeneration()
}

// sealedSecretVerdict reads the Synced condition the in-process
// sealed-secrets controller sets, as the engine's health does.
func sealedSecretVerdict(live *unstructured.Unstructured) (verdict, string) {
	gen, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Synced" || gen != live.GetGeneration() {
			continue
		}
		msg, _ := m["message"].(string)
		switch m["status"] {
		case "True":
			return healthy, "unsealed"
		case "False":
			return unsealable, "cannot be unsealed: " + msg
		}
	}
	return pending, "waiting to be unsealed"
}
