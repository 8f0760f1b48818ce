package localpath

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// Provision makes the directory of one claim, <dir>/<pv>_<namespace>_<claim>,
// and returns its PersistentVolume. It refuses a claim for another node, a
// raw block claim, a claim with a selector, and a claim larger than the free
// space of the storage filesystem; the error is the ProvisioningFailed event
// the claim's owner sees. It may be called again for the same claim (the
// library retries when saving the PersistentVolume failed), and then reuses
// the directory.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	pvc := opts.PVC
	if pvc == nil {
		return nil, controller.ProvisioningFinished, errors.New("local-path: no claim to provision")
	}
	claim := pvc.Namespace + "/" + pvc.Name
	// With WaitForFirstConsumer the scheduler picks the node; an Immediate
	// class (someone's own, naming our provisioner) has none and gets ours.
	// Another node is a final error rather than ProvisioningReschedule: on
	// a one-node cluster asking the scheduler again would pick it again.
	if n := opts.SelectedNodeName; n != "" && n != p.rt.NodeName {
		return nil, controller.ProvisioningFinished, fmt.Errorf(
			"local-path volumes are made on node %q only, but the scheduler selected node %q for claim %s", p.rt.NodeName, n, claim)
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, fmt.Errorf("local-path volumes are directories; claim %s asks for a raw block volume", claim)
	}
	if pvc.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("local-path cannot honour the label selector of claim %s; remove it", claim)
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.Sign() <= 0 {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s requests no storage (spec.resources.requests.storage)", claim)
	}
	for _, part := range []string{opts.PVName, pvc.Namespace, pvc.Name} {
		// API validation keeps these DNS names; this keeps the path inside dir regardless.
		if part == "" || part == "." || part == ".." || strings.ContainsRune(part, filepath.Separator) {
			return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: %q cannot be part of a directory name (claim %s)", part, claim)
		}
	}
	path := filepath.Join(p.dir, opts.PVName+"_"+pvc.Namespace+"_"+pvc.Name)

	switch info, err := os.Lstat(path); {
	case err == nil && info.IsDir():
		// A retry: the directory was made by an earlier call.
	case err == nil:
		return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: %s exists and is not a directory", path)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: %w", err)
	default:
		// The check is not a reservation and the directory no quota (as in
		// k3s): it catches a claim that cannot fit today, not volumes that
		// later outgrow the disk together.
		free, err := freeBytes(p.dir)
		if err != nil {
			return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: free space of %s: %w", p.dir, err)
		}
		if want := size.Value(); uint64(want) > free {
			err := fmt.Errorf("not enough space in %s for claim %s: requested %s (%d bytes), free %s (%d bytes)",
				p.dir, claim, size.String(), want, humanBytes(free), free)
			p.tellPods(ctx, pvc, err.Error())
			return nil, controller.ProvisioningFinished, err
		}
		if err := os.Mkdir(path, 0o777); err != nil {
			return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: %w", err)
		}
	}
	// Pods run as any uid; Mkdir's mode was cut by the umask.
	if err := os.Chmod(path, 0o777); err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("local-path: %w", err)
	}

	reclaim := corev1.PersistentVolumeReclaimDelete
	if opts.StorageClass != nil && opts.StorageClass.ReclaimPolicy != nil {
		reclaim = *opts.StorageClass.ReclaimPolicy
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        opts.PVName,
			Annotations: map[string]string{AnnotationPath: path},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()},
			AccessModes:                   slices.Clone(pvc.Spec.AccessModes),
			PersistentVolumeReclaimPolicy: reclaim,
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			// A local volume rather than k3s's default hostPath: the kubelet
			// refuses to start a pod whose directory is gone (a storage disk
			// not mounted) instead of silently making an empty one
			// (DirectoryOrCreate), it applies the pod's fsGroup, which it
			// ignores for hostPath, and the API requires the node affinity
			// that ties the volume to its node for the scheduler.
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.rt.NodeName},
				}}}},
			}},
		},
	}
	p.log.Info("provisioned a volume", "claim", claim, "pv", opts.PVName, "path", path, "size", size.String())
	return pv, controller.ProvisioningFinished, nil
}

// Delete removes the directory of a volume; a directory already gone is
// not an error. It refuses a path that is not directly inside the storage
// directory, and ignores volumes of another node or without a path.
func (p *Provisioner) Delete(_ context.Context, pv *corev1.PersistentVolume) error {
	var path string
	switch src := pv.Spec.PersistentVolumeSource; {
	case src.Local != nil:
		path = src.Local.Path
	case src.HostPath != nil:
		// k3s's local-path-provisioner makes hostPath volumes.
		path = src.HostPath.Path
	default:
		return &controller.IgnoredError{Reason: fmt.Sprintf("PersistentVolume %s is neither a local nor a hostPath volume", pv.Name)}
	}
	if nodes := affinityNodes(pv); nodes != nil && !slices.Contains(nodes, p.rt.NodeName) {
		return &controller.IgnoredError{Reason: fmt.Sprintf("PersistentVolume %s is on node %s, not %s", pv.Name, strings.Join(nodes, ","), p.rt.NodeName)}
	}
	if !filepath.IsAbs(path) || filepath.Dir(filepath.Clean(path)) != p.dir {
		return fmt.Errorf("refusing to delete %s for PersistentVolume %s: it is not a directory inside the local-path storage directory %s",
			path, pv.Name, p.dir)
	}
	path = filepath.Clean(path)
	// RemoveAll removes a symlink, not what it points to.
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("deleting the directory of PersistentVolume %s: %w", pv.Name, err)
	}
	p.log.Info("deleted a volume", "pv", pv.Name, "path", path)
	return nil
}

// affinityNodes returns the hostnames a volume's required node affinity
// names, or nil when it names none.
func affinityNodes(pv *corev1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var nodes []string
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, r := range term.MatchExpressions {
			if r.Key == corev1.LabelHostname && r.Operator == corev1.NodeSelectorOpIn {
				nodes = append(nodes, r.Values...)
			}
		}
	}
	return nodes
}

// freeBytes is the space an unprivileged writer can still use in dir's
// filesystem, as df's "Avail" column counts it.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	// Bsize has different integer types on different platforms.
	return st.Bavail * uint64(st.Bsize), nil
}

// humanBytes writes n as a binary quantity ("12Gi"), rounded down.
func humanBytes(n uint64) string {
	units := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	i := 0
	for n >= 1024*10 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d%s", n, units[i])
}

// tellPods puts the reason a claim cannot be provisioned on the pods that
// wait for it, where `kubectl describe pod` shows it: the library records
// it on the claim only, and a pod just says it waits for its volume.
func (p *Provisioner) tellPods(ctx context.Context, pvc *corev1.PersistentVolumeClaim, msg string) {
	if p.kube == nil {
		return
	}
	pods, err := p.kube.CoreV1().Pods(pvc.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		p.log.Debug("listing the pods of a claim", "claim", pvc.Namespace+"/"+pvc.Name, "err", err)
		return
	}
	now := metav1.Now()
	for _, pod := range pods.Items {
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name
		}) {
			continue
		}
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			Reason:         "VolumeNotProvisioned", Message: msg, Type: corev1.EventTypeWarning,
			Source:         corev1.EventSource{Component: ProvisionerName},
			FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		if _, err := p.kube.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			p.log.Debug("recording an event on a pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
}
