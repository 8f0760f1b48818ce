package node

import (
	"github.com/fjord-dev/fjord/appliance/component"
)

// Components returns the node's components in start order: the runtime
// (unless the user brings their own), the kubelet, kube-proxy and the node
// controllers. reserved are ports Fjord serves on the node IP itself.
func Components(cfg Config, rt Runtime, logLevel string, reserved ...int) []component.Component {
	var cs []component.Component
	if cfg.ContainerRuntimeEndpoint == "" {
		cs = append(cs, NewContainerd(cfg, rt, logLevel))
	}
	return append(cs, NewKubelet(cfg, rt), NewProxy(cfg, rt), NewControllers(rt, append(reserved, cfg.KubeletPort)...))
}
