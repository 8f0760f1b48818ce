package metrics

import (
	"bytes"
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

func TestAPIService(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\n...\n")
	a := apiService(ca)
	tests := []struct {
		name      string
		got, want any
	}{
		{"is named after version and group", a.Name, "v1beta1.metrics.k8s.io"},
		{"serves metrics.k8s.io", a.Spec.Group, "metrics.k8s.io"},
		{"serves v1beta1", a.Spec.Version, "v1beta1"},
		{"routes to kube-system", a.Spec.Service.Namespace, "kube-system"},
		{"routes to the metrics-server Service", a.Spec.Service.Name, "metrics-server"},
		{"routes to port 443", *a.Spec.Service.Port, int32(443)},
		{"has upstream's group priority", a.Spec.GroupPriorityMinimum, int32(100)},
		{"has upstream's version priority", a.Spec.VersionPriority, int32(100)},
		{"verifies TLS", a.Spec.InsecureSkipTLSVerify, false},
		{"carries the CA bundle", bytes.Equal(a.Spec.CABundle, ca), true},
		{"is marked as Fjord's", hasLabels(a.Labels), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestService(t *testing.T) {
	for _, port := range []int{DefaultPort, 4443} {
		s := service(port)
		if s.Namespace != Namespace || s.Name != ServiceName {
			t.Errorf("service is %s/%s, want %s/%s", s.Namespace, s.Name, Namespace, ServiceName)
		}
		if s.Spec.Selector != nil {
			t.Errorf("service has selector %v, want none (its endpoint is written by Fjord)", s.Spec.Selector)
		}
		if len(s.Spec.Ports) != 1 {
			t.Fatalf("service has %d ports, want 1", len(s.Spec.Ports))
		}
		p := s.Spec.Ports[0]
		if p.Port != 443 || p.TargetPort.IntValue() != port || p.Name != portName || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %d: service port is %+v, want https 443 → %d/TCP", port, p, port)
		}
	}
}

func TestEndpointSlice(t *testing.T) {
	tests := []struct {
		name   string
		ip     string
		family discoveryv1.AddressType
	}{
		{"points at an IPv4 node", "192.0.2.10", discoveryv1.AddressTypeIPv4},
		{"points at an IPv4 node given in 16-byte form", "::ffff:192.0.2.10", discoveryv1.AddressTypeIPv4},
		{"points at an IPv6 node", "2001:db8::10", discoveryv1.AddressTypeIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := net.ParseIP(tt.ip)
			s := endpointSlice(ip, 10251)
			if s.AddressType != tt.family {
				t.Errorf("addressType = %s, want %s", s.AddressType, tt.family)
			}
			if s.Labels[discoveryv1.LabelServiceName] != ServiceName {
				t.Errorf("slice is not labelled for Service %s: %v", ServiceName, s.Labels)
			}
			if s.Labels[discoveryv1.LabelManagedBy] == "endpointslice-controller.k8s.io" {
				t.Error("slice claims to be the EndpointSlice controller's, which would delete it")
			}
			if len(s.Endpoints) != 1 || len(s.Endpoints[0].Addresses) != 1 || s.Endpoints[0].Addresses[0] != ip.String() {
				t.Fatalf("endpoints = %+v, want one at %s", s.Endpoints, ip)
			}
			if r := s.Endpoints[0].Conditions.Ready; r == nil || !*r {
				t.Error("endpoint is not ready; the aggregator would skip it")
			}
			// The aggregator matches the Service port by name.
			if len(s.Ports) != 1 || *s.Ports[0].Name != service(10251).Spec.Ports[0].Name || *s.Ports[0].Port != 10251 {
				t.Errorf("ports = %+v, want %s 10251", s.Ports, portName)
			}
		})
	}
}

func TestAvailability(t *testing.T) {
	cond := func(status apiregistrationv1.ConditionStatus, reason, msg string) *apiregistrationv1.APIService {
		a := apiService(nil)
		a.Status.Conditions = []apiregistrationv1.APIServiceCondition{{Type: apiregistrationv1.Available, Status: status, Reason: reason, Message: msg}}
		return a
	}
	tests := []struct {
		name string
		in   *apiregistrationv1.APIService
		ok   bool
		why  string
	}{
		{"is not available without a condition", apiService(nil), false, "no Available condition yet"},
		{"is available when the condition is true", cond(apiregistrationv1.ConditionTrue, "Passed", "all checks passed"), true, ""},
		{"says why when the condition is false", cond(apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck", "no response"), false, "FailedDiscoveryCheck: no response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why, err := availability(tt.in)
			if err != nil || ok != tt.ok || why != tt.why {
				t.Errorf("availability() = %v, %q, %v; want %v, %q, nil", ok, why, err, tt.ok, tt.why)
			}
		})
	}
}

func TestOwnership(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		svc    *apiregistrationv1.ServiceReference
		ours   bool
		owner  string
	}{
		{"recognises Fjord's objects", mergeLabels(nil), nil, true, managedBy},
		{"keeps others' labels when marking an object", mergeLabels(map[string]string{"team": "a"}), nil, true, managedBy},
		{"names a Helm release's APIService by its manager", map[string]string{"app.kubernetes.io/managed-by": "Helm"}, nil, false, "Helm"},
		{"names an unlabelled APIService by its Service", nil, &apiregistrationv1.ServiceReference{Namespace: "monitoring", Name: "ms"}, false, "service monitoring/ms"},
		{"does not take another metrics-server's name label for Fjord's", map[string]string{"app.kubernetes.io/name": ServiceName}, nil, false, "a local API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasLabels(tt.labels); got != tt.ours {
				t.Errorf("hasLabels(%v) = %v, want %v", tt.labels, got, tt.ours)
			}
			if got := owner(metav1.ObjectMeta{Labels: tt.labels}, tt.svc); got != tt.owner {
				t.Errorf("owner() = %q, want %q", got, tt.owner)
			}
		})
	}
	if l := mergeLabels(map[string]string{"team": "a"}); l["team"] != "a" {
		t.Errorf("mergeLabels dropped a label: %v", l)
	}
}
