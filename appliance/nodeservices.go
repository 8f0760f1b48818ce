package appliance

import (
	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/node"
	"github.com/fjord-dev/fjord/appliance/node/dns"
	"github.com/fjord-dev/fjord/appliance/node/localpath"
	"github.com/fjord-dev/fjord/appliance/node/metrics"
)

// nodeServices are the cluster services that come with the node, in-process:
// cluster DNS (CoreDNS), the local-path StorageClass and metrics.k8s.io.
func nodeServices(cfg Config, rt node.Runtime) []component.Component {
	var cs []component.Component
	if !cfg.DNS.DisableDNS {
		cs = append(cs, dns.New(cfg.DNS, dns.Runtime{
			Kubeconfig: rt.Kubeconfigs.Admin, NodeIP: rt.NodeIP, ClusterDomain: rt.ClusterDomain, Log: rt.Log}))
	}
	cs = append(cs, localpath.New(cfg.LocalPath, localpath.Runtime{
		DataDir: rt.DataDir, Kubeconfig: rt.Kubeconfigs.Admin, NodeName: rt.NodeName, Log: rt.Log}))
	// Also when disabled: it then removes the APIService it registered.
	cs = append(cs, metrics.New(cfg.Metrics, metrics.Runtime{
		DataDir: rt.DataDir, Kubeconfig: rt.Kubeconfigs.Admin, NodeIP: rt.NodeIP, PKI: rt.PKI, Log: rt.Log}))
	return cs
}
