package dns

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// HostResolvConf is the resolver configuration CoreDNS forwards names outside
// the cluster domain to. CoreDNS runs in the host's network namespace, so the
// host's file is right as it is, including systemd-resolved's 127.0.0.53.
const HostResolvConf = "/etc/resolv.conf"

// CorefileParams is everything the Corefile depends on.
type CorefileParams struct {
	NodeIP        net.IP
	Port          int
	ClusterDomain string
	Kubeconfig    string
	ResolvConf    string
}

// Corefile renders the CoreDNS configuration: one server on NodeIP:Port that
// answers ClusterDomain and the reverse zones from the Kubernetes API
// (falling through for reverse names it does not own), forwards everything
// else to the nameservers in ResolvConf (nowhere when it is empty: the host
// has no nameserver) and caches for 30 seconds. The order of the plugins
// inside the block does not matter; CoreDNS orders them.
func Corefile(p CorefileParams) string {
	forward := ""
	if p.ResolvConf != "" {
		forward = "\n    forward . " + token(p.ResolvConf)
	}
	return fmt.Sprintf(`.:%d {
    bind %s
    errors
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }%s
    cache 30
    loadbalance
}
`, p.Port, p.NodeIP, p.ClusterDomain, token(p.Kubeconfig), forward)
}

// Nameservers returns the addresses a resolv.conf at path names, in order;
// none when it names none or cannot be read. CoreDNS's forward plugin
// refuses to start on such a file, which a VM without DHCP's DNS option
// has.
func Nameservers(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// token quotes s for the Corefile lexer when it would otherwise split or
// comment it. Inside quotes the lexer unescapes only \".
func token(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\"#{}") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
