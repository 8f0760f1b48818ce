//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fjord-dev/fjord/e2e/guide"
)

// testImage is the busybox archive `make images` builds from Debian's
// busybox-static; the e2e target passes both.
func testImage(t *testing.T) (archive, ref string) {
	t.Helper()
	archive, ref = os.Getenv("FJORD_TEST_IMAGE_ARCHIVE"), os.Getenv("FJORD_TEST_IMAGE")
	if archive == "" || ref == "" {
		t.Skip("FJORD_TEST_IMAGE_ARCHIVE and FJORD_TEST_IMAGE not set (make e2e sets them after make images)")
	}
	return archive, ref
}

// hostSysctls are what the kubelet and the node set on the host; the test
// puts them back so runs leave the machine as they found it.
var hostSysctls = []string{
	"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops",
	"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
}

func restoreSysctls(t *testing.T) {
	saved := map[string][]byte{}
	for _, k := range hostSysctls {
		if v, err := os.ReadFile("/proc/sys/" + k); err == nil {
			saved[k] = v
		}
	}
	t.Cleanup(func() {
		for k, v := range saved {
			if err := os.WriteFile("/proc/sys/"+k, v, 0o644); err != nil {
				t.Logf("restoring %s: %v", k, err)
			}
		}
	})
}

// newNodeServer prepares a server with the node agent on (the default).
func newNodeServer(t *testing.T) *server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root")
	}
	s := newServer(t)
	args := s.args[:0]
	for _, a := range s.args {
		if a != "--disable-agent" {
			args = append(args, a)
		}
	}
	s.args = args
	return s
}

// killall runs `fjord killall` for s's data dir.
func (s *server) killall() {
	s.t.Helper()
	out, err := exec.Command(fjordBin, "killall", "--data-dir", s.dataDir).CombinedOutput()
	if err != nil {
		s.t.Errorf("fjord killall: %v\n%s", err, out)
	}
}

func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.waitExit(time.Minute); code != 0 {
		s.t.Fatalf("fjord exited %d on SIGTERM", code)
	}
}

// nodeJSONPath reads path of the only node.
func (s *server) nodeJSONPath(path string) string {
	out, _ := s.kubectl("get", "nodes", "-o", "jsonpath="+path)
	return strings.TrimSpace(out)
}

func (s *server) nodeIP() string {
	return s.nodeJSONPath(`{.items[0].status.addresses[?(@.type=="InternalIP")].address}`)
}

// httpFromPod GETs / of host:80 from inside pod with busybox nc (Debian's
// static busybox wget crashes in its resolver; nc resolves through the
// pod's resolv.conf like any libc client).
func (s *server) httpFromPod(ns, pod, host string) (string, error) {
	out, err := s.kubectl("exec", "-n", ns, pod, "--", "sh", "-c",
		fmt.Sprintf(`printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' | nc -w 3 %s 80`, host, host))
	if err == nil && !strings.Contains(out, "200 OK") {
		err = fmt.Errorf("no 200 OK")
	}
	return out, err
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func (s *server) runningPods(ns, selector string) []string {
	out, _ := s.kubectl("get", "pods", "-n", ns, "-l", selector, "--field-selector=status.phase=Running",
		"-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.metadata.deletionTimestamp}{"\n"}{end}`)
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 1 { // not being deleted
			names = append(names, f[0])
		}
	}
	return names
}

func TestNodeRunsTheGatewayFromGit(t *testing.T) {
	archive, image := testImage(t)
	restoreSysctls(t)
	s := newNodeServer(t)
	t.Cleanup(s.killall)
	images := filepath.Join(s.dataDir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "busybox.tar"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A corrupt archive beside it is logged by name; the others still import.
	if err := os.WriteFile(filepath.Join(images, "broken.tar"), []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.args = append(s.args, "--gitops.poll-interval", "1s")
	s.start()
	s.waitReady(3 * time.Minute)
	eventually(t, 2*time.Minute, "the node Ready", func() error {
		out := s.nodeJSONPath(`{.items[0].status.conditions[?(@.type=="Ready")].status}`)
		if out != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
	if !strings.Contains(s.out.String(), "broken.tar") {
		t.Errorf("the corrupt archive is not named in the log")
	}
	nodeIP := s.nodeIP()

	lbPort := freePort(t)
	repo := newRepo(t, guide.GatewayLayout(image, lbPort))
	eventually(t, time.Minute, "the Application CRD", func() error {
		_, err := s.kubectl("get", "crd", "applications.argoproj.io")
		return err
	})
	s.kubectlApply(argoApp("payment-gateway-oslo", repo.url(), "apps/overlays/production", automatedFull))

	t.Run("the guide's overlay ends with three pods running and the Application Healthy", func(t *testing.T) {
		s.waitApp(t, "payment-gateway-oslo", "Synced and Healthy", 3*time.Minute, func(a appStatus) bool {
			return a.Sync.Status == "Synced" && a.Health.Status == "Healthy"
		})
		if pods := s.runningPods("payments", "app=gateway"); len(pods) != 3 {
			t.Fatalf("running gateway pods: %v", pods)
		}
	})

	t.Run("a pod reaches another through a ClusterIP Service by DNS name", func(t *testing.T) {
		s.mustKubectl("run", "client", "-n", "payments", "--image", image, "--restart=Never", "--", "sleep", "100000")
		eventually(t, time.Minute, "the client pod Running", func() error {
			if p := s.jsonpath("pod", "payments", "client", "{.status.phase}"); p != "Running" {
				return fmt.Errorf("phase %q", p)
			}
			return nil
		})
		eventually(t, time.Minute, "wget of gateway.payments.svc.cluster.local", func() error {
			out, err := s.httpFromPod("payments", "client", "gateway.payments.svc.cluster.local")
			if err != nil || !strings.Contains(out, "gateway gateway-") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		// The short name through the pod's search path, too.
		if out, err := s.httpFromPod("payments", "client", "gateway"); err != nil || !strings.Contains(out, "gateway gateway-") {
			t.Errorf("http://gateway/ from the client pod: %v: %s", err, out)
		}
		out := s.mustKubectl("exec", "-n", "payments", "client", "--", "nslookup", "kubernetes.default.svc.cluster.local")
		if !strings.Contains(out, "10.43.0.1") {
			t.Errorf("nslookup kubernetes.default.svc.cluster.local:\n%s", out)
		}
	})

	t.Run("NodePort and LoadBalancer answer on the node IP", func(t *testing.T) {
		nodePort := s.jsonpath("service", "payments", "gateway-nodeport", "{.spec.ports[0].nodePort}")
		eventually(t, time.Minute, "the NodePort", func() error {
			_, err := httpGet("http://" + net.JoinHostPort(nodeIP, nodePort) + "/")
			return err
		})
		eventually(t, time.Minute, "the LoadBalancer's ingress IP", func() error {
			if ip := s.jsonpath("service", "payments", "gateway-lb", "{.status.loadBalancer.ingress[0].ip}"); ip != nodeIP {
				return fmt.Errorf("ingress %q, want %s", ip, nodeIP)
			}
			return nil
		})
		eventually(t, time.Minute, "the LoadBalancer", func() error {
			_, err := httpGet("http://" + net.JoinHostPort(nodeIP, strconv.Itoa(lbPort)) + "/")
			return err
		})
	})

	t.Run("traffic from a pod leaves the node with the node's address", func(t *testing.T) {
		// A stand-in for a machine outside the node: a network namespace at
		// the end of a veth pair, routed by the host like any other link.
		// The namespace is held by a process, not named with `ip netns add`:
		// that bind-mounts /run/netns over itself and would hide the pods'
		// namespace mounts beneath it, where `fjord killall` cannot reach.
		const hostIP, outIP = "198.51.100.1", "198.51.100.2"
		holder := exec.Command("unshare", "--net", "--", "sleep", "600")
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
		pid := strconv.Itoa(holder.Process.Pid)
		run := func(args ...string) {
			t.Helper()
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		inside := func(args ...string) []string { return append([]string{"nsenter", "-t", pid, "-n"}, args...) }
		// unshare may not have entered its namespace yet: wait until the
		// holder's network namespace is no longer the host's.
		host, _ := os.Readlink("/proc/self/ns/net")
		eventually(t, 10*time.Second, "the outside namespace", func() error {
			if ns, _ := os.Readlink("/proc/" + pid + "/ns/net"); ns == "" || ns == host {
				return fmt.Errorf("not yet unshared")
			}
			return nil
		})
		run("ip", "link", "add", "e2eout0", "type", "veth", "peer", "name", "eth0", "netns", pid)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "e2eout0").Run() })
		run("ip", "addr", "add", hostIP+"/30", "dev", "e2eout0")
		run("ip", "link", "set", "e2eout0", "up")
		run(inside("ip", "addr", "add", outIP+"/30", "dev", "eth0")...)
		run(inside("ip", "link", "set", "eth0", "up")...)
		// The outside machine prints the address each connection comes from.
		listener := exec.Command("nsenter", "-t", pid, "-n", "python3", "-u", "-c", `
import socket
s = socket.socket()
s.bind(("`+outIP+`", 8080))
s.listen()
while True:
    c, peer = s.accept()
    print(peer[0])
    c.close()
`)
		stdout, err := listener.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := listener.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = listener.Process.Kill(); _ = listener.Wait() })
		peers := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				peers <- sc.Text()
			}
		}()
		eventually(t, time.Minute, "a connection from the client pod to "+outIP, func() error {
			_, _ = s.kubectl("exec", "-n", "payments", "client", "--", "sh", "-c", "echo hello | nc -w 2 "+outIP+" 8080")
			select {
			case peer := <-peers:
				if peer != hostIP {
					t.Fatalf("the outside machine saw the pod's connection come from %s; want the node's address %s (pods masqueraded)", peer, hostIP)
				}
				return nil
			case <-time.After(3 * time.Second):
				return fmt.Errorf("no connection arrived")
			}
		})
	})

	t.Run("logs, exec, port-forward and top work", func(t *testing.T) {
		pod := s.runningPods("payments", "app=gateway")[0]
		if out := s.mustKubectl("logs", "-n", "payments", pod); !strings.Contains(out, "serving") {
			t.Errorf("kubectl logs: %q", out)
		}
		if out := s.mustKubectl("exec", "-n", "payments", pod, "--", "cat", "/www/index.html"); !strings.Contains(out, pod) {
			t.Errorf("kubectl exec: %q", out)
		}
		local := freePort(t)
		pf := exec.Command(kubectlBin, "--kubeconfig", s.kubeconfig(), "port-forward", "-n", "payments", "pod/"+pod, fmt.Sprintf("%d:8080", local))
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pf.Process.Kill(); pf.Wait() }()
		eventually(t, 30*time.Second, "port-forward", func() error {
			out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", local))
			if err == nil && !strings.Contains(out, pod) {
				return fmt.Errorf("answered %q", out)
			}
			return err
		})
		eventually(t, 2*time.Minute, "kubectl top node", func() error {
			out, err := s.kubectl("top", "node")
			if err != nil || !strings.Contains(out, "CPU") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		eventually(t, 2*time.Minute, "kubectl top pod", func() error {
			out, err := s.kubectl("top", "pod", "-n", "payments", pod)
			if err != nil || !strings.Contains(out, pod) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})

	t.Run("a deleted pod is recreated", func(t *testing.T) {
		pod := s.runningPods("payments", "app=gateway")[0]
		s.mustKubectl("delete", "pod", "-n", "payments", pod, "--wait=false")
		eventually(t, 2*time.Minute, "three running gateway pods without the deleted one", func() error {
			pods := s.runningPods("payments", "app=gateway")
			if len(pods) != 3 || strings.Contains(strings.Join(pods, " "), pod) {
				return fmt.Errorf("running: %v", pods)
			}
			return nil
		})
	})

	t.Run("an image in no archive says where archives go", func(t *testing.T) {
		s.mustKubectl("run", "missing", "-n", "payments", "--image", "registry.example/nothere:1", "--restart=Never")
		eventually(t, 2*time.Minute, "the ImageNotInArchive event", func() error {
			out, _ := s.kubectl("get", "events", "-n", "payments", "--field-selector", "involvedObject.name=missing,reason=ImageNotInArchive", "-o", "jsonpath={.items[*].message}")
			if !strings.Contains(out, images) {
				return fmt.Errorf("events: %q", out)
			}
			return nil
		})
		s.mustKubectl("delete", "pod", "-n", "payments", "missing", "--wait=false")
	})

	t.Run("archives are imported when they appear and by fjord images import", func(t *testing.T) {
		tool := filepath.Join(t.TempDir(), "tool.tar")
		out, code := runFjord(t, nil, "images", "build", "--busybox", "/bin/busybox", "--name", "registry.example/tool:1", "-o", tool)
		if code != 0 {
			t.Fatalf("fjord images build: %s", out)
		}
		data, err := os.ReadFile(tool)
		if err != nil {
			t.Fatal(err)
		}
		// Written under a name the watcher skips, then renamed: what a copy tool does.
		if err := os.WriteFile(filepath.Join(images, ".tool.tar.part"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(images, ".tool.tar.part"), filepath.Join(images, "tool.tar")); err != nil {
			t.Fatal(err)
		}
		s.mustKubectl("run", "tool", "-n", "payments", "--image", "registry.example/tool:1", "--restart=Never", "--", "sleep", "100000")
		eventually(t, time.Minute, "the pod of the dropped-in archive's image Running", func() error {
			if p := s.jsonpath("pod", "payments", "tool", "{.status.phase}"); p != "Running" {
				return fmt.Errorf("phase %q", p)
			}
			return nil
		})
		other := filepath.Join(t.TempDir(), "other.tar")
		if out, code := runFjord(t, nil, "images", "build", "--busybox", "/bin/busybox", "--name", "registry.example/other:2", "-o", other); code != 0 {
			t.Fatalf("fjord images build: %s", out)
		}
		if out, code := runFjord(t, nil, "images", "import", "--data-dir", s.dataDir, other); code != 0 || !strings.Contains(out, "registry.example/other:2") {
			t.Fatalf("fjord images import: exit %d\n%s", code, out)
		}
		out, code = runFjord(t, nil, "images", "list", "--data-dir", s.dataDir)
		for _, want := range []string{"registry.example/other:2", "registry.example/tool:1", image, "docker.io/fjord/pause:1"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("fjord images list lacks %s:\n%s", want, out)
			}
		}
		s.mustKubectl("delete", "pod", "-n", "payments", "tool", "--grace-period=1", "--wait=false")
	})

	t.Run("a crash-looping pod gets normal status and Fjord is unaffected", func(t *testing.T) {
		s.mustKubectl("run", "crasher", "-n", "payments", "--image", image, "--", "sh", "-c", "echo dying; exit 3")
		eventually(t, 2*time.Minute, "a restart after exit code 3", func() error {
			code := s.jsonpath("pod", "payments", "crasher", "{.status.containerStatuses[0].lastState.terminated.exitCode}")
			restarts := s.jsonpath("pod", "payments", "crasher", "{.status.containerStatuses[0].restartCount}")
			if code != "3" || restarts == "0" || restarts == "" {
				return fmt.Errorf("last exit code %q, restarts %q", code, restarts)
			}
			return nil
		})
		// The kubelet may be between two restarts; the previous log follows.
		eventually(t, 30*time.Second, "kubectl logs --previous", func() error {
			if out, err := s.kubectl("logs", "-n", "payments", "crasher", "--previous"); err != nil || !strings.Contains(out, "dying") {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
		if !s.running() {
			t.Fatal("fjord server exited")
		}
		s.mustKubectl("delete", "pod", "-n", "payments", "crasher", "--grace-period=1", "--wait=false")
	})

	t.Run("a claim larger than the disk is refused with an event that says so", func(t *testing.T) {
		s.kubectlApply(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: huge, namespace: payments}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Ei}}
---
apiVersion: v1
kind: Pod
metadata: {name: huge, namespace: payments}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: ` + image + `, command: [sleep, "100000"], volumeMounts: [{name: d, mountPath: /d}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: huge}}]
`)
		eventually(t, time.Minute, "a ProvisioningFailed event naming the space", func() error {
			out, _ := s.kubectl("get", "events", "-n", "payments", "--field-selector", "involvedObject.name=huge,reason=ProvisioningFailed", "-o", "jsonpath={.items[*].message}")
			if !strings.Contains(out, "not enough space") {
				return fmt.Errorf("events: %q", out)
			}
			return nil
		})
		eventually(t, time.Minute, "the pod's event naming the space", func() error {
			out, _ := s.kubectl("get", "events", "-n", "payments", "--field-selector", "involvedObject.kind=Pod,involvedObject.name=huge,reason=VolumeNotProvisioned", "-o", "jsonpath={.items[*].message}")
			if !strings.Contains(out, "not enough space") {
				return fmt.Errorf("events: %q", out)
			}
			return nil
		})
		if p := s.jsonpath("pod", "payments", "huge", "{.status.phase}"); p != "Pending" {
			t.Errorf("pod phase %q, want Pending", p)
		}
		s.mustKubectl("delete", "pod,pvc", "-n", "payments", "huge", "--grace-period=1", "--wait=false")
	})

	var storePod, boots string
	t.Run("a volume keeps its data when its pod is deleted", func(t *testing.T) {
		eventually(t, 2*time.Minute, "the store pod", func() error {
			if p := s.runningPods("payments", "app=store"); len(p) == 1 {
				storePod = p[0]
				return nil
			}
			return fmt.Errorf("not running")
		})
		if phase := s.jsonpath("pvc", "payments", "ledger", "{.status.phase}"); phase != "Bound" {
			t.Fatalf("pvc phase %q", phase)
		}
		s.mustKubectl("delete", "pod", "-n", "payments", storePod, "--grace-period=1")
		eventually(t, 2*time.Minute, "the store pod back with two boots on its volume", func() error {
			p := s.runningPods("payments", "app=store")
			if len(p) != 1 || p[0] == storePod {
				return fmt.Errorf("pods %v", p)
			}
			out, err := s.kubectl("exec", "-n", "payments", p[0], "--", "cat", "/data/boots")
			if err != nil || len(strings.Fields(strings.TrimSpace(out))) == 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 {
				return fmt.Errorf("%v: %q", err, out)
			}
			storePod, boots = p[0], out
			return nil
		})
	})

	t.Run("pods outlive a restart of fjord server and the volume keeps its data", func(t *testing.T) {
		before := s.jsonpath("pod", "payments", storePod, "{.status.containerStatuses[0].containerID}")
		s.stop()
		s.start()
		s.waitReady(3 * time.Minute)
		eventually(t, 2*time.Minute, "the store pod still running, same container", func() error {
			id := s.jsonpath("pod", "payments", storePod, "{.status.containerStatuses[0].containerID}")
			ready := s.jsonpath("pod", "payments", storePod, `{.status.conditions[?(@.type=="Ready")].status}`)
			if id != before || ready != "True" {
				return fmt.Errorf("container %q (was %q), ready %q", id, before, ready)
			}
			return nil
		})
		// The kubelet serves exec again a moment after the API server is ready.
		eventually(t, time.Minute, "the volume's data through exec after the restart", func() error {
			out, err := s.kubectl("exec", "-n", "payments", storePod, "--", "cat", "/data/boots")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if out != boots {
				t.Fatalf("volume after restart: %q, before %q", out, boots)
			}
			return nil
		})
		eventually(t, time.Minute, "the gateway through its ClusterIP after the restart", func() error {
			out, err := s.httpFromPod("payments", "client", "gateway")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})

	t.Run("a volume is removed with its claim when the store leaves Git", func(t *testing.T) {
		pv := s.jsonpath("pvc", "payments", "ledger", "{.spec.volumeName}")
		out, _ := s.kubectl("get", "pv", pv, "-o", "jsonpath={.spec.local.path}")
		path := strings.TrimSpace(out)
		if _, err := os.Stat(path); err != nil || !strings.HasPrefix(path, s.dataDir) {
			t.Fatalf("volume %s at %q: %v", pv, path, err)
		}
		rev := repo.commit("the store leaves", map[string]string{
			"apps/base/store.yaml":         "",
			"apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n",
		})
		s.waitApp(t, "payment-gateway-oslo", "synced without the store", 3*time.Minute, func(a appStatus) bool {
			return a.Sync.Status == "Synced" && a.Sync.Revision == rev
		})
		eventually(t, 2*time.Minute, "the volume's directory removed", func() error {
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				return fmt.Errorf("%s still there (%v)", path, err)
			}
			return nil
		})
		storePod = s.runningPods("payments", "app=gateway")[0]
	})

	t.Run("containerd killed -9 is restarted and pods keep running", func(t *testing.T) {
		pidFile := filepath.Join(s.dataDir, "agent", "containerd", "containerd.pid")
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "a new containerd serving exec", func() error {
			d, _ := os.ReadFile(pidFile)
			if strings.TrimSpace(string(d)) == strconv.Itoa(pid) {
				return fmt.Errorf("not restarted")
			}
			_, err := s.kubectl("exec", "-n", "payments", storePod, "--", "true")
			return err
		})
		if !s.running() {
			t.Fatal("fjord server exited when containerd was killed")
		}
	})

	t.Run("fjord killall leaves no container, interface, rule or mount behind", func(t *testing.T) {
		s.stop()
		s.killall()
		if out, _ := exec.Command("ip", "link", "show", "cni0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
			t.Errorf("cni0 still there: %s", out)
		}
		if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), "KUBE-") || strings.Contains(string(out), "CNI-") {
			t.Errorf("rules left behind:\n%s", grepLines(string(out), "KUBE-", "CNI-"))
		}
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), s.dataDir) || strings.Contains(string(mounts), "/run/netns/cni-") {
			t.Errorf("mounts left behind:\n%s", grepLines(string(mounts), s.dataDir, "/run/netns/cni-"))
		}
		shim := filepath.Join(s.dataDir, "agent", "bin", "containerd-shim-runc-v2")
		eventually(t, 10*time.Second, "no shim left", func() error {
			procs, _ := filepath.Glob("/proc/[0-9]*/exe")
			for _, p := range procs {
				if exe, _ := os.Readlink(p); strings.TrimSuffix(exe, " (deleted)") == shim {
					return fmt.Errorf("a shim still runs: %s", p)
				}
			}
			return nil
		})
	})
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestNodeAgentRefusesClearly: a host that cannot run the node is refused
// before anything starts, with the way out named.
func TestNodeAgentRefusesClearly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user")
	}
	t.Run("without root and without --disable-agent", func(t *testing.T) {
		// Not t.TempDir: its parent is 0700, and the other user must reach it.
		dir, err := os.MkdirTemp("", "fjord-nonroot-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", fjordBin,
			"server", "--data-dir", filepath.Join(dir, "data"), "--config", filepath.Join(dir, "none.yaml"))
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want 1:\n%s", err, out)
		}
		mustContain(t, string(out), "must run as root", "--disable-agent")
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Errorf("the data dir was created before the refusal")
		}
	})
	t.Run("without the CNI plugins", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := runFjord(t, nil, "server", "--data-dir", filepath.Join(dir, "data"), "--config", filepath.Join(dir, "none.yaml"),
			"--cni-bin-dir", filepath.Join(dir, "no-cni"), "--runc", "no-such-runc")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		mustContain(t, out, "containernetworking-plugins", "bridge, host-local, portmap", "no-such-runc", "Debian's runc package")
	})
}
