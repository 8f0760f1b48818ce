package dns

import (
	"fmt"
	"net"
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
// else to the nameservers in ResolvConf and caches for 30 seconds. The order
// of the plugins inside the block does not matter; CoreDNS orders them.
func Corefile(p CorefileParams) string {
	return fmt.Sprintf(`.:%d {
    bind %s
    errors
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . %s
    cache 30
    loadbalance
}
`, p.Port, p.NodeIP, p.ClusterDomain, token(p.Kubeconfig), token(p.ResolvConf))
}

// token quotes s for the Corefile lexer when it would otherwise split or
// comment it. Inside quotes the lexer unescapes only \".
func token(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\"#{}") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
