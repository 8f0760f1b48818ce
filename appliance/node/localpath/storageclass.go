package localpath

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fjord-dev/fjord/appliance/component"
)

const (
	// ClassName is the StorageClass k3s installs and its users' manifests name.
	ClassName = "local-path"
	// ProvisionerName is the class's provisioner. It is k3s's
	// (rancher/local-path-provisioner's) name rather than a fjord.dev one,
	// so manifests and Helm values written for k3s that define their own
	// class with `provisioner: rancher.io/local-path` keep working, and a
	// class carried over from k3s is served.
	ProvisionerName = "rancher.io/local-path"
	// AnnotationPath records, on each PersistentVolume, the directory that
	// holds the volume on the node.
	AnnotationPath = "fjord.dev/local-path"

	defaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"
)

// registerClass creates the StorageClass, retrying in the background until
// the API server accepts it (a fresh cluster may not serve storage.k8s.io
// for a few seconds), then closes classReady.
func (p *Provisioner) registerClass(ctx context.Context) {
	if component.Retry(ctx, p.log, "creating the local-path StorageClass", p.ensureClass) {
		close(p.classReady)
	}
}

// ensureClass creates the StorageClass when it is missing and otherwise
// leaves it alone: its provisioner, reclaim policy and binding mode are
// immutable, and an administrator who moved the default-class annotation
// to another class should not see it come back on every restart (a k3s
// annoyance).
func (p *Provisioner) ensureClass(ctx context.Context) error {
	classes := p.kube.StorageV1().StorageClasses()
	live, err := classes.Get(ctx, ClassName, metav1.GetOptions{})
	switch {
	case err == nil:
		if live.Provisioner != ProvisionerName {
			p.log.Warn("StorageClass local-path exists with another provisioner; its claims are not provisioned here",
				"provisioner", live.Provisioner)
		}
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading StorageClass %s: %w", ClassName, err)
	}
	_, err = classes.Create(ctx, Class(), metav1.CreateOptions{FieldManager: "fjord"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating StorageClass %s: %w", ClassName, err)
	}
	p.log.Info("created the default StorageClass", "name", ClassName)
	return nil
}

// Class returns the local-path StorageClass as this package installs it:
// the cluster's default, volumes deleted with their claim, and binding
// delayed until a pod is scheduled (the volume is on one node).
func Class() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{defaultClassAnnotation: "true"},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "fjord.dev"},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}
