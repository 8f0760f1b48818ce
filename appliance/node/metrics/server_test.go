package metrics

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/fjord-dev/fjord/bootstrap"
)

// testServer is a Server whose runtime points at files in a temporary data
// dir; nothing in it is contacted.
func testServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	tls := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tls, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := newCA(t, tls, "ca")
	kubeconfig := filepath.Join(dir, "kubeconfig.yaml")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["fjord"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", CertificateAuthority: ca.Cert}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["fjord"] = &clientcmdapi.Context{Cluster: "fjord", AuthInfo: "admin"}
	kc.CurrentContext = "fjord"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	pki := bootstrap.PKI{Dir: tls, CA: ca, APIServerKubelet: bootstrap.KeyPair{Cert: filepath.Join(tls, "kubelet-client.crt"), Key: filepath.Join(tls, "kubelet-client.key")}}
	s := New(Default(), Runtime{DataDir: dir, Kubeconfig: kubeconfig, NodeIP: net.ParseIP("127.0.0.1"), PKI: pki, Log: slog.New(slog.DiscardHandler)})
	// Any certificate will do for the kubelet client: nothing is dialled.
	for _, pair := range []bootstrap.KeyPair{s.pair, pki.APIServerKubelet} {
		if _, err := ensureServingCert(pair, ca, s.rt.NodeIP, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestOptions(t *testing.T) {
	s := testServer(t)
	o, err := s.options()
	if err != nil {
		t.Fatalf("options() = %v", err)
	}
	kc := o.KubeletClient.Config(&rest.Config{Host: "https://127.0.0.1:1"})
	tests := []struct {
		name      string
		got, want any
	}{
		{"scrapes every 15s", o.MetricResolution, MetricResolution},
		{"scrapes over HTTPS", kc.Scheme, "https"},
		{"verifies the kubelet's certificate", kc.Client.TLSClientConfig.Insecure, false},
		{"verifies the kubelet against Fjord's CA", kc.Client.TLSClientConfig.CAFile, s.rt.PKI.CA.Cert},
		{"authenticates as the API server does to the kubelet", kc.Client.TLSClientConfig.CertFile, s.rt.PKI.APIServerKubelet.Cert},
		{"uses the API server's kubelet client key", kc.Client.TLSClientConfig.KeyFile, s.rt.PKI.APIServerKubelet.Key},
		{"prefers the node's InternalIP", string(kc.AddressTypePriority[0]), "InternalIP"},
		{"uses the kubelet's reported port", kc.UseNodeStatusPort, true},
		{"serves the CA-signed certificate", o.SecureServing.ServerCert.CertKey.CertFile, s.pair.Cert},
		{"delegates authentication with the admin kubeconfig", o.Authentication.RemoteKubeConfigFile, s.rt.Kubeconfig},
		{"delegates authorization with the admin kubeconfig", o.Authorization.RemoteKubeConfigFile, s.rt.Kubeconfig},
		{"reads the client CAs from the cluster", o.Authentication.SkipInClusterLookup, false},
		{"keeps authentication on", o.DisableAuthForTesting, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestBuild builds the server as Start does, minus the delegated auth that
// needs a live API server: it catches metrics-server and the Kubernetes
// libraries of this module disagreeing (the OpenAPI model names did).
func TestBuild(t *testing.T) {
	s := testServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.listener = l
	o, err := s.options()
	if err != nil {
		t.Fatal(err)
	}
	o.DisableAuthForTesting = true
	if _, err := build(o); err != nil {
		t.Fatalf("build() = %v", err)
	}
}

func TestModelName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"k8s.io/metrics/pkg/apis/metrics/v1beta1.PodMetrics", "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"},
		{"k8s.io/apimachinery/pkg/api/resource.Quantity", "io.k8s.apimachinery.pkg.api.resource.Quantity"},
		{"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics", "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"},
	}
	for _, tt := range tests {
		if got := modelName(tt.in); got != tt.want {
			t.Errorf("modelName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for name, d := range openAPIDefinitions(func(string) spec.Ref { return spec.Ref{} }) {
		if strings.Contains(name, "/") {
			t.Errorf("definition %q still has a package path", name)
		}
		for _, dep := range d.Dependencies {
			if strings.Contains(dep, "/") {
				t.Errorf("definition %q depends on %q, a package path", name, dep)
			}
		}
	}
}
