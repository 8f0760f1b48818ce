package dns

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/fjord-dev/fjord/appliance/component"
)

// The names pods, kubeadm and add-ons expect of the cluster DNS.
const (
	Namespace   = "kube-system"
	ServiceName = "kube-dns"
	// SliceName is the EndpointSlice that points the Service at the node.
	SliceName = "kube-dns-fjord"
)

const (
	managedBy    = "fjord.dev"
	fieldManager = "fjord"
	portUDP      = "dns"
	portTCP      = "dns-tcp"
)

// registerService retries ensureService with backoff until the API accepts
// it or ctx ends; a fresh cluster may not serve kube-system yet.
func (s *Server) registerService(ctx context.Context, kube kubernetes.Interface) {
	ensure := func(ctx context.Context) error { return s.ensureService(ctx, kube) }
	if component.Retry(ctx, s.log, "registering the kube-dns Service", ensure) {
		s.log.Info("pods can reach the cluster DNS", "service", Namespace+"/"+ServiceName, "cluster-ip", s.cfg.ClusterDNS)
	}
}

// ensureService makes kube-system/kube-dns, a selector-less Service on
// cfg.ClusterDNS port 53 (UDP and TCP), and the EndpointSlice that sends it
// to CoreDNS's port on the node IP. A Service with another ClusterIP is
// replaced, since a ClusterIP cannot be changed.
func (s *Server) ensureService(ctx context.Context, kube kubernetes.Interface) error {
	labels := map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
	target := intstr.FromInt32(int32(s.cfg.ClusterDNSPort))
	want := []corev1.ServicePort{
		{Name: portUDP, Port: 53, TargetPort: target, Protocol: corev1.ProtocolUDP},
		{Name: portTCP, Port: 53, TargetPort: target, Protocol: corev1.ProtocolTCP},
	}
	svcs := kube.CoreV1().Services(Namespace)
	svc, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{})
	if err == nil && svc.Spec.ClusterIP != s.cfg.ClusterDNS {
		s.log.Info("replacing the kube-dns Service to change its ClusterIP", "from", svc.Spec.ClusterIP, "to", s.cfg.ClusterDNS)
		err = svcs.Delete(ctx, ServiceName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting service: %w", err)
		}
		err = apierrors.NewNotFound(corev1.Resource("services"), ServiceName)
	}
	switch {
	case apierrors.IsNotFound(err):
		_, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: labels},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: s.cfg.ClusterDNS, Ports: want},
		}, metav1.CreateOptions{FieldManager: fieldManager})
	case err == nil && (!hasLabels(svc.Labels, labels) || svc.Spec.Selector != nil || !samePorts(svc.Spec.Ports, want)):
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		maps.Copy(svc.Labels, labels)
		svc.Spec.Ports, svc.Spec.Selector = want, nil
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{FieldManager: fieldManager})
	}
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}

	family := discoveryv1.AddressTypeIPv4
	if s.rt.NodeIP.To4() == nil {
		family = discoveryv1.AddressTypeIPv6
	}
	port := int32(s.cfg.ClusterDNSPort)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: SliceName, Namespace: Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{s.rt.NodeIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To(portUDP), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To(portTCP), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	eps := kube.DiscoveryV1().EndpointSlices(Namespace)
	live, err := eps.Get(ctx, SliceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = eps.Create(ctx, slice, metav1.CreateOptions{FieldManager: fieldManager})
	case err == nil:
		live.Labels, live.AddressType, live.Endpoints, live.Ports = slice.Labels, slice.AddressType, slice.Endpoints, slice.Ports
		_, err = eps.Update(ctx, live, metav1.UpdateOptions{FieldManager: fieldManager})
	}
	if err != nil {
		return fmt.Errorf("endpointslice: %w", err)
	}
	return nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// samePorts compares what this package sets; the API server fills in the rest.
func samePorts(have, want []corev1.ServicePort) bool {
	return slices.EqualFunc(have, want, func(a, b corev1.ServicePort) bool {
		return a.Name == b.Name && a.Port == b.Port && a.Protocol == b.Protocol && a.TargetPort == b.TargetPort
	})
}
