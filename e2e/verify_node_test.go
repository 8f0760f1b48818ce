//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nodeLeftovers lists what a node leaves on the host while its pods run:
// shims, the cni0 bridge. A clean `fjord verify --with-node` or `fjord down`
// leaves none of it.
func nodeLeftovers(t *testing.T, dataDir string) []string {
	t.Helper()
	var left []string
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		exe, _ := os.Readlink(p)
		if strings.HasPrefix(exe, dataDir) {
			left = append(left, "process "+exe)
		}
	}
	if _, err := os.Stat("/sys/class/net/cni0"); err == nil {
		left = append(left, "the cni0 bridge")
	}
	return left
}

// workloadLayout is a Deployment of the test image behind a Service, and
// (in overlays/missing-image) the same with an image no archive holds.
func workloadLayout(image string) map[string]string {
	return map[string]string{
		"apps/base/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: %s
        command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www']
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, image),
		"apps/base/kustomization.yaml":          "resources:\n- deployment.yaml\n",
		"apps/overlays/good/kustomization.yaml": "resources:\n- ../../base\n",
		"apps/overlays/missing-image/kustomization.yaml": "resources:\n- ../../base\nimages:\n- name: " +
			strings.SplitN(image, ":", 2)[0] + "\n  newName: registry.invalid/nobody/has-this\n  newTag: \"1\"\n",
	}
}

func TestVerifyWithNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root")
	}
	archive, image := testImage(t)
	restoreSysctls(t)
	repo := newRepo(t, workloadLayout(image))

	t.Run("pods of the overlay turn Running and the Deployment Healthy, exit 0, nothing left behind", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--with-node", "--image-archive", archive, "apps/overlays/good")
		r.expect(t, 0, "control plane and node ready", "PASSED")
		if !regexp.MustCompile(`(?m)^Deployment\s+default\s+web\s+Healthy`).MatchString(r.out) {
			t.Errorf("no healthy Deployment row:\n%s", r.out)
		}
		if strings.Contains(r.out, "not judged") {
			t.Errorf("with a node, health is judged:\n%s", r.out)
		}
		if m := throwawayRE.FindStringSubmatch(r.out); m != nil {
			if left := nodeLeftovers(t, m[1]); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		}
	})
	t.Run("an image that is in no archive fails the Deployment with the pod's reason, exit 1", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--with-node", "--image-archive", archive, "--timeout", "40s", "apps/overlays/missing-image")
		r.expect(t, 1, "FAILED", "registry.invalid/nobody/has-this")
		if !regexp.MustCompile(`(?m)^Deployment\s+default\s+web\s+Failed\s+.*pod web-\S+: httpd (ErrImagePull|ImagePullBackOff)`).MatchString(r.out) {
			t.Errorf("the failure does not name the pod's reason:\n%s", r.out)
		}
		r.failedInJUnit(t, "Deployment/default/web", "ImagePull")
	})
	t.Run("without root it refuses before starting anything, exit 2", func(t *testing.T) {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("no setpriv")
		}
		cmd := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", fjordBin, "verify", "--with-node", repo.dir)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "needs root") {
			t.Errorf("exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
		}
	})
	t.Run("--image-archive without --with-node is a usage error", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--image-archive", archive, "apps/overlays/good")
		r.expect(t, 2, "--image-archive needs --with-node")
	})
}

func TestUpWithNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root")
	}
	archive, image := testImage(t)
	restoreSysctls(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"), "KUBECONFIG=" + filepath.Join(home, "kube", "config")}
	t.Cleanup(func() {
		cmd := exec.Command(fjordBin, "down", "node") // t.Context() has ended here
		cmd.Env = append(os.Environ(), env...)
		cmd.Run()
	})
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(kubectlBin, append([]string{"--context", "fjord-node"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dataDir := filepath.Join(home, "state", "fjord", "node", "data")

	out, code := runFjord(t, env, "up", "--with-node", "--image-archive", archive, "node")
	if code != 0 {
		t.Fatalf("fjord up --with-node: exit %d\n%s", code, out)
	}
	mustContain(t, out, `Cluster "node" is ready`)
	t.Run("a second node on the machine is refused, naming the port", func(t *testing.T) {
		out, code := runFjord(t, env, "up", "--with-node", "other")
		if code == 0 || !strings.Contains(out, "a node already runs on this machine") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("the node is Ready and a pod of the imported image runs", func(t *testing.T) {
		eventually(t, 2*time.Minute, "node Ready", func() error {
			out, err := kubectl("get", "nodes", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
			if err != nil || strings.TrimSpace(out) != "True" {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		})
		// The controller-manager makes the namespace's default
		// ServiceAccount shortly after start; pods are refused until then.
		eventually(t, time.Minute, "the default ServiceAccount", func() error {
			out, err := kubectl("get", "serviceaccount", "default")
			if err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		})
		if out, err := kubectl("run", "hello", "--image", image, "--restart", "Never", "--", "sh", "-c", "echo hello from fjord up"); err != nil {
			t.Fatalf("kubectl run: %v\n%s", err, out)
		}
		eventually(t, 2*time.Minute, "the pod's log", func() error {
			out, err := kubectl("logs", "hello")
			if err != nil || !strings.Contains(out, "hello from fjord up") {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		})
	})
	t.Run("down stops the pods and removes the node from the host", func(t *testing.T) {
		out, code := runFjord(t, env, "down", "node")
		if code != 0 {
			t.Fatalf("fjord down: exit %d\n%s", code, out)
		}
		if left := nodeLeftovers(t, dataDir); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Errorf("%s is still there", dataDir)
		}
	})
}
