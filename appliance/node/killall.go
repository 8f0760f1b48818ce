package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
)

// Killall stops every pod and the runtime of the node kept in dataDir and
// removes what the node put on the host: mounts, network namespaces, the
// cni0 bridge, kube-proxy's and CNI's iptables rules and host-local's
// address leases, like k3s-killall.sh. Stop `fjord server` first; the data
// dir itself (images, volumes, state) is kept.
func Killall(dataDir string, log *slog.Logger) error {
	p := PathsFor(dataDir)
	var errs []error
	killed := killProcesses(p, log)
	log.Info("processes killed", "count", killed)
	if err := unmountAll(p, log); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLinks(log); err != nil {
		errs = append(errs, err)
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		if err := flushRules(bin); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", bin, err))
		}
	}
	leases, _ := filepath.Glob("/var/lib/cni/results/fjord-*")
	for _, path := range append(leases, "/var/lib/cni/networks/fjord", p.ContainerdState, "/run/fjord") {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killProcesses kills every shim of this node, everything below them (the
// containers), and the containerd child, and returns how many it killed.
func killProcesses(p Paths, log *slog.Logger) int {
	shimPath := filepath.Join(p.Bin, "containerd-shim-runc-v2")
	parents := map[int]int{}
	var roots []int
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := parentOf(pid); ppid > 0 {
			parents[pid] = ppid
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if strings.TrimSuffix(exe, " (deleted)") == shimPath {
			roots = append(roots, pid)
		}
	}
	if data, err := os.ReadFile(p.ContainerdPID); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && isContainerd(pid, p) {
			roots = append(roots, pid)
		}
	}
	victims := map[int]bool{}
	for _, r := range roots {
		victims[r] = true
	}
	for changed := true; changed; { // descendants of the shims
		changed = false
		for pid, ppid := range parents {
			if victims[ppid] && !victims[pid] {
				victims[pid], changed = true, true
			}
		}
	}
	for pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pid := range victims {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil && parentOf(pid) > 0 && !zombie(pid) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(victims) > 0 {
		log.Debug("killed", "pids", len(victims))
	}
	return len(victims)
}

func isContainerd(pid int, p Paths) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(p.ContainerdConf))
}

func procStat(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

func parentOf(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func zombie(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && f[0] == "Z"
}

// unmountAll detaches every mount under the node's directories and the CNI
// network namespaces, deepest first, then removes the namespaces' files.
func unmountAll(p Paths, log *slog.Logger) error {
	prefixes := []string{p.Dir + "/", p.ContainerdState + "/", "/run/fjord/", "/run/netns/cni-", "/var/run/netns/cni-"}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		for _, pre := range prefixes {
			if strings.HasPrefix(m.Mountpoint, pre) {
				return false, false
			}
		}
		return true, false
	})
	if err != nil {
		return fmt.Errorf("reading mounts: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m.Mountpoint, err))
		}
	}
	log.Info("mounts removed", "count", len(mounts))
	netns, _ := filepath.Glob("/run/netns/cni-*")
	for _, f := range netns {
		_ = os.Remove(f)
	}
	return errors.Join(errs...)
}

// deleteLinks removes the cni0 bridge and any veth still attached to it.
func deleteLinks(log *slog.Logger) error {
	bridge, err := netlink.LinkByName("cni0")
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("finding cni0: %w", err)
	}
	links, _ := netlink.LinkList()
	var errs []error
	for _, l := range links {
		if l.Attrs().MasterIndex == bridge.Attrs().Index {
			// A veth goes away by itself when its pod's namespace does.
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, syscall.ENODEV) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("deleting %s: %w", l.Attrs().Name, err))
			}
		}
	}
	if err := netlink.LinkDel(bridge); err != nil {
		errs = append(errs, fmt.Errorf("deleting cni0: %w", err))
	}
	log.Info("cni0 removed")
	return errors.Join(errs...)
}

// ownRule says whether an iptables-save line belongs to kube-proxy, the
// kubelet or the CNI plugins of this node.
func ownRule(line string) bool {
	for _, s := range []string{"KUBE-", "CNI-", "cni0", "fjord"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// flushRules rewrites the tables without the node's chains and rules,
// leaving everyone else's alone.
func flushRules(bin string) error {
	if _, err := exec.LookPath(bin + "-save"); err != nil {
		return nil
	}
	out, err := exec.Command(bin + "-save").Output()
	if err != nil {
		return fmt.Errorf("%s-save: %w", bin, err)
	}
	var kept bytes.Buffer
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if !ownRule(line) {
			kept.WriteString(line)
		}
	}
	cmd := exec.Command(bin + "-restore")
	cmd.Stdin = &kept
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s-restore: %w: %s", bin, err, out)
	}
	return nil
}
