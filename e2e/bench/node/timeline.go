package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

// milestone is a point in a pod's start the bench sees through a watch.
type milestone int

const (
	created   milestone = iota // the ReplicaSet controller created it
	scheduled                  // bound to the node
	sandbox                    // PodReadyToStartContainers: sandbox and network up
	running                    // phase Running
	milestones
)

var milestoneNames = [milestones]string{"created", "scheduled", "sandbox ready", "Running"}

// timeline records when the bench first saw each pod of a run reach each
// milestone, as offsets from the Deployment's create call. Times are the
// watcher's, at millisecond resolution (the conditions' own timestamps are
// whole seconds). The kubelet reports a pod's status after a sync, so a
// sandbox that is ready just before its container starts may first be
// seen together with Running.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	pods  map[types.UID]*[milestones]time.Duration
}

func (tl *timeline) see(p *corev1.Pod, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	t := tl.pods[p.UID]
	if t == nil {
		t = &[milestones]time.Duration{-1, -1, -1, -1}
		tl.pods[p.UID] = t
	}
	mark := func(m milestone, reached bool) {
		if reached && t[m] < 0 {
			t[m] = at.Sub(tl.start)
		}
	}
	mark(created, true)
	mark(scheduled, p.Spec.NodeName != "")
	for _, c := range p.Status.Conditions {
		mark(sandbox, c.Type == corev1.PodReadyToStartContainers && c.Status == corev1.ConditionTrue)
	}
	mark(running, p.Status.Phase == corev1.PodRunning)
	// A pod seen Running has its sandbox whether or not the status
	// in between was seen.
	mark(sandbox, p.Status.Phase == corev1.PodRunning)
}

// summary prints, per milestone, when the first, the median and the last
// pod reached it.
func (tl *timeline) summary() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for m := range milestones {
		var xs []float64
		for _, t := range tl.pods {
			if t[m] >= 0 {
				xs = append(xs, t[m].Seconds())
			}
		}
		if len(xs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-13s first %6.2f s  median %6.2f s  last %6.2f s  (%d pods)\n",
			milestoneNames[m], benchutil.Percentile(xs, 0), benchutil.Median(xs), benchutil.Percentile(xs, 100), len(xs))
	}
	return b.String()
}

// runtimeOps are the kubelet's CRI call latencies summed so far, from its
// /metrics through the API server (kubelet_runtime_operations_duration_seconds).
type runtimeOps map[string]struct{ sum, count float64 }

func kubeletRuntimeOps(ctx context.Context, kube kubernetes.Interface, node string) (runtimeOps, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	ops := runtimeOps{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "kubelet_runtime_operations_duration_seconds_")
		if !ok {
			continue
		}
		kind, rest, _ := strings.Cut(rest, "{")
		if kind != "sum" && kind != "count" {
			continue
		}
		_, op, ok := strings.Cut(rest, `operation_type="`)
		if !ok {
			continue
		}
		op, rest, _ = strings.Cut(op, `"`)
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		o := ops[op]
		if kind == "sum" {
			o.sum = v
		} else {
			o.count = v
		}
		ops[op] = o
	}
	return ops, sc.Err()
}

// since prints the mean latency of the pod-start operations between before
// and ops.
func (ops runtimeOps) since(before runtimeOps) string {
	var parts []string
	for _, op := range []string{"run_podsandbox", "create_container", "start_container", "podsandbox_status"} {
		n := ops[op].count - before[op].count
		if n <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f× %.2f s", op, n, (ops[op].sum-before[op].sum)/n))
	}
	return "  kubelet CRI calls (mean): " + strings.Join(parts, ", ") + "\n"
}

// nodeState is what a node holds for its pods: host ends of pod veths,
// network namespaces CNI mounted, and runc shims of this appliance.
type nodeState struct{ veths, netns, shims int }

func (s nodeState) String() string {
	return fmt.Sprintf("%d veths, %d netns, %d shims", s.veths, s.netns, s.shims)
}

func currentNodeState(dir string) nodeState {
	var s nodeState
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "veth") {
			s.veths++
		}
	}
	ns, _ := filepath.Glob("/var/run/netns/cni-*")
	s.netns = len(ns)
	shim := filepath.Join(dir, "agent", "bin", "containerd-shim-runc-v2")
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, e := range exes {
		if target, _ := os.Readlink(e); strings.TrimSuffix(target, " (deleted)") == shim {
			s.shims++
		}
	}
	return s
}

// settle waits until the node holds no more than it did in base: the
// kubelet tears a deleted pod down after the API server has forgotten it
// (a pod whose grace period is 0 is removed from the API at once), and a
// run that starts while the previous run's 30 sandboxes are being stopped
// and their namespaces destroyed measures both.
func settle(dir string, base nodeState, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		s := currentNodeState(dir)
		if s.veths <= base.veths && s.netns <= base.netns && s.shims <= base.shims {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("node not settled after %s: %s (before the run: %s)", timeout, s, base)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The groups the node's CPU time is reported in.
const (
	groupFjord      = "fjord"
	groupContainerd = "containerd with CNI plugins"
	groupShims      = "shims with runc"
	groupContainers = "containers (runc init, pause, sleep)"
)

var cpuGroups = []string{groupFjord, groupContainerd, groupShims, groupContainers}

// procTicks is one process's CPU time in clock ticks (USER_HZ, 100 a
// second on Linux) and the group it counts in.
type procTicks struct {
	group string
	ticks int64
}

const ticksPerSecond = 100

// applianceTicks returns the CPU time used so far by the node's
// processes: fjord, its containerd, this node's shims and the containers'
// first processes (whose time includes runc's init in them before it ran
// the pause or workload program), each with the children it has waited for
// (containerd the CNI plugins, a shim its runc runs), so the short-lived
// helpers a pod start runs are counted too. Keyed by pid, so a later
// reading can count only what changed.
func applianceTicks(pid int, dir string) map[int]procTicks {
	type proc struct{ ppid, ticks int64 }
	procs := map[int]proc{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		data, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// ppid is field 4 of stat; utime, stime, cutime, cstime fields
		// 14–17; f starts at field 3.
		var pr proc
		pr.ppid, _ = strconv.ParseInt(f[1], 10, 64)
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			pr.ticks += v
		}
		p, _ := strconv.Atoi(strings.Split(st, "/")[2])
		procs[p] = pr
	}
	ticks := map[int]procTicks{}
	add := func(p int, group string) {
		if pr, ok := procs[p]; ok {
			ticks[p] = procTicks{group, pr.ticks}
		}
	}
	add(pid, groupFjord)
	if data, err := os.ReadFile(filepath.Join(dir, "agent", "containerd", "containerd.pid")); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			add(p, groupContainerd)
		}
	}
	shim := filepath.Join(dir, "agent", "bin", "containerd-shim-runc-v2")
	shims := map[int64]bool{}
	for p := range procs {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); strings.TrimSuffix(target, " (deleted)") == shim {
			shims[int64(p)] = true
			add(p, groupShims)
		}
	}
	for p, pr := range procs {
		if shims[pr.ppid] && !shims[int64(p)] {
			add(p, groupContainers)
		}
	}
	return ticks
}

// cpuSince is the node's CPU time between two readings, per group: what
// each process still running used since the first (all of it for a new
// one).
func cpuSince(before, after map[int]procTicks) map[string]float64 {
	secs := map[string]float64{}
	for p, t := range after {
		secs[t.group] += float64(t.ticks-before[p].ticks) / ticksPerSecond
	}
	return secs
}

// cpuSummary prints the total and each group's share.
func cpuSummary(secs map[string]float64) (total float64, s string) {
	var parts []string
	for _, g := range cpuGroups {
		total += secs[g]
		parts = append(parts, fmt.Sprintf("%s %.1f", g, secs[g]))
	}
	return total, strings.Join(parts, ", ")
}

// machineBusy returns the CPU time all processes of the machine have used
// (everything but idle and iowait), in seconds.
func machineBusy() float64 {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return float64(busy) / ticksPerSecond
}
