package node

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	c := Default()
	c.ContainerRuntimeEndpoint = "tcp://x"
	c.CNIBinDir = "lib/cni"
	c.Runc = ""
	c.KubeletPort = 0
	c.MaxPods = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"container-runtime-endpoint", "cni-bin-dir", "runc", "kubelet-port", "max-pods"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestPodCIDR(t *testing.T) {
	for _, tc := range []struct{ cluster, want string }{
		{"10.42.0.0/16", "10.42.0.0/24"},
		{"10.42.0.0/24", "10.42.0.0/24"},
		{"10.42.0.0/26", "10.42.0.0/26"},
		{"fd00:42::/56", "fd00:42::/64"},
	} {
		t.Run(tc.cluster+" gives the node "+tc.want, func(t *testing.T) {
			got, err := PodCIDR(tc.cluster)
			if err != nil || got.String() != tc.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestContainerdConfig(t *testing.T) {
	p := PathsFor("/var/lib/fjord")
	conf := containerdConfig(p, "/usr/lib/cni", "/usr/sbin/runc", "warn", true, false)
	for _, want := range []string{
		"version = 3",
		`root = "/var/lib/fjord/agent/containerd"`,
		`address = "/var/lib/fjord/agent/containerd/containerd.sock"`,
		`sandbox = "docker.io/fjord/pause:1"`,
		`snapshotter = "overlayfs"`,
		"restrict_oom_score_adj = true",
		`bin_dirs = ["/usr/lib/cni"]`,
		`conf_dir = "/var/lib/fjord/agent/etc/cni/net.d"`,
		"use_internal_loopback = true",
		`BinaryName = "/usr/sbin/runc"`,
		"SystemdCgroup = false",
		`format = "json"`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
}

func TestOwnRulesOnly(t *testing.T) {
	for line, own := range map[string]bool{
		":KUBE-SERVICES - [0:0]\n":                        true,
		"-A PREROUTING -j KUBE-SERVICES\n":                true,
		"-A POSTROUTING -s 10.42.0.0/24 -j CNI-abc\n":     true,
		"-A FORWARD -i cni0 -j ACCEPT\n":                  true,
		"-A INPUT -p tcp --dport 22 -j ACCEPT\n":          false,
		":DOCKER - [0:0]\n":                               false,
		"-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE\n": false,
	} {
		if ownRule(line) != own {
			t.Errorf("ownRule(%q) = %v", line, !own)
		}
	}
}

func TestIsArchive(t *testing.T) {
	for name, want := range map[string]bool{"app.tar": true, "app.tar.gz": true, "app.tgz": true, "app.oci": true,
		".app.tar.partial": false, ".hidden.tar": false, "README.md": false, "app.tar.part": false} {
		if isArchive(name) != want {
			t.Errorf("isArchive(%q) = %v", name, !want)
		}
	}
}

func TestLoadBalancerStatus(t *testing.T) {
	c := &Controllers{rt: Runtime{NodeIP: net.ParseIP("192.0.2.7")}, reserved: []int32{6443, 10250},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	class := "example.com/other"
	svc := func(typ corev1.ServiceType, port int32, cls *string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, LoadBalancerClass: cls,
			Ports: []corev1.ServicePort{{Port: port}}}}
	}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{"a LoadBalancer gets the node IP", svc(corev1.ServiceTypeLoadBalancer, 80, nil), "192.0.2.7"},
		{"a ClusterIP gets nothing", svc(corev1.ServiceTypeClusterIP, 80, nil), ""},
		{"another class is left to its controller", svc(corev1.ServiceTypeLoadBalancer, 80, &class), ""},
		{"Fjord's own port stays pending", svc(corev1.ServiceTypeLoadBalancer, 6443, nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.loadBalancerStatus(tc.svc)
			ip := ""
			if len(got) > 0 {
				ip = got[0].IP
			}
			if ip != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}
