//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podState is what says a pod was not restarted: its UID and its
// containers' IDs and restart counts.
type podState struct {
	UID        string
	Containers string
}

// gatewayPods returns the Running and Ready pods of the gateway Application
// by name, or an error saying what is missing.
func (n *bootNode) gatewayPods() (map[string]podState, error) {
	out, err := n.kubectl("get", "pods", "-n", "payments", "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, tail(out, 300))
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				UID    string            `json:"uid"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Status struct {
				Phase      string `json:"phase"`
				Conditions []struct{ Type, Status string }
				Containers []struct {
					ContainerID  string `json:"containerID"`
					RestartCount int    `json:"restartCount"`
					Ready        bool   `json:"ready"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("%v: %s", err, tail(out, 300))
	}
	pods := map[string]podState{}
	gateways := 0
	for _, p := range list.Items {
		ready := p.Status.Phase == "Running"
		var ids []string
		for _, c := range p.Status.Containers {
			ready = ready && c.Ready
			ids = append(ids, c.ContainerID+"#"+strconv.Itoa(c.RestartCount))
		}
		if !ready {
			continue
		}
		if p.Metadata.Labels["app"] == "gateway" {
			gateways++
		}
		pods[p.Metadata.Name] = podState{UID: p.Metadata.UID, Containers: strings.Join(ids, ",")}
	}
	if gateways != 3 || len(pods) != 4 {
		return pods, fmt.Errorf("%d gateway pods and %d pods Running and Ready, want 3 and 4", gateways, len(pods))
	}
	return pods, nil
}

// application returns the gateway Application's sync status, health and
// revision.
func (n *bootNode) application() (sync, health, rev string) {
	out, _ := n.kubectl("get", "application", "gateway", "-n", "argocd", "-o",
		`jsonpath={.status.sync.status} {.status.health.status} {.status.sync.revision}`)
	f := strings.Fields(out)
	for len(f) < 3 {
		f = append(f, "")
	}
	return f[0], f[1], f[2]
}

// waitSettled waits for the unit to be active (READY=1), the Application
// synced to rev and Healthy, and the pods Running and Ready; it returns them.
func (n *bootNode) waitSettled(timeout time.Duration, rev string) map[string]podState {
	n.t.Helper()
	eventually(n.t, timeout, n.name+": fjord.service active", func() error {
		if p := n.unit("fjord", "ActiveState", "SubState"); p["ActiveState"] != "active" {
			return fmt.Errorf("%v", p)
		}
		return nil
	})
	var pods map[string]podState
	eventually(n.t, timeout, n.name+": the gateway synced, Healthy, pods Running", func() error {
		if s, h, r := n.application(); s != "Synced" || h != "Healthy" || r != rev {
			return fmt.Errorf("application %s %s @%s", s, h, r)
		}
		var err error
		pods, err = n.gatewayPods()
		return err
	})
	return pods
}

func samePods(t *testing.T, what string, before, after map[string]podState) {
	t.Helper()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("%s: the pods changed (restarted or replaced)\nbefore %v\nafter  %v", what, before, after)
	}
}

// restarted waits until fjord.service was started again after the main
// process before, and is active (READY=1) again.
func (n *bootNode) restarted(timeout time.Duration, before string) {
	n.t.Helper()
	eventually(n.t, timeout, n.name+": fjord.service restarted and ready", func() error {
		p := n.unit("fjord", "MainPID", "ActiveState", "SubState", "NRestarts")
		if p["MainPID"] == before || p["MainPID"] == "0" || p["ActiveState"] != "active" {
			return fmt.Errorf("%v", p)
		}
		return nil
	})
}

// TestBootNodeGateway is scenarios 1–4 and 7 of issue 10 on one node, one
// after the other (each step leaves the node as the next expects, which
// keeps CI to one boot), then 6 on a second, fresh node.
func TestBootNodeGateway(t *testing.T) {
	lab := newNodeLab(t)
	rev := lab.repo.head()
	// A fast watchdog so the hung-fjord step takes seconds, not minutes;
	// the rest of the unit is what `fjord install` writes.
	n := lab.boot("fjord-n1", nodeOptions{dropIn: "[Service]\nWatchdogSec=20s\nTimeoutAbortSec=5s\n"})

	var pods map[string]podState
	t.Run("boots, runs cloud-init, is READY with the guide's Application synced and 3 pods Running", func(t *testing.T) {
		n.t = t
		eventually(t, 2*time.Minute, "cloud-init wrote the seed", func() error {
			if p := n.unit("cloud-init.service", "ActiveState"); p["ActiveState"] != "active" {
				return fmt.Errorf("%v", p)
			}
			return nil
		})
		eventually(t, 3*time.Minute, "fjord.service active (READY=1)", func() error {
			if p := n.unit("fjord", "ActiveState", "SubState", "StatusText"); p["ActiveState"] != "active" {
				return fmt.Errorf("%v", p)
			}
			return nil
		})
		var synced time.Duration
		eventually(t, 2*time.Minute, "the Application synced", func() error {
			if s, _, r := n.application(); s != "Synced" || r != rev {
				return fmt.Errorf("%s @%s", s, r)
			}
			synced = time.Since(n.started)
			return nil
		})
		pods = n.waitSettled(2*time.Minute, rev)
		running := time.Since(n.started)
		// From systemd's own timestamps (the node shares the host's
		// monotonic clock): boot is systemd starting its first unit,
		// cloud-init is the seed applied (files written, runcmd next).
		first := n.unit("cloud-init-local.service", "InactiveExitTimestampMonotonic")
		ci := n.unit("cloud-config.service", "ActiveEnterTimestampMonotonic")
		fj := n.unit("fjord", "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "StatusText")
		ms := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
		t.Logf("PHASES node=%s boot=%s cloud-init=%s fjord-start=%s ready=%s synced≤%s pods-running≤%s",
			n.name, ms(n.since(first["InactiveExitTimestampMonotonic"])), ms(n.since(ci["ActiveEnterTimestampMonotonic"])),
			ms(n.since(fj["ExecMainStartTimestampMonotonic"])), ms(n.since(fj["ActiveEnterTimestampMonotonic"])),
			ms(synced), ms(running))
		t.Logf("status: %s", fj["StatusText"])
		if !strings.HasPrefix(fj["StatusText"], "synced gateway @"+rev[:7]) {
			t.Errorf("STATUS %q does not show the sync", fj["StatusText"])
		}
		// READY=1 came after the first sync was attempted: the journal says
		// so in this order.
		j := n.mustExec("journalctl", "--no-pager", "-o", "cat", "-u", "fjord")
		if a, r := strings.Index(j, "application=gateway"), strings.Index(j, "fjord is ready"); a < 0 || r < 0 || r < a {
			t.Errorf("READY (%d) before the first sync of gateway (%d) in the journal", r, a)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("kill -9 of fjord: systemd restarts it, the pods were never restarted, nothing is lost", func(t *testing.T) {
		n.t = t
		n.mustExec("/usr/local/bin/fjord", "kubectl", "create", "configmap", "before-kill", "-n", "payments", "--from-literal=k=v")
		pid := n.unit("fjord", "MainPID")["MainPID"]
		n.mustExec("kill", "-9", pid)
		n.restarted(3*time.Minute, pid)
		samePods(t, "after kill -9", pods, n.waitSettled(2*time.Minute, rev))
		if out, err := n.kubectl("get", "configmap", "before-kill", "-n", "payments", "-o", "jsonpath={.data.k}"); err != nil || out != "v" {
			t.Fatalf("the ConfigMap written before the kill is gone: %v %s", err, out)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("a hung fjord (SIGSTOP): the watchdog fires and systemd restarts it", func(t *testing.T) {
		n.t = t
		pid := n.unit("fjord", "MainPID")["MainPID"]
		n.mustExec("kill", "-STOP", pid)
		n.restarted(3*time.Minute, pid)
		if j := n.mustExec("journalctl", "--no-pager", "-o", "cat", "-u", "fjord"); !strings.Contains(j, "Watchdog timeout") {
			t.Fatalf("no watchdog timeout in the journal:\n%s", tail(j, 2000))
		}
		samePods(t, "after the watchdog restart", pods, n.waitSettled(2*time.Minute, rev))
	})
	if t.Failed() {
		return
	}

	t.Run("systemctl stop: a clean stop, the pods keep running; start adopts them", func(t *testing.T) {
		n.t = t
		n.mustExec("systemctl", "stop", "fjord")
		p := n.unit("fjord", "ActiveState", "Result", "ExecMainStatus")
		if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainStatus"] != "0" {
			t.Fatalf("not a clean stop: %v", p)
		}
		if out, _ := n.exec("pgrep", "-c", "-x", "httpd"); strings.TrimSpace(out) != "3" {
			t.Fatalf("%s httpd processes while fjord is stopped, want the 3 pods' ones", strings.TrimSpace(out))
		}
		n.mustExec("systemctl", "start", "fjord") // returns at READY=1
		samePods(t, "after stop and start", pods, n.waitSettled(2*time.Minute, rev))
	})
	if t.Failed() {
		return
	}

	t.Run("nothing leaves the node but the Git fetch and DNS", func(t *testing.T) {
		bad, all, err := n.capture.offenders(lab.gitAndDNSOnly)
		t.Logf("traffic off %s: %s", n.name, strings.Join(all, "; "))
		if err != nil {
			t.Fatalf("the capture failed: %v", err)
		}
		if len(bad) > 0 {
			t.Fatalf("traffic to other destinations: %s", strings.Join(bad, "; "))
		}
		if !strings.Contains(strings.Join(all, ";"), "tcp "+hostIP+":"+strconv.Itoa(lab.sshPort)) {
			t.Fatal("no Git fetch seen: the capture does not see the node's traffic")
		}
	})
	if t.Failed() {
		return
	}

	t.Run("a second node bootstrapped with the first's sealing keys decrypts the same SealedSecrets", func(t *testing.T) {
		n.t = t
		cert := filepath.Join(lab.dir, "cert.pem")
		if err := os.WriteFile(cert, []byte(n.mustExec("/usr/local/bin/fjord", "cert")), 0o644); err != nil {
			t.Fatal(err)
		}
		secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: ledger-key, namespace: payments}\nstringData: {key: s3cr3t-from-git}\n"
		sealed, stderr, code := runSplitStdin(t, secret, "seal", "--cert", cert)
		if code != 0 {
			t.Fatalf("fjord seal: exit %d: %s", code, stderr)
		}
		rev := lab.push("a sealed secret", map[string]string{
			"apps/overlays/production/sealed.yaml":        sealed,
			"apps/overlays/production/kustomization.yaml": "resources:\n- ../../base\n- sealed.yaml\npatches:\n- path: patch-replicas.yaml\n",
		})
		want := decryptedOn(t, n, rev)
		n.mustExec("/usr/local/bin/fjord", "sealing-keys", "export", "/var/lib/fjord/keys-backup.yaml")
		// Out of the node's directory, which goes with the node.
		data, err := os.ReadFile(filepath.Join(n.dir, "data", "keys-backup.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		keys := filepath.Join(lab.dir, "keys-backup.yaml")
		if err := os.WriteFile(keys, data, 0o600); err != nil {
			t.Fatal(err)
		}
		n.destroy() // one node at a time on these 2 cores

		// Over http this time: the other transport.
		m := lab.boot("fjord-n2", nodeOptions{repoURL: lab.httpURL, sealingKeys: keys})
		m.t = t
		if got := decryptedOn(t, m, rev); got != want {
			t.Fatalf("the second node decrypted %q, the first %q", got, want)
		}
		bad, all, _ := m.capture.offenders(lab.gitAndDNSOnly)
		t.Logf("traffic off %s: %s", m.name, strings.Join(all, "; "))
		if len(bad) > 0 {
			t.Fatalf("traffic to other destinations: %s", strings.Join(bad, "; "))
		}
	})
}

// decryptedOn waits for the SealedSecret's Secret on n once rev is synced
// and returns its value.
func decryptedOn(t *testing.T, n *bootNode, rev string) string {
	t.Helper()
	var got string
	eventually(t, 4*time.Minute, n.name+": the Secret decrypted from Git", func() error {
		if s, _, r := n.application(); s != "Synced" || r != rev {
			return fmt.Errorf("application %s @%s", s, r)
		}
		out, err := n.kubectl("get", "secret", "ledger-key", "-n", "payments", "-o", "jsonpath={.data.key}")
		if err != nil || out == "" {
			return fmt.Errorf("%v %s", err, tail(out, 200))
		}
		got = out
		return nil
	})
	return got
}

// TestBootNodeFsyncGateFails is scenario 5: with an absurd fsync limit the
// unit fails with the gate's message in systemctl status and the journal,
// restarts no faster than RestartSec, and stops at the start limit.
func TestBootNodeFsyncGateFails(t *testing.T) {
	lab := newNodeLab(t)
	n := lab.boot("fjord-n3", nodeOptions{config: []string{"fsync-gate=enforce", "fsync-p99-max=1us"}})
	eventually(t, 5*time.Minute, "fjord.service failed at its start limit", func() error {
		p := n.unit("fjord", "ActiveState", "Result", "NRestarts", "StatusText")
		if p["ActiveState"] != "failed" {
			return fmt.Errorf("%v", p)
		}
		return nil
	})
	p := n.unit("fjord", "ActiveState", "Result", "NRestarts", "StatusText")
	t.Logf("fjord.service: %v", p)
	if !strings.Contains(p["StatusText"], "fsync gate: p99 fdatasync") || !strings.Contains(p["StatusText"], "exceeds the 1µs limit") {
		t.Errorf("the status does not give the gate's message: %q", p["StatusText"])
	}
	status, _ := n.exec("systemctl", "--no-pager", "status", "fjord")
	if !strings.Contains(status, "fsync gate: p99 fdatasync") {
		t.Errorf("systemctl status does not show the gate's message:\n%s", status)
	}
	journal := n.mustExec("journalctl", "--no-pager", "-o", "short-monotonic", "-u", "fjord")
	if !strings.Contains(journal, "fsync gate: p99 fdatasync") {
		t.Errorf("the journal does not have the gate's message:\n%s", tail(journal, 3000))
	}
	// Not hot: every start at least RestartSec (10s) after the one before,
	// and no more than StartLimitBurst (5) of them.
	var starts []float64
	for _, line := range strings.Split(journal, "\n") {
		if strings.Contains(line, "Starting fjord.service") || strings.Contains(line, "Starting Fjord") {
			if i, j := strings.Index(line, "["), strings.Index(line, "]"); i >= 0 && j > i {
				v, _ := strconv.ParseFloat(strings.TrimSpace(line[i+1:j]), 64)
				starts = append(starts, v)
			}
		}
	}
	t.Logf("starts at %v (monotonic s)", starts)
	if len(starts) < 2 || len(starts) > 5 {
		t.Errorf("%d starts, want 2 to 5 (StartLimitBurst)", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i] - starts[i-1]; d < 9.5 {
			t.Errorf("start %d came %.1fs after the one before: looping hot", i+1, d)
		}
	}
}

// runSplitStdin runs fjord with stdin and returns stdout, stderr and the
// exit code.
func runSplitStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(fjordBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}
