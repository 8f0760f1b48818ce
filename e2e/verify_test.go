//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fjord-dev/fjord/appliance/sealing"
)

// verifyRun is one `fjord verify` and what it reported.
type verifyRun struct {
	out   string // stdout and stderr
	code  int
	junit string // the JUnit file
}

// runVerify runs `fjord verify --junit FILE args…` in dir and checks that
// the throwaway server and its data are gone afterwards, whatever the
// outcome.
func runVerify(t *testing.T, dir string, args ...string) verifyRun {
	t.Helper()
	junit := filepath.Join(t.TempDir(), "junit.xml")
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fjordBin, append([]string{"verify", "--junit", junit}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	r := verifyRun{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(junit)
	r.junit = string(data)
	assertCleanedUp(t, r.out)
	return r
}

var throwawayRE = regexp.MustCompile(`throwaway data in (\S+)\)`)

// assertCleanedUp checks that the data dir a verify named is gone and that
// no process still runs on it.
func assertCleanedUp(t *testing.T, out string) {
	t.Helper()
	m := throwawayRE.FindStringSubmatch(out)
	if m == nil {
		return // no server was started
	}
	if _, err := os.Stat(m[1]); err == nil {
		t.Errorf("the throwaway data dir %s is still there", m[1])
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if cmdline, err := os.ReadFile(p); err == nil && strings.Contains(string(cmdline), m[1]) {
			t.Errorf("a process still runs on %s: %s", m[1], strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

func (r verifyRun) expect(t *testing.T, code int, wants ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\n%s", r.code, code, r.out)
	}
	mustContain(t, r.out, wants...)
}

// failedInJUnit checks that the JUnit file has a failed test case whose
// name contains name and whose failure says reason.
func (r verifyRun) failedInJUnit(t *testing.T, name, reason string) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<testcase [^>]*name="[^"]*` + regexp.QuoteMeta(name) + `[^"]*">\s*<failure message="([^"]*)"`)
	m := re.FindStringSubmatch(r.junit)
	if m == nil || !strings.Contains(strings.ReplaceAll(m[1], "&#34;", `"`), reason) {
		t.Errorf("no failed test case %q saying %q in the JUnit file:\n%s", name, reason, r.junit)
	}
}

func TestVerifyGuideOverlay(t *testing.T) {
	repo := newRepo(t, argoLayout())
	t.Run("the production overlay applies, exit 0, with the table", func(t *testing.T) {
		r := runVerify(t, repo.dir, "apps/overlays/production")
		r.expect(t, 0, "KIND", "NAMESPACE", "RESULT", "MESSAGE", "render", "dry run", "apply", "health", "PASSED: 2 objects: 2 healthy")
		if !regexp.MustCompile(`(?m)^Deployment\s+default\s+app\s+Healthy\s+created`).MatchString(r.out) {
			t.Errorf("no healthy Deployment row:\n%s", r.out)
		}
		mustContain(t, r.junit, `tests="2" failures="0"`, `name="Deployment/default/app"`, `name="Service/default/app"`)
	})
	t.Run("the guide's Application verifies with its own path, namespace and options", func(t *testing.T) {
		app := filepath.Join(t.TempDir(), "app.yaml")
		os.WriteFile(app, []byte(argoApp("payment-gateway-oslo", "git@gitlab.com:your-org/infra-manifests.git", "apps/overlays/production", automatedFull)), 0o644)
		r := runVerify(t, repo.dir, "--app", app)
		r.expect(t, 0, "PASSED")
		if !regexp.MustCompile(`(?m)^Service\s+payments\s+app\s+Healthy`).MatchString(r.out) {
			t.Errorf("the Service is not in the destination namespace:\n%s", r.out)
		}
		mustContain(t, r.junit, `<testsuite name="payment-gateway-oslo"`, `name="Deployment/payments/app"`)
	})
	t.Run("a workload that needs pods is applied, and its health left to a node", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "apps/overlays/staging")
		r.expect(t, 0, "staging-app", "Applied", "health not judged: a Deployment needs a node", "--with-node", "PASSED")
	})
}

func TestVerifyReadsUncommittedChanges(t *testing.T) {
	repo := newRepo(t, argoLayout())
	patch := filepath.Join(repo.dir, "apps/overlays/production/patch-replicas.yaml")
	committed, _ := os.ReadFile(patch)
	t.Run("an uncommitted mistake fails", func(t *testing.T) {
		os.WriteFile(patch, []byte(strings.Replace(string(committed), "replicas: 0", "replicas: -1", 1)), 0o644)
		r := runVerify(t, repo.dir, "apps/overlays/production")
		r.expect(t, 1, "Failed", "spec.replicas: Invalid value: -1", "FAILED")
		r.failedInJUnit(t, "Deployment/default/app", "spec.replicas: Invalid value: -1")
	})
	t.Run("an uncommitted new file is verified", func(t *testing.T) {
		os.WriteFile(patch, committed, 0o644)
		os.WriteFile(filepath.Join(repo.dir, "apps/base/config.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n"), 0o644)
		os.WriteFile(filepath.Join(repo.dir, "apps/base/kustomization.yaml"), []byte("resources:\n- deployment.yaml\n- service.yaml\n- config.yaml\n"), 0o644)
		r := runVerify(t, repo.dir, "apps/overlays/production")
		r.expect(t, 0, "settings", "PASSED: 3 objects: 3 healthy")
	})
	if st := repo.git("status", "--porcelain"); !strings.Contains(st, "config.yaml") {
		t.Errorf("the changes were committed or lost: %q", st)
	}
}

// sealingFixture makes two sealing keys: the backup of the first (what
// --sealing-keys gets) and a certificate of each for `fjord seal --cert`.
func sealingFixture(t *testing.T, dir string) (backup, goodCert, otherCert string) {
	t.Helper()
	var paths [2]string
	var keys [2]*sealing.Key
	for i := range keys {
		k, err := sealing.GenerateKey(2048, 24*time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		paths[i] = filepath.Join(dir, fmt.Sprintf("cert%d.pem", i))
		os.WriteFile(paths[i], k.CertPEM(), 0o644)
	}
	data, err := yaml.Marshal(sealing.KeySecret(keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	backup = filepath.Join(dir, "keys.yaml")
	os.WriteFile(backup, data, 0o600)
	return backup, paths[0], paths[1]
}

func seal(t *testing.T, cert, secret string) string {
	t.Helper()
	out, err := run(t, secret, fjordBin, "seal", "--cert", cert)
	if err != nil {
		t.Fatalf("fjord seal: %v\n%s", err, out)
	}
	return out
}

func TestVerifyBadInput(t *testing.T) {
	keysDir := t.TempDir()
	backup, goodCert, otherCert := sealingFixture(t, keysDir)
	const ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: payments}\n"
	repo := newRepo(t, map[string]string{
		"empty/README.md":           "nothing to apply here\n",
		"broken/kustomization.yaml": "resources:\n- deployment.yaml\n- missing.yaml\n",
		"broken/deployment.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"schema/service.yaml":       "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n  bogusField: true\n",
		"schema/config.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n",
		"unknown/widget.yaml":       "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n",
		"sealed-good/ns.yaml":       ns,
		"sealed-good/sealed.yaml":   seal(t, goodCert, secretYAML("payments", "db", "password", "s3cret")),
		"sealed-bad/ns.yaml":        ns,
		"sealed-bad/sealed.yaml":    seal(t, otherCert, secretYAML("payments", "db", "password", "s3cret")),
		"slow/crd.yaml":             gadgetCRD,
		"slow/gadget.yaml":          "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nstatus:\n  conditions: [{type: Ready, status: 'False', reason: Waiting, message: waiting for the gadget}]\n",
		"slow/config.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: quick}\n",
		"waves/crd.yaml":            gadgetCRD,
		"waves/gadget.yaml":         "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: broken}\nstatus:\n  conditions: [{type: Stalled, status: 'True', reason: Broken, message: the gadget is broken}]\n",
		"waves/later.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\n  annotations: {argocd.argoproj.io/sync-wave: \"1\"}\n",
	})
	t.Run("a path with no manifests fails without starting anything", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "empty")
		r.expect(t, 1, "render empty", "renders no objects", "FAILED")
		r.failedInJUnit(t, "render empty", "renders no objects")
	})
	t.Run("a kustomization that does not build fails with kustomize's reason", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "broken")
		r.expect(t, 1, "kustomize build broken", "missing.yaml", "FAILED")
		r.failedInJUnit(t, "render broken", "missing.yaml")
	})
	t.Run("an object with a schema error is refused by the API server's dry run", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "schema")
		r.expect(t, 1, ".spec.bogusField: field not declared in schema", "FAILED: 2 objects: 1 healthy, 1 failed")
		r.failedInJUnit(t, "Service/default/web", "field not declared in schema")
		mustContain(t, r.junit, `name="ConfigMap/default/fine"`)
	})
	t.Run("an object of an unknown kind fails", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "unknown")
		r.expect(t, 1, "Widget", "unknown kind (is its CustomResourceDefinition installed?)")
		r.failedInJUnit(t, "Widget/w", "unknown kind")
	})
	t.Run("a SealedSecret that opens with the keys given is healthy", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "sealed-good", "--sealing-keys", backup)
		r.expect(t, 0, "unsealed", "PASSED: 2 objects: 2 healthy")
	})
	t.Run("a SealedSecret that does not unseal with the keys given fails", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "sealed-bad", "--sealing-keys", backup)
		r.expect(t, 1, "cannot be unsealed", "no key could decrypt secret")
		r.failedInJUnit(t, "SealedSecret/payments/db", "cannot be unsealed")
	})
	t.Run("without keys a SealedSecret is applied and its unsealing skipped with a note", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "sealed-bad")
		r.expect(t, 0, "Skipped", "unsealing not checked: no --sealing-keys given", "PASSED")
		mustContain(t, r.junit, `<skipped message="created; unsealing not checked`)
	})
	t.Run("a Degraded object fails and holds the next sync wave back, as a sync would", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "waves")
		r.expect(t, 1, "Degraded: the gadget is broken", "not applied: wave 0 did not become healthy: Gadget/default/broken")
		r.failedInJUnit(t, "Gadget/default/broken", "the gadget is broken")
		r.failedInJUnit(t, "ConfigMap/default/later", "wave 0 did not become healthy")
	})
	t.Run("an object that does not turn healthy in time fails with the timeout", func(t *testing.T) {
		r := runVerify(t, repo.dir, "--path", "slow", "--timeout", "15s")
		r.expect(t, 1, "waiting for the gadget", "timed out after 15s (--timeout)", "FAILED: 3 objects: 2 healthy, 1 failed")
		r.failedInJUnit(t, "Gadget/default/g1", "timed out after 15s")
	})
}

// gadgetCRD has no status subresource, so the status in a manifest is
// stored as written: a Gadget can be made to stay not Ready.
const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func TestVerifyInterruptedCleansUp(t *testing.T) {
	repo := newRepo(t, map[string]string{
		"slow/crd.yaml":    gadgetCRD,
		"slow/gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nstatus:\n  conditions: [{type: Ready, status: 'False', reason: Waiting}]\n",
	})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String()+" while waiting for health stops the server and removes its data", func(t *testing.T) {
			cmd := exec.Command(fjordBin, "verify", "--path", "slow", "--timeout", "3m")
			cmd.Dir = repo.dir
			stderr, _ := cmd.StderrPipe()
			var stdout strings.Builder
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "apply") {
					cmd.Process.Signal(sig)
				}
			}
			err := cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Errorf("exit: %v, want 1", err)
			}
			out := log.String() + stdout.String()
			mustContain(t, out, "interrupted", "FAILED")
			if throwawayRE.FindString(out) == "" {
				t.Fatalf("the server never started:\n%s", out)
			}
			assertCleanedUp(t, out)
		})
	}
}

func TestUpDownTwice(t *testing.T) {
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"), "KUBECONFIG=" + filepath.Join(home, "kube", "config")}
	realKubeconfig := filepath.Join(os.Getenv("HOME"), ".kube", "config")
	before, _ := os.ReadFile(realKubeconfig)
	t.Cleanup(func() {
		cmd := exec.Command(fjordBin, "down", "e2e") // t.Context() has ended here
		cmd.Env = append(os.Environ(), env...)
		cmd.Run()
		if after, _ := os.ReadFile(realKubeconfig); string(after) != string(before) {
			t.Errorf("the developer's %s changed", realKubeconfig)
		}
	})
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(kubectlBin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	stateDir := filepath.Join(home, "state", "fjord", "e2e")
	for round := 1; round <= 2; round++ {
		t.Run(fmt.Sprintf("round %d: up, up again, kubectl, list, down", round), func(t *testing.T) {
			out, code := runFjord(t, env, "up", "e2e")
			if code != 0 {
				t.Fatalf("fjord up: exit %d\n%s", code, out)
			}
			mustContain(t, out, `Cluster "e2e" is ready at https://127.0.0.1:`, `Context "fjord-e2e" set in `+filepath.Join(home, "kube", "config"))
			out, code = runFjord(t, env, "up", "e2e")
			if code != 0 || !strings.Contains(out, "already running") {
				t.Errorf("second fjord up: exit %d\n%s", code, out)
			}
			out, err := kubectl("--context", "fjord-e2e", "get", "ns")
			if err != nil {
				t.Fatalf("kubectl: %v\n%s", err, out)
			}
			mustContain(t, out, "kube-system", "argocd")
			out, _ = runFjord(t, env, "list")
			if !regexp.MustCompile(`(?m)^e2e\s+running\s+https://127\.0\.0\.1:\d+\s+\S+$`).MatchString(out) {
				t.Errorf("fjord list:\n%s", out)
			}
			var pid int
			if data, err := os.ReadFile(filepath.Join(stateDir, "cluster.json")); err == nil {
				m := regexp.MustCompile(`"pid": (\d+)`).FindSubmatch(data)
				if m != nil {
					pid, _ = strconv.Atoi(string(m[1]))
				}
			}
			out, code = runFjord(t, env, "down", "e2e")
			if code != 0 {
				t.Fatalf("fjord down: exit %d\n%s", code, out)
			}
			if out, err := kubectl("--context", "fjord-e2e", "get", "ns"); err == nil || !strings.Contains(out, "fjord-e2e") {
				t.Errorf("the context is still usable after down: %v\n%s", err, out)
			}
			if _, err := os.Stat(stateDir); err == nil {
				t.Errorf("%s is still there", stateDir)
			}
			if pid == 0 || running(pid) {
				t.Errorf("the server (pid %d) still runs", pid)
			}
		})
	}
	t.Run("down of a cluster that is not there says so and succeeds", func(t *testing.T) {
		out, code := runFjord(t, env, "down", "e2e")
		if code != 0 || !strings.Contains(out, `No cluster "e2e"`) {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
}

// running reports whether pid is a live process; a zombie that init has
// not reaped yet is not.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

// TestUpWithoutRoot runs up and down as nobody, when the tests run as root
// and nobody can run the binary.
func TestUpWithoutRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the tests run without root already")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv")
	}
	const nobody = 65534
	// Not t.TempDir(): its parent is root's alone.
	home, err := os.MkdirTemp("", "fjord-up-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chown(home, nobody, nobody)
	as := func(args ...string) (string, error) {
		cmd := exec.Command(setpriv, append([]string{"--reuid", "65534", "--regid", "65534", "--clear-groups", "env", "-i",
			"PATH=/usr/bin:/bin", "HOME=" + home, "XDG_STATE_HOME=" + home + "/state", "KUBECONFIG=" + home + "/kube/config"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as(fjordBin, "version"); err != nil {
		t.Skipf("nobody cannot run %s: %v %s", fjordBin, err, out)
	}
	t.Cleanup(func() { as(fjordBin, "down", "np") }) // runs before the directory's removal
	if out, err := as(fjordBin, "up", "np"); err != nil {
		t.Fatalf("fjord up as nobody: %v\n%s", err, out)
	}
	if out, err := as(kubectlBin, "--context", "fjord-np", "get", "ns", "default"); err != nil {
		t.Fatalf("kubectl as nobody: %v\n%s", err, out)
	}
	if out, err := as(fjordBin, "down", "np"); err != nil {
		t.Fatalf("fjord down as nobody: %v\n%s", err, out)
	}
}
