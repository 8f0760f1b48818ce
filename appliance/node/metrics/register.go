package metrics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationv1helper "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
)

// Where metrics-server is found, as its upstream manifests name it; HPA,
// kubectl and dashboards only ever see the APIService.
const (
	Namespace   = metav1.NamespaceSystem
	ServiceName = "metrics-server"
	// APIServiceName is the registration of metrics.k8s.io/v1beta1.
	APIServiceName = "v1beta1.metrics.k8s.io"
)

const (
	fieldManager = "fjord"
	managedBy    = "fjord.dev"
	portName     = "https"
	servicePort  = 443
)

var labels = map[string]string{
	"app.kubernetes.io/name":       ServiceName,
	"app.kubernetes.io/managed-by": managedBy,
}

// apiService is the registration of metrics.k8s.io/v1beta1 with the
// aggregation layer, verified with caBundle (the CA that signed the
// serving certificate) rather than skipping TLS verification.
func apiService(caBundle []byte) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Labels: labels},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:              &apiregistrationv1.ServiceReference{Namespace: Namespace, Name: ServiceName, Port: ptr.To[int32](servicePort)},
			Group:                "metrics.k8s.io",
			Version:              "v1beta1",
			CABundle:             caBundle,
			GroupPriorityMinimum: 100,
			VersionPriority:      100,
		},
	}
}

// service is a selector-less Service: its only endpoint is the node IP,
// written by Fjord, since metrics-server runs in the fjord process.
func service(port int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: portName, Port: servicePort, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
		}}},
	}
}

// endpointSlice points the Service at nodeIP:port. It names no Pod: the
// aggregation layer, unlike the API server's service proxy, does not ask
// for one.
func endpointSlice(nodeIP net.IP, port int) *discoveryv1.EndpointSlice {
	family := discoveryv1.AddressTypeIPv4
	if nodeIP.To4() == nil {
		family = discoveryv1.AddressTypeIPv6
	}
	sliceLabels := map[string]string{discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: managedBy}
	maps.Copy(sliceLabels, labels)
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: sliceLabels},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{nodeIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

// registration writes and removes the objects that route metrics.k8s.io
// to the in-process server.
type registration struct {
	kube kubernetes.Interface
	agg  aggregator.Interface
}

// ensure creates or corrects the Service, the EndpointSlice and the
// APIService, in that order, so the APIService never points at nothing.
// It writes only what differs.
func (r registration) ensure(ctx context.Context, nodeIP net.IP, port int, caBundle []byte) (replaced string, err error) {
	if err := r.ensureService(ctx, service(port)); err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	if err := r.ensureSlice(ctx, endpointSlice(nodeIP, port)); err != nil {
		return "", fmt.Errorf("endpointslice: %w", err)
	}
	replaced, err = r.ensureAPIService(ctx, apiService(caBundle))
	if err != nil {
		return "", fmt.Errorf("apiservice: %w", err)
	}
	return replaced, nil
}

func (r registration) ensureService(ctx context.Context, want *corev1.Service) error {
	svcs := r.kube.CoreV1().Services(Namespace)
	live, err := svcs.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = svcs.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	case err != nil:
		return err
	}
	// A selector would let the EndpointSlice controller add slices of its own.
	if len(live.Spec.Selector) == 0 && apiequality.Semantic.DeepEqual(live.Spec.Ports, want.Spec.Ports) && hasLabels(live.Labels) {
		return nil
	}
	live.Labels = mergeLabels(live.Labels)
	live.Spec.Ports, live.Spec.Selector = want.Spec.Ports, nil
	_, err = svcs.Update(ctx, live, metav1.UpdateOptions{FieldManager: fieldManager})
	return err
}

func (r registration) ensureSlice(ctx context.Context, want *discoveryv1.EndpointSlice) error {
	slices := r.kube.DiscoveryV1().EndpointSlices(Namespace)
	live, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	case err != nil:
		return err
	}
	if live.AddressType != want.AddressType {
		// addressType is immutable.
		if err := slices.Delete(ctx, live.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &live.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		_, err = slices.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	}
	if apiequality.Semantic.DeepEqual(live.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(live.Ports, want.Ports) &&
		apiequality.Semantic.DeepEqual(live.Labels, want.Labels) {
		return nil
	}
	live.Labels, live.Endpoints, live.Ports = want.Labels, want.Endpoints, want.Ports
	_, err = slices.Update(ctx, live, metav1.UpdateOptions{FieldManager: fieldManager})
	return err
}

// ensureAPIService returns who had registered metrics.k8s.io before, when it
// was not Fjord (a metrics-server deployed by hand while this one was off).
func (r registration) ensureAPIService(ctx context.Context, want *apiregistrationv1.APIService) (string, error) {
	apis := r.agg.ApiregistrationV1().APIServices()
	live, err := apis.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = apis.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return "", err
	case err != nil:
		return "", err
	}
	if apiequality.Semantic.DeepEqual(live.Spec, want.Spec) && hasLabels(live.Labels) {
		return "", nil
	}
	var replaced string
	if !hasLabels(live.Labels) {
		replaced = owner(live.ObjectMeta, live.Spec.Service)
	}
	live.Labels = mergeLabels(live.Labels)
	live.Spec = want.Spec
	_, err = apis.Update(ctx, live, metav1.UpdateOptions{FieldManager: fieldManager})
	return replaced, err
}

// remove deletes the APIService, Service and EndpointSlice if Fjord made
// them. An APIService left behind without a server makes every discovery
// partial and blocks namespace deletion.
func (r registration) remove(ctx context.Context) error {
	var errs []error
	if live, err := r.agg.ApiregistrationV1().APIServices().Get(ctx, APIServiceName, metav1.GetOptions{}); err == nil && hasLabels(live.Labels) {
		errs = append(errs, ignoreNotFound(r.agg.ApiregistrationV1().APIServices().Delete(ctx, APIServiceName, uidPrecondition(live.ObjectMeta))))
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if live, err := r.kube.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, ServiceName, metav1.GetOptions{}); err == nil && hasLabels(live.Labels) {
		errs = append(errs, ignoreNotFound(r.kube.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, ServiceName, uidPrecondition(live.ObjectMeta))))
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if live, err := r.kube.CoreV1().Services(Namespace).Get(ctx, ServiceName, metav1.GetOptions{}); err == nil && hasLabels(live.Labels) {
		errs = append(errs, ignoreNotFound(r.kube.CoreV1().Services(Namespace).Delete(ctx, ServiceName, uidPrecondition(live.ObjectMeta))))
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// available reports whether the aggregation layer reached the server, and
// if not, why (the Available condition's reason and message).
func (r registration) available(ctx context.Context) (bool, string, error) {
	live, err := r.agg.ApiregistrationV1().APIServices().Get(ctx, APIServiceName, metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	return availability(live)
}

// availability reads the Available condition of an APIService.
func availability(a *apiregistrationv1.APIService) (bool, string, error) {
	c := apiregistrationv1helper.GetAPIServiceConditionByType(a, apiregistrationv1.Available)
	switch {
	case c == nil:
		return false, "no Available condition yet", nil
	case c.Status == apiregistrationv1.ConditionTrue:
		return true, "", nil
	default:
		return false, c.Reason + ": " + c.Message, nil
	}
}

// hasLabels reports whether l carries Fjord's mark.
func hasLabels(l map[string]string) bool {
	return l["app.kubernetes.io/managed-by"] == managedBy && l["app.kubernetes.io/name"] == ServiceName
}

func mergeLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l)+len(labels))
	maps.Copy(out, l)
	maps.Copy(out, labels)
	return out
}

// owner names the previous registrant of an APIService for the log.
func owner(m metav1.ObjectMeta, svc *apiregistrationv1.ServiceReference) string {
	if by := m.Labels["app.kubernetes.io/managed-by"]; by != "" {
		return by
	}
	if svc != nil {
		return "service " + svc.Namespace + "/" + svc.Name
	}
	return "a local API"
}

func uidPrecondition(m metav1.ObjectMeta) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &m.UID}}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
