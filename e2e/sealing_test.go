//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fjord-dev/fjord/appliance/sealing"
)

// kubesealBin is the real kubeseal v0.40.0, built from the module proxy by
// `make kubeseal`.
func kubesealBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KUBESEAL")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/kubeseal")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubeseal is not built (%v): run `make kubeseal`", err)
	}
	return bin
}

// run runs a command with stdin and returns its combined output.
func run(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *server) kubeseal(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := run(t, stdin, kubesealBin(t), append([]string{"--kubeconfig", s.kubeconfig()}, args...)...)
	if err != nil {
		t.Fatalf("kubeseal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *server) fjord(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	n := 1 // flags go after the (sub)command
	if args[0] == "sealing-keys" {
		n = 2
	}
	args = append(args[:n:n], append([]string{"--kubeconfig", s.kubeconfig()}, args[n:]...)...)
	out, err := run(t, stdin, fjordBin, args...)
	if err != nil {
		t.Fatalf("fjord %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func secretYAML(ns, name string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    team: payments\ntype: Opaque\nstringData:\n", name, ns)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "  %s: %q\n", kv[i], kv[i+1])
	}
	return b.String()
}

// secretValue reads one decoded value of a Secret; "" when it is missing.
func (s *server) secretValue(ns, name, key string) string {
	out, err := s.kubectl("get", "secret", name, "-n", ns, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}")
	if err != nil {
		return ""
	}
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	return string(b)
}

func (s *server) waitSecret(t *testing.T, ns, name, key, want string) {
	t.Helper()
	eventually(t, 30*time.Second, "Secret "+ns+"/"+name+" unsealed", func() error {
		if got := s.secretValue(ns, name, key); got != want {
			return fmt.Errorf("%s=%q; synced: %s", key, got, s.jsonpath("sealedsecret", ns, name, "{.status.conditions}"))
		}
		return nil
	})
}

// waitNotSynced waits for Synced=False on a SealedSecret and returns its message.
func (s *server) waitNotSynced(t *testing.T, ns, name string) string {
	t.Helper()
	var msg string
	eventually(t, 30*time.Second, "SealedSecret "+ns+"/"+name+" Synced=False", func() error {
		if st := s.jsonpath("sealedsecret", ns, name, `{.status.conditions[?(@.type=="Synced")].status}`); st != "False" {
			return fmt.Errorf("Synced=%q", st)
		}
		msg = s.jsonpath("sealedsecret", ns, name, `{.status.conditions[?(@.type=="Synced")].message}`)
		return nil
	})
	return msg
}

func (s *server) noSecret(t *testing.T, ns, name string) {
	t.Helper()
	if out, err := s.kubectl("get", "secret", name, "-n", ns); err == nil {
		t.Fatalf("Secret %s/%s exists and should not:\n%s", ns, name, out)
	}
}

func startSealingServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := newServer(t, append([]string{"--gitops.poll-interval", "1s"}, extra...)...)
	s.start()
	s.waitReady(2 * time.Minute)
	eventually(t, time.Minute, "the sealed-secrets-controller endpoint", func() error {
		_, err := s.kubectl("get", "--raw", "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem")
		return err
	})
	return s
}

// TestKubesealWorksUnchanged drives the real kubeseal against Fjord the way
// users do against upstream: fetch the certificate, seal, apply with
// kubectl, validate; and checks upstream's ownership rules.
func TestKubesealWorksUnchanged(t *testing.T) {
	s := startSealingServer(t)
	s.mustKubectl("create", "namespace", "shop")
	s.mustKubectl("create", "namespace", "other")

	cert := s.kubeseal(t, "", "--fetch-cert")
	if !strings.HasPrefix(cert, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("kubeseal --fetch-cert:\n%s", cert)
	}
	if fc := s.fjord(t, "", "cert"); fc != cert {
		t.Fatalf("fjord cert and kubeseal --fetch-cert differ:\n%s\n%s", fc, cert)
	}
	// The key lives where upstream keeps it.
	if out := s.mustKubectl("get", "secret", "-n", "kube-system", "-l", "sealedsecrets.bitnami.com/sealed-secrets-key=active",
		"-o", "jsonpath={range .items[*]}{.metadata.name} {.type}{\"\\n\"}{end}"); !strings.HasPrefix(out, "sealed-secrets-key") || !strings.Contains(out, "kubernetes.io/tls") {
		t.Fatalf("key Secret: %q", out)
	}

	// Strict scope, sealed online through the API server's service proxy.
	sealed := s.kubeseal(t, secretYAML("shop", "db", "password", "s3cr3t-strict"), "--format", "yaml")
	s.kubectlApply(sealed)
	s.waitSecret(t, "shop", "db", "password", "s3cr3t-strict")
	if owner := s.jsonpath("secret", "shop", "db", "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"); owner != "SealedSecret/db" {
		t.Fatalf("owner of the Secret: %q", owner)
	}
	if l := s.jsonpath("secret", "shop", "db", "{.metadata.labels.team}"); l != "payments" {
		t.Fatalf("template label not carried: %q", l)
	}
	if out, err := run(t, sealed, kubesealBin(t), "--kubeconfig", s.kubeconfig(), "--validate"); err != nil {
		t.Fatalf("kubeseal --validate of a good SealedSecret: %v\n%s", err, out)
	}
	tampered := strings.Replace(sealed, "password: Ag", "password: Ab", 1)
	if out, err := run(t, tampered, kubesealBin(t), "--kubeconfig", s.kubeconfig(), "--validate"); err == nil {
		t.Fatalf("kubeseal --validate accepted a tampered SealedSecret:\n%s", out)
	}

	// Namespace-wide and cluster-wide, sealed offline from the fetched cert.
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(certFile, []byte(cert), 0o644)
	nsWide := s.kubeseal(t, secretYAML("shop", "ns-wide", "token", "nw-value"), "--cert", certFile, "--scope", "namespace-wide", "--format", "yaml")
	s.kubectlApply(strings.ReplaceAll(nsWide, "name: ns-wide", "name: renamed"))
	s.waitSecret(t, "shop", "renamed", "token", "nw-value")
	cluster := s.kubeseal(t, secretYAML("shop", "cw", "token", "cw-value"), "--cert", certFile, "--scope", "cluster-wide", "--format", "yaml")
	s.kubectlApply(strings.ReplaceAll(strings.ReplaceAll(cluster, "namespace: shop", "namespace: other"), "name: cw", "name: moved"))
	s.waitSecret(t, "other", "moved", "token", "cw-value")

	// fjord seal, online and offline, and --raw from both tools.
	s.kubectlApply(s.fjord(t, secretYAML("shop", "api", "key", "fjord-sealed"), "seal"))
	s.waitSecret(t, "shop", "api", "key", "fjord-sealed")
	raw := strings.TrimSpace(s.kubeseal(t, "raw-by-kubeseal", "--raw", "--namespace", "shop", "--name", "raw", "--cert", certFile))
	raw2 := strings.TrimSpace(s.fjord(t, "raw-by-fjord", "seal", "--raw", "--namespace", "shop", "--name", "raw", "--cert", certFile))
	s.kubectlApply(fmt.Sprintf("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: raw\n  namespace: shop\nspec:\n  encryptedData:\n    a: %s\n    b: %s\n", raw, raw2))
	s.waitSecret(t, "shop", "raw", "a", "raw-by-kubeseal")
	s.waitSecret(t, "shop", "raw", "b", "raw-by-fjord")

	// --merge-into adds a key in place.
	file := filepath.Join(t.TempDir(), "api.yaml")
	os.WriteFile(file, []byte(s.fjord(t, secretYAML("shop", "merged", "one", "merged-first"), "seal", "--cert", certFile)), 0o644)
	s.fjord(t, secretYAML("shop", "ignored", "two", "merged-second"), "seal", "--cert", certFile, "--merge-into", file)
	merged, _ := os.ReadFile(file)
	s.kubectlApply(string(merged))
	s.waitSecret(t, "shop", "merged", "one", "merged-first")
	s.waitSecret(t, "shop", "merged", "two", "merged-second")

	// A Secret the SealedSecret does not own is left alone, until it is
	// annotated managed.
	s.mustKubectl("create", "secret", "generic", "taken", "-n", "shop", "--from-literal=password=handmade")
	s.kubectlApply(s.kubeseal(t, secretYAML("shop", "taken", "password", "from-git"), "--format", "yaml"))
	if msg := s.waitNotSynced(t, "shop", "taken"); !strings.Contains(msg, "not managed by SealedSecret") {
		t.Fatalf("message: %q", msg)
	}
	if v := s.secretValue("shop", "taken", "password"); v != "handmade" {
		t.Fatalf("an unmanaged Secret was overwritten: %q", v)
	}
	s.mustKubectl("annotate", "secret", "taken", "-n", "shop", "sealedsecrets.bitnami.com/managed=true")
	s.waitSecret(t, "shop", "taken", "password", "from-git")

	// A deleted Secret is unsealed again; an edited one is put back.
	s.mustKubectl("delete", "secret", "db", "-n", "shop")
	s.waitSecret(t, "shop", "db", "password", "s3cr3t-strict")
	s.mustKubectl("patch", "secret", "db", "-n", "shop", "-p", `{"stringData":{"password":"edited"}}`)
	s.waitSecret(t, "shop", "db", "password", "s3cr3t-strict")

	// kubeseal --re-encrypt goes through /v1/rotate and still decrypts.
	reenc := s.kubeseal(t, sealed, "--re-encrypt", "--format", "yaml")
	if reenc == sealed || !strings.Contains(reenc, "kind: SealedSecret") {
		t.Fatalf("re-encrypt:\n%s", reenc)
	}
	s.kubectlApply(reenc)
	s.waitSecret(t, "shop", "db", "password", "s3cr3t-strict")

	// No value reaches the log or an event.
	for _, v := range []string{"s3cr3t-strict", "nw-value", "cw-value", "fjord-sealed", "raw-by-kubeseal", "raw-by-fjord", "from-git", "merged-first", "merged-second"} {
		if strings.Contains(s.out.String(), v) {
			t.Fatalf("the secret value %q is in fjord's log", v)
		}
	}
	if ev := s.mustKubectl("get", "events", "-A", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); strings.Contains(ev, "s3cr3t") || strings.Contains(ev, "from-git") || strings.Contains(ev, "merged-") {
		t.Fatalf("a secret value is in an event:\n%s", ev)
	}
}

// TestSealedSecretBadInput applies every kind of broken SealedSecret and
// checks each gets Synced=False with its reason, no Secret is written or
// changed, and the controller keeps working for the others.
func TestSealedSecretBadInput(t *testing.T) {
	s := startSealingServer(t)
	s.mustKubectl("create", "namespace", "app")
	s.mustKubectl("create", "namespace", "elsewhere")
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(certFile, []byte(s.fjord(t, "", "cert")), 0o644)
	seal := func(ns, name, value string, extra ...string) string {
		return strings.TrimSpace(s.fjord(t, value, append([]string{"seal", "--raw", "--cert", certFile, "--namespace", ns, "--name", name}, extra...)...))
	}
	sealedSecret := func(name, ns, annotations, encrypted, template string) string {
		return fmt.Sprintf("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: %s\n  namespace: %s\n%sspec:\n  encryptedData:%s\n%s", name, ns, annotations, encrypted, template)
	}

	// A value sealed for a key this cluster never had.
	foreign, err := sealing.GenerateKey(2048, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	foreignValue, err := sealing.SealValue(rand.Reader, &foreign.Private.PublicKey, []byte("foreign-plain"), sealing.Strict, "app", "foreign")
	if err != nil {
		t.Fatal(err)
	}
	good := seal("app", "tampered", "tampered-plain")
	raw, _ := base64.StdEncoding.DecodeString(good)
	raw[len(raw)-1] ^= 1 // the last byte of the GCM tag
	tampered := base64.StdEncoding.EncodeToString(raw)

	// An existing Secret that a broken SealedSecret must not touch.
	s.mustKubectl("create", "secret", "generic", "wrongscope", "-n", "app", "--from-literal=v=keep-me")
	s.mustKubectl("annotate", "secret", "wrongscope", "-n", "app", "sealedsecrets.bitnami.com/managed=true")

	cases := []struct {
		name, manifest, want string
	}{
		{"tampered", sealedSecret("tampered", "app", "", "\n    v: "+tampered, ""), "no key could decrypt"},
		{"foreign", sealedSecret("foreign", "app", "", "\n    v: "+foreignValue, ""), "no key could decrypt"},
		{"othername", sealedSecret("othername", "app", "", "\n    v: "+seal("app", "somebody-else", "strict-plain"), ""), "no key could decrypt"},
		{"otherns", sealedSecret("otherns", "app", "", "\n    v: "+seal("elsewhere", "otherns", "strict-plain"), ""), "no key could decrypt"},
		{"wrongscope", sealedSecret("wrongscope", "app", "  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: \"true\"\n",
			"\n    v: "+seal("app", "wrongscope", "nswide-plain", "--scope", "namespace-wide"), ""), "no key could decrypt"},
		{"badbase64", sealedSecret("badbase64", "app", "", "\n    v: '%%%not-base64'", ""), "not valid base64"},
		{"empty", sealedSecret("empty", "app", "", " {}", ""), "encryptedData is empty"},
		{"badtemplate", sealedSecret("badtemplate", "app", "", "\n    v: "+seal("app", "badtemplate", "tmpl-plain"),
			"  template:\n    data:\n      conf: '{{ .v | nosuchfunc }}'\n"), "function \"nosuchfunc\" not defined"},
		{"failingtemplate", sealedSecret("failingtemplate", "app", "", "\n    v: "+seal("app", "failingtemplate", "not-a-number-plain"),
			"  template:\n    data:\n      conf: '{{ fail .v }}'\n"), "failed to render"},
	}
	for _, c := range cases {
		s.kubectlApply(c.manifest)
	}
	// A key Secret with garbage in it is ignored, loudly.
	s.kubectlApply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: sealed-secrets-keygarbage\n  namespace: kube-system\n  labels:\n    sealedsecrets.bitnami.com/sealed-secrets-key: active\ntype: kubernetes.io/tls\ndata:\n  tls.crt: Z2FyYmFnZQ==\n  tls.key: Z2FyYmFnZQ==\n")

	for _, c := range cases {
		msg := s.waitNotSynced(t, "app", c.name)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: message %q does not say %q", c.name, msg, c.want)
		}
		if strings.Contains(msg, "-plain") {
			t.Errorf("%s: the message holds a decrypted value: %q", c.name, msg)
		}
		if c.name != "wrongscope" {
			s.noSecret(t, "app", c.name)
		}
	}
	if v := s.secretValue("app", "wrongscope", "v"); v != "keep-me" {
		t.Fatalf("a failing SealedSecret changed an existing Secret: %q", v)
	}
	if !s.running() {
		t.Fatal("fjord exited")
	}
	// The controller is still working, for new and for fixed SealedSecrets.
	s.kubectlApply(sealedSecret("fine", "app", "", "\n    v: "+seal("app", "fine", "fine-value"), ""))
	s.waitSecret(t, "app", "fine", "v", "fine-value")
	s.kubectlApply(sealedSecret("tampered", "app", "", "\n    v: "+good, ""))
	s.waitSecret(t, "app", "tampered", "v", "tampered-plain")
	if !strings.Contains(s.out.String(), "sealed-secrets-keygarbage") {
		t.Fatal("the garbage key Secret was not reported in the log")
	}
	for _, v := range []string{"tampered-plain", "strict-plain", "nswide-plain", "tmpl-plain", "not-a-number-plain", "fine-value"} {
		if strings.Contains(s.out.String(), v) {
			t.Fatalf("the value %q is in fjord's log", v)
		}
	}
	if ev := s.mustKubectl("get", "events", "-n", "app", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"); strings.Contains(ev, "-plain") {
		t.Fatalf("a value is in an event:\n%s", ev)
	}
}

// TestSealedSecretsThroughGitOps syncs a repository holding SealedSecrets:
// the good ones are unsealed, a broken one makes the Application Degraded
// with the reason, and the rest of the sync proceeds.
func TestSealedSecretsThroughGitOps(t *testing.T) {
	s := startSealingServer(t)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(certFile, []byte(s.fjord(t, "", "cert")), 0o644)
	good := s.fjord(t, secretYAML("payments", "db", "password", "from-the-repo"), "seal", "--cert", certFile)
	brokenValue := strings.TrimSpace(s.fjord(t, "x-value", "seal", "--raw", "--cert", certFile, "--namespace", "payments", "--name", "someone-else"))
	broken := fmt.Sprintf("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: api\n  namespace: payments\nspec:\n  encryptedData:\n    token: %s\n", brokenValue)
	repo := newRepo(t, map[string]string{
		"app/kustomization.yaml": "resources:\n- db.yaml\n- api.yaml\n- config.yaml\n",
		"app/db.yaml":            good,
		"app/api.yaml":           broken,
		"app/config.yaml":        configMap("settings"),
	})
	s.kubectlApply(argoApp("payments", repo.url(), "app", automatedFull))
	st := s.waitApp(t, "payments", "synced and Degraded", time.Minute, func(a appStatus) bool {
		return a.Sync.Status == "Synced" && a.Health.Status == "Degraded"
	})
	s.waitSecret(t, "payments", "db", "password", "from-the-repo")
	if _, err := s.kubectl("get", "configmap", "settings", "-n", "payments"); err != nil {
		t.Fatalf("the rest of the sync did not proceed: %v", err)
	}
	s.noSecret(t, "payments", "api")
	msg := s.jsonpath("application", "argocd", "payments", "{.status.resources[?(@.name==\"api\")].health.message}")
	if !strings.Contains(msg, "cannot be unsealed") || !strings.Contains(msg, "no key could decrypt") {
		t.Fatalf("health message of the broken SealedSecret: %q (%+v)", msg, st)
	}

	// Fixing it in Git makes the Application Healthy.
	fixed := s.fjord(t, secretYAML("payments", "api", "token", "fixed-token"), "seal", "--cert", certFile)
	rev := repo.commit("reseal api", map[string]string{"app/api.yaml": fixed})
	s.waitApp(t, "payments", "Healthy at the fix", time.Minute, func(a appStatus) bool {
		return a.Sync.Revision == rev && a.Health.Status == "Healthy"
	})
	s.waitSecret(t, "payments", "api", "token", "fixed-token")
	if strings.Contains(s.out.String(), "from-the-repo") || strings.Contains(s.out.String(), "fixed-token") {
		t.Fatal("a secret value is in fjord's log")
	}
}

// TestSealingKeysRotateAndSurviveARebuiltVM rotates keys, then exports
// them, wipes the data dir and checks that a new server which imports the
// backup (at boot or later, by CLI) decrypts the same SealedSecrets.
func TestSealingKeysRotateAndSurviveARebuiltVM(t *testing.T) {
	s := startSealingServer(t, "--sealing.key-rotation-period", "6s", "--sealing.key-bits", "2048")
	s.mustKubectl("create", "namespace", "shop")
	certA := s.fjord(t, "", "cert")
	oldSealed := s.fjord(t, secretYAML("shop", "old", "v", "sealed-with-key-one"), "seal")
	var certB string
	eventually(t, 30*time.Second, "a rotated key", func() error {
		if certB = s.fjord(t, "", "cert"); certB == certA {
			return fmt.Errorf("the certificate did not change")
		}
		return nil
	})
	newSealed := s.fjord(t, secretYAML("shop", "new", "v", "sealed-with-key-two"), "seal")
	s.kubectlApply(oldSealed)
	s.kubectlApply(newSealed)
	s.waitSecret(t, "shop", "old", "v", "sealed-with-key-one")
	s.waitSecret(t, "shop", "new", "v", "sealed-with-key-two")
	keys := strings.Fields(s.mustKubectl("get", "secret", "-n", "kube-system", "-l", "sealedsecrets.bitnami.com/sealed-secrets-key", "-o", "name"))
	if len(keys) < 2 {
		t.Fatalf("key Secrets after a rotation: %v", keys)
	}

	backup := filepath.Join(t.TempDir(), "keys.yaml")
	s.fjord(t, "", "sealing-keys", "export", backup)
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi.Mode(), err)
	}
	s.cmd.Process.Signal(os.Interrupt)
	if code := s.waitExit(time.Minute); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// The rebuilt VM: a new data dir, the backup in its config.
	r := startSealingServer(t, "--sealing.import-keys", backup, "--sealing.key-rotation-period", "0")
	r.mustKubectl("create", "namespace", "shop")
	r.kubectlApply(oldSealed)
	r.kubectlApply(newSealed)
	r.waitSecret(t, "shop", "old", "v", "sealed-with-key-one")
	r.waitSecret(t, "shop", "new", "v", "sealed-with-key-two")
	if cert := r.fjord(t, "", "cert"); cert == certA {
		t.Fatal("the restored cluster seals with the oldest key, not the newest")
	}

	// Another rebuilt VM without the backup in its config: nothing decrypts
	// until `fjord sealing-keys import`, then everything does, no restart.
	n := startSealingServer(t, "--sealing.key-bits", "2048")
	n.mustKubectl("create", "namespace", "shop")
	n.kubectlApply(oldSealed)
	if msg := n.waitNotSynced(t, "shop", "old"); !strings.Contains(msg, "no key could decrypt") {
		t.Fatalf("message: %q", msg)
	}
	n.fjord(t, "", "sealing-keys", "import", backup)
	n.waitSecret(t, "shop", "old", "v", "sealed-with-key-one")
	// Importing twice adds nothing.
	if out := n.fjord(t, "", "sealing-keys", "import", backup); !strings.Contains(out, "imported 0 new keys") {
		t.Fatalf("second import: %s", out)
	}
	// Keys relabelled compromised stay so when the backup is imported
	// again, and with no active key left the controller makes a new one.
	n.mustKubectl("label", "secret", "-n", "kube-system", "-l", "sealedsecrets.bitnami.com/sealed-secrets-key=active",
		"sealedsecrets.bitnami.com/sealed-secrets-key=compromised", "--overwrite")
	if out := n.fjord(t, "", "sealing-keys", "import", backup); !strings.Contains(out, "imported 0 new keys") {
		t.Fatalf("import after compromise: %s", out)
	}
	eventually(t, 30*time.Second, "a fresh active key", func() error {
		active := strings.Fields(n.mustKubectl("get", "secret", "-n", "kube-system", "-l", "sealedsecrets.bitnami.com/sealed-secrets-key=active", "-o", "name"))
		if len(active) != 1 {
			return fmt.Errorf("active keys: %v", active)
		}
		if cert, err := run(t, "", fjordBin, "cert", "--kubeconfig", n.kubeconfig()); err != nil || cert == certA || cert == certB {
			return fmt.Errorf("the active certificate is an old one (or %v)", err)
		}
		return nil
	})
	for _, srv := range []*server{s, r, n} {
		if strings.Contains(srv.out.String(), "sealed-with-key") || strings.Contains(srv.out.String(), "PRIVATE KEY") {
			t.Fatal("a value or a private key is in fjord's log")
		}
	}
}
