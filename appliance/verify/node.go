package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// nodePorts are the host ports a node agent binds whatever its data dir:
// the kubelet (10250) and its healthz (10248), kube-proxy's healthz (10256)
// and metrics (10249), CoreDNS (10053) and metrics-server (10251), the
// defaults of appliance/node and its services. So one node runs per
// machine, and a taken kubelet port means one runs already.
var nodePorts = []int{10250, 10248, 10256, 10249, 10053, 10251}

// CheckNode says why a node agent cannot run here now: it needs root (it
// runs containerd, mounts, and writes iptables rules) and the host ports no
// other node holds.
func CheckNode() error {
	if os.Geteuid() != 0 {
		return errors.New("--with-node runs the node agent (containerd, kubelet, kube-proxy), which needs root: run it with sudo")
	}
	for _, p := range nodePorts {
		if !portFree(p) {
			return fmt.Errorf("--with-node: port %d is taken, so a node already runs on this machine "+
				"(fjord server, or a fjord up or verify --with-node): one node runs per machine; stop it first", p)
		}
	}
	return nil
}

// linkImages makes each archive visible in the node's images dir, which
// the node imports at start: a symbolic link, not a copy, since archives
// are large and the data dir may be in memory.
func linkImages(dataDir string, archives []string) error {
	if len(archives) == 0 {
		return nil
	}
	dir := filepath.Join(dataDir, "agent", "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for i, a := range archives {
		abs, err := filepath.Abs(a)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("--image-archive: %w", err)
		}
		// Numbered: two archives may share a base name.
		link := filepath.Join(dir, fmt.Sprintf("%02d-%s", i, filepath.Base(abs)))
		if err := os.Symlink(abs, link); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("linking %s into the node's images: %w", a, err)
		}
	}
	return nil
}

// StopNode stops every pod and the runtime of the node in dataDir and
// removes what it put on the host (`fjord killall`), so that its data dir
// can be deleted and the next node starts clean. Run it after the server
// is gone.
func StopNode(self, dataDir string) error {
	out, err := exec.Command(self, "killall", "--data-dir", dataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("stopping the node's pods (fjord killall): %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podTrouble says why the pods of a workload are not running, from their
// container states (an image not in the node's archives, a crash loop),
// or "" when it cannot tell.
func (c *cluster) podTrouble(ctx context.Context, live *unstructured.Unstructured) string {
	if live.GroupVersionKind().GroupKind() == (schema.GroupKind{Kind: "Pod"}) {
		var p corev1.Pod
		if runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &p) != nil {
			return ""
		}
		return podWhy(&p)
	}
	sel, found, err := unstructured.NestedMap(live.Object, "spec", "selector")
	if err != nil || !found {
		return ""
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err != nil {
		return ""
	}
	s, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || s.Empty() {
		return ""
	}
	pods, err := c.kube.CoreV1().Pods(live.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		if why := podWhy(&p); why != "" {
			return "pod " + p.Name + ": " + why
		}
	}
	return ""
}

// podWhy is the first reason a pod is not running: a container waiting
// for something other than its start, or the scheduler's refusal.
func podWhy(p *corev1.Pod) string {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := w.Reason
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return cs.Name + " " + msg
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return "not scheduled: " + cond.Message
		}
	}
	return ""
}
