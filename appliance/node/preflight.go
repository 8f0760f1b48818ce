package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Packages name the Debian packages the node needs, for error messages and
// for `make run`, which installs them.
const (
	pkgRunc     = "runc"
	pkgCNI      = "containernetworking-plugins"
	pkgIptables = "iptables"
)

// cniPlugins are the plugins the conflist Fjord writes uses (containerd
// brings a pod's loopback up itself: use_internal_loopback).
var cniPlugins = []string{"bridge", "host-local", "portmap"}

// Preflight checks that the host can run the node before anything starts,
// and names the way out of every problem at once: root, runc, the CNI
// plugins and iptables.
func Preflight(cfg Config) error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("the node agent (kubelet, containerd) must run as root: run fjord server as root, or with --disable-agent for the control plane only"))
	}
	if cfg.ContainerRuntimeEndpoint == "" {
		if _, err := exec.LookPath(cfg.Runc); err != nil {
			errs = append(errs, fmt.Errorf("runc: %q not found (install Debian's %s package, or set runc: /path/to/runc): %w", cfg.Runc, pkgRunc, err))
		}
	}
	var missing []string
	for _, p := range cniPlugins {
		if fi, err := os.Stat(filepath.Join(cfg.CNIBinDir, p)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("CNI plugins %s missing in %s (install Debian's %s package, or set cni-bin-dir)",
			strings.Join(missing, ", "), cfg.CNIBinDir, pkgCNI))
	}
	for _, bin := range []string{"iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: kube-proxy needs it (install Debian's %s package)", bin, pkgIptables))
			break
		}
	}
	return errors.Join(errs...)
}

// hasCapSysResource reports whether CAP_SYS_RESOURCE is in this process's
// bounding set. Without it a negative oom_score_adj is refused, and
// containerd's sandboxes fail unless it is told to restrict the score.
func hasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && bits&(1<<24) != 0 // CAP_SYS_RESOURCE = 24
		}
	}
	return false
}

// hostSysctls are the kernel settings pods need on the host: forwarding for
// pod traffic and bridged traffic through iptables for Services. They are
// deliberate, documented host changes (README).
var hostSysctls = map[string]string{
	"net/ipv4/ip_forward":                 "1",
	"net/bridge/bridge-nf-call-iptables":  "1",
	"net/bridge/bridge-nf-call-ip6tables": "1",
}

// prepareHost loads the kernel modules the node uses (best effort: they may
// be built in) and sets hostSysctls.
func prepareHost() error {
	for _, m := range []string{"overlay", "br_netfilter"} {
		_ = exec.Command("modprobe", m).Run()
	}
	var errs []error
	for key, want := range hostSysctls {
		path := filepath.Join("/proc/sys", key)
		if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == want {
			continue
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), want, err))
		}
	}
	return errors.Join(errs...)
}
