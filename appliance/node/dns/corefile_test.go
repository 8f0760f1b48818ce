package dns

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestCorefile(t *testing.T) {
	t.Run("binds the node IP and answers the cluster domain from the API", func(t *testing.T) {
		got := Corefile(CorefileParams{NodeIP: net.ParseIP("192.168.1.20"), Port: 10053, ClusterDomain: "cluster.local",
			Kubeconfig: "/var/lib/fjord/kubeconfigs/coredns.kubeconfig", ResolvConf: "/etc/resolv.conf"})
		want := `.:10053 {
    bind 192.168.1.20
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig /var/lib/fjord/kubeconfigs/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
    loadbalance
}
`
		if got != want {
			t.Errorf("Corefile:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("forwards nowhere when the host has no nameserver", func(t *testing.T) {
		got := Corefile(CorefileParams{NodeIP: net.ParseIP("10.0.0.4"), Port: 53, ClusterDomain: "cluster.local", Kubeconfig: "/k"})
		want := `.:53 {
    bind 10.0.0.4
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig /k
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
}
`
		if got != want {
			t.Errorf("Corefile:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("a resolv.conf without a nameserver, or none, is told from one with one", func(t *testing.T) {
		dir0 := t.TempDir()
		both := filepath.Join(dir0, "both")
		if err := os.WriteFile(both, []byte("nameserver 127.0.0.53\noptions edns0\nnameserver 192.0.2.1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := Nameservers(both); len(got) != 2 || got[0] != "127.0.0.53" || got[1] != "192.0.2.1" {
			t.Errorf("Nameservers = %q, want both in order", got)
		}
		dir := t.TempDir()
		files := map[string]string{
			"with":    "search example.net\nnameserver 192.0.2.53\n",
			"without": "search example.net\noptions ndots:2\n# nameserver 192.0.2.1\n",
			"empty":   "",
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, want := range map[string]bool{"with": true, "without": false, "empty": false, "missing": false} {
			if got := len(Nameservers(filepath.Join(dir, name))) > 0; got != want {
				t.Errorf("Nameservers(%s) names some: %v, want %v", name, got, want)
			}
		}
	})
	t.Run("quotes paths the Corefile lexer would split", func(t *testing.T) {
		got := Corefile(CorefileParams{NodeIP: net.ParseIP("fd00::5"), Port: 53, ClusterDomain: "k8s.internal",
			Kubeconfig: `/srv/my "data"/admin #1.kubeconfig`, ResolvConf: "/run/systemd/resolve/resolv.conf"})
		want := `.:53 {
    bind fd00::5
    errors
    kubernetes k8s.internal in-addr.arpa ip6.arpa {
        kubeconfig "/srv/my \"data\"/admin #1.kubeconfig"
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /run/systemd/resolve/resolv.conf
    cache 30
    loadbalance
}
`
		if got != want {
			t.Errorf("Corefile:\n%s\nwant:\n%s", got, want)
		}
	})
}
