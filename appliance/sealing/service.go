package sealing

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/fjord-dev/fjord/appliance/component"
)

// ServiceName is where kubeseal looks for the controller by default
// (--controller-name, in --controller-namespace kube-system).
const ServiceName = "sealed-secrets-controller"

const (
	portName     = "http"
	inProcess    = "fjord.dev/in-process"
	managedBy    = "fjord.dev"
	serviceLabel = "app.kubernetes.io/name"
)

// registerService makes kubeseal's path to the controller: the Service it
// looks up, an EndpointSlice to the node IP, and the Pod object the API
// server's service proxy insists an endpoint belongs to. The Pod stands
// for the controller inside the fjord process: a scheduling gate keeps it
// from ever being scheduled, and its status carries the node IP. It is
// retried in the background until the API accepts all three (a fresh
// cluster may not have kube-system's service account yet).
func (c *Controller) registerService(ctx context.Context) {
	if component.Retry(ctx, c.log, "registering the sealed-secrets-controller Service", c.ensureService) {
		c.log.Info("kubeseal can reach the controller", "service", KeyNamespace+"/"+ServiceName)
	}
}

func (c *Controller) ensureService(ctx context.Context) error {
	labels := map[string]string{serviceLabel: "sealed-secrets", "app.kubernetes.io/managed-by": managedBy}
	port := int32(c.cfg.Port)
	pods := c.kube.CoreV1().Pods(KeyNamespace)
	pod, err := pods.Get(ctx, ServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pod, err = pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: KeyNamespace, Labels: labels,
				Annotations: map[string]string{inProcess: "the sealed-secrets controller runs inside the fjord process; this Pod only gives its Service an endpoint"}},
			Spec: corev1.PodSpec{
				SchedulingGates:              []corev1.PodSchedulingGate{{Name: inProcess}},
				HostNetwork:                  true,
				AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "controller", Image: inProcess,
					Ports: []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}}}},
			},
		}, metav1.CreateOptions{FieldManager: "fjord"})
	}
	if err != nil {
		return fmt.Errorf("pod: %w", err)
	}
	ip := c.rt.NodeIP.String()
	if pod.Status.PodIP != ip || pod.Status.Phase != corev1.PodRunning {
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
		conds := []corev1.PodCondition{ready}
		for _, c := range pod.Status.Conditions {
			if c.Type != corev1.PodReady {
				conds = append(conds, c)
			}
		}
		pod.Status.Conditions = conds
		if pod, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{FieldManager: "fjord"}); err != nil {
			return fmt.Errorf("pod status: %w", err)
		}
	}

	svcs := c.kube.CoreV1().Services(KeyNamespace)
	svc, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{})
	want := []corev1.ServicePort{{Name: portName, Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}}
	switch {
	case apierrors.IsNotFound(err):
		_, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: KeyNamespace, Labels: labels},
			Spec:       corev1.ServiceSpec{Ports: want},
		}, metav1.CreateOptions{FieldManager: "fjord"})
	case err == nil && (len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].Name != portName):
		svc.Spec.Ports, svc.Spec.Selector = want, nil
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{FieldManager: "fjord"})
	}
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}

	family := discoveryv1.AddressTypeIPv4
	if c.rt.NodeIP.To4() == nil {
		family = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: KeyNamespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: KeyNamespace, Name: pod.Name, UID: pod.UID},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	slices := c.kube.DiscoveryV1().EndpointSlices(KeyNamespace)
	live, err := slices.Get(ctx, ServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{FieldManager: "fjord"})
	case err == nil:
		live.Labels, live.AddressType, live.Endpoints, live.Ports = slice.Labels, slice.AddressType, slice.Endpoints, slice.Ports
		_, err = slices.Update(ctx, live, metav1.UpdateOptions{FieldManager: "fjord"})
	}
	if err != nil {
		return fmt.Errorf("endpointslice: %w", err)
	}
	return nil
}
