// Command node measures the node: how long a Deployment takes from being
// applied to all its pods Running, for 1 and for 30 replicas (median of N
// runs), and the RSS of the whole appliance (the fjord process with control
// plane, node, GitOps and sealing; its containerd child; the runc shims)
// idle with 20 pods. It starts `fjord server` with the node (root only) on
// a fresh data dir with the test image in its images dir, and prints
// markdown tables with the machine they came from.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

func main() {
	bin := flag.String("bin", os.Getenv("FJORD_BIN"), "fjord binary")
	archive := flag.String("image-archive", os.Getenv("FJORD_TEST_IMAGE_ARCHIVE"), "image archive for the pods")
	image := flag.String("image", os.Getenv("FJORD_TEST_IMAGE"), "image reference in that archive")
	runs := flag.Int("runs", 5, "runs per size")
	idle := flag.Duration("idle", 60*time.Second, "idle time with 20 pods before reading RSS")
	sizes := flag.String("sizes", "1,30", "comma-separated Deployment sizes to time")
	memory := flag.Bool("memory", true, "read the appliance's memory idle with 20 pods after the timed runs")
	keepLog := flag.String("keep-log", "", "copy the server's log to this file at the end")
	var serverArgs multiFlag
	flag.Var(&serverArgs, "server-arg", "extra argument for `fjord server` (repeatable), e.g. -server-arg=--runc=crun")
	flag.Parse()
	if *bin == "" || *archive == "" || *image == "" {
		fmt.Fprintln(os.Stderr, "set -bin, -image-archive and -image (or FJORD_BIN, FJORD_TEST_IMAGE_ARCHIVE, FJORD_TEST_IMAGE)")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the node needs root")
		os.Exit(2)
	}
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-sizes: %q is not a pod count\n", f)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if err := run(*bin, *archive, *image, *runs, ns, *memory, *idle, serverArgs, *keepLog); err != nil {
		fmt.Fprintln(os.Stderr, "node bench:", err)
		os.Exit(1)
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func run(bin, archive, image string, runs int, sizes []int, memory bool, idle time.Duration, serverArgs []string, keepLog string) error {
	dir, err := os.MkdirTemp("", "fjord-bench-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	images := filepath.Join(dir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(images, "image.tar"), data, 0o644); err != nil {
		return err
	}
	port := benchutil.FreePort()
	args := []string{"server", "--data-dir", dir, "--fsync-gate=off", "--https-listen-port", strconv.Itoa(port),
		"--etcd-client-port", strconv.Itoa(benchutil.FreePort()), "--etcd-peer-port", strconv.Itoa(benchutil.FreePort()),
		"--config", filepath.Join(dir, "none.yaml"), "--log-level", "warn"}
	cmd := exec.Command(bin, append(args, serverArgs...)...)
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "fjord.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if out, err := exec.Command(bin, "killall", "--data-dir", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "killall: %v\n%s", err, out)
		}
		if keepLog != "" {
			if data, err := os.ReadFile(logf.Name()); err == nil {
				_ = os.WriteFile(keepLog, data, 0o644)
			}
		}
	}()
	ctx := context.Background()
	kube, err := waitClient(ctx, filepath.Join(dir, "kubeconfig.yaml"), 3*time.Minute)
	if err != nil {
		return err
	}
	node, err := waitNodeReady(ctx, kube, 3*time.Minute)
	if err != nil {
		return err
	}
	// What the node holds before any pod of the bench: each run starts once
	// the node is back to it.
	base := currentNodeState(dir)
	// The image archive is imported at start; a first pod proves it is there.
	if _, _, err := deployAndWait(ctx, kube, "warmup", image, 1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := deleteAndWait(ctx, kube, "warmup"); err != nil {
		return err
	}
	if _, err := settle(dir, base, 3*time.Minute); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "machine:", benchutil.Machine())
	type row struct {
		n     int
		times []float64
	}
	var rows []row
	for _, n := range sizes {
		r := row{n: n}
		for i := range runs {
			name := fmt.Sprintf("bench-%d-%d", n, i)
			load := benchutil.LoadAvg()
			opsBefore, _ := kubeletRuntimeOps(ctx, kube, node)
			cpuBefore, busyBefore := applianceTicks(cmd.Process.Pid, dir), machineBusy()
			d, tl, err := deployAndWait(ctx, kube, name, image, n)
			if err != nil {
				return err
			}
			cpu, groups := cpuSummary(cpuSince(cpuBefore, applianceTicks(cmd.Process.Pid, dir)))
			busy := machineBusy() - busyBefore
			fmt.Fprintf(os.Stderr, "%d pods, run %d: %.2fs (%s UTC, load %s before, %s after)\n",
				n, i+1, d.Seconds(), time.Now().UTC().Format("15:04:05"), load, benchutil.LoadAvg())
			fmt.Fprintf(os.Stderr, "  CPU: node %.1f s (%s), whole machine %.1f s busy of %.1f s (%d cores)\n",
				cpu, groups, busy, d.Seconds()*float64(runtime.NumCPU()), runtime.NumCPU())
			if opsAfter, err := kubeletRuntimeOps(ctx, kube, node); err == nil {
				fmt.Fprint(os.Stderr, tl.summary(), opsAfter.since(opsBefore))
			}
			r.times = append(r.times, d.Seconds())
			if err := deleteAndWait(ctx, kube, name); err != nil {
				return err
			}
			took, err := settle(dir, base, 3*time.Minute)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  deleted; node settled %.1f s after the pods left the API\n", took.Seconds())
		}
		rows = append(rows, r)
	}

	var mem memoryUse
	if memory {
		if _, _, err := deployAndWait(ctx, kube, "idle", image, 20); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "20 pods running; idle %s before reading RSS\n", idle)
		time.Sleep(idle)
		mem = appliance(cmd.Process.Pid, dir)
	}

	fmt.Printf("Machine: %s\n\n", benchutil.Machine())
	fmt.Printf("| Deployment applied → all pods Running | median of %d | min | max |\n|---|---|---|---|\n", runs)
	for _, r := range rows {
		lo, hi := r.times[0], r.times[0]
		for _, t := range r.times {
			lo, hi = min(lo, t), max(hi, t)
		}
		fmt.Printf("| %d pod%s | %.2f s | %.2f s | %.2f s |\n", r.n, map[bool]string{true: "s"}[r.n > 1], benchutil.Median(r.times), lo, hi)
	}
	if !memory {
		return nil
	}
	fmt.Printf("\n| Memory idle with 20 pods (after %s) | RSS MiB | PSS MiB | of which anonymous (not page cache) |\n|---|---|---|---|\n", idle)
	fmt.Printf("| fjord (control plane, kubelet, kube-proxy, CoreDNS, metrics-server, GitOps, sealing) | %.0f | %.0f | %.0f |\n", mem.fjord, mem.fjordPSS, mem.fjordAnon)
	fmt.Printf("| containerd (child process) | %.0f | %.0f | %.0f |\n", mem.containerd, mem.containerdPSS, mem.containerdAnon)
	fmt.Printf("| %d runc shims | %.0f | %.0f | %.0f |\n", mem.shims, mem.shimRSS, mem.shimPSS, mem.shimAnon)
	fmt.Printf("| **whole appliance** | **%.0f** (shared pages counted in each process) | **%.0f** | **%.0f** |\n",
		mem.fjord+mem.containerd+mem.shimRSS, mem.fjordPSS+mem.containerdPSS+mem.shimPSS, mem.fjordAnon+mem.containerdAnon+mem.shimAnon)
	return nil
}

type memoryUse struct {
	fjord, containerd, shimRSS          float64 // RSS
	fjordPSS, containerdPSS, shimPSS    float64
	fjordAnon, containerdAnon, shimAnon float64 // PSS of anonymous memory
	shims                               int
}

// appliance sums the RSS of fjord, its containerd child and this node's
// shims (pods' own processes are the workload, not the appliance).
func appliance(pid int, dir string) memoryUse {
	var m memoryUse
	m.fjord, _ = benchutil.MemMiB(pid)
	m.fjordPSS = benchutil.PssMiB(pid)
	m.fjordAnon = benchutil.PssAnonMiB(pid)
	if data, err := os.ReadFile(filepath.Join(dir, "agent", "containerd", "containerd.pid")); err == nil {
		if cpid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			m.containerd, _ = benchutil.MemMiB(cpid)
			m.containerdPSS = benchutil.PssMiB(cpid)
			m.containerdAnon = benchutil.PssAnonMiB(cpid)
		}
	}
	shim := filepath.Join(dir, "agent", "bin", "containerd-shim-runc-v2")
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, e := range exes {
		if target, _ := os.Readlink(e); strings.TrimSuffix(target, " (deleted)") == shim {
			p, _ := strconv.Atoi(strings.Split(e, "/")[2])
			rss, _ := benchutil.MemMiB(p)
			m.shimRSS += rss
			m.shimPSS += benchutil.PssMiB(p)
			m.shimAnon += benchutil.PssAnonMiB(p)
			m.shims++
		}
	}
	return m
}

func waitClient(ctx context.Context, kubeconfig string, timeout time.Duration) (kubernetes.Interface, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
			cfg.QPS, cfg.Burst = 100, 200
			if kube, err := kubernetes.NewForConfig(cfg); err == nil {
				if _, err := kube.Discovery().ServerVersion(); err == nil {
					return kube, nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("API server not ready after %s", timeout)
}

// waitNodeReady returns the name of the one node once it is Ready.
func waitNodeReady(ctx context.Context, kube kubernetes.Interface, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil && len(nodes.Items) == 1 {
			for _, c := range nodes.Items[0].Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nodes.Items[0].Name, nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("node not Ready after %s", timeout)
}

// deployAndWait creates a Deployment of n sleeping pods and returns the
// time from the create call to all n pods Running, and when each pod
// reached each step. It follows the pods with a watch opened before the
// create, not by listing them over and over: a poll every 50 ms made the
// API server encode all n pods 20 times a second, CPU the measured node
// then lacked.
func deployAndWait(ctx context.Context, kube kubernetes.Interface, name, image string, n int) (time.Duration, *timeline, error) {
	labels := map[string]string{"bench": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(n)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					AutomountServiceAccountToken:  ptr.To(false),
					Containers:                    []corev1.Container{{Name: "c", Image: image, Command: []string{"sleep", "1000000"}}},
				},
			},
		},
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	w, err := kube.CoreV1().Pods("default").Watch(wctx, metav1.ListOptions{LabelSelector: "bench=" + name})
	if err != nil {
		return 0, nil, err
	}
	defer w.Stop()
	tl := &timeline{start: time.Now(), pods: map[types.UID]*[milestones]time.Duration{}}
	if _, err := kube.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return 0, nil, err
	}
	running := map[types.UID]bool{}
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			tl.see(p, time.Now())
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running[p.UID] = true
			} else {
				delete(running, p.UID)
			}
		case watch.Deleted:
			delete(running, p.UID)
		}
		if len(running) == n {
			return time.Since(tl.start), tl, nil
		}
	}
	return 0, nil, fmt.Errorf("%s: %d of %d pods Running when the watch ended (%v)", name, len(running), n, wctx.Err())
}

func deleteAndWait(ctx context.Context, kube kubernetes.Interface, name string) error {
	fg := metav1.DeletePropagationForeground
	if err := kube.AppsV1().Deployments("default").Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=" + name})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s: pods not gone within 3m", name)
}
