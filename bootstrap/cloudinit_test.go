package bootstrap

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/fjord-dev/fjord/appliance/gitops"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// seed is the user-data of the README's guide: an ssh repository, sealing
// keys, one image archive and a config key of the user's.
func seed(t *testing.T) CloudInit {
	return CloudInit{
		RepoURL:         "git@git.example.com:your-org/infra-manifests.git",
		Revision:        "HEAD",
		Path:            "apps/overlays/production",
		AppName:         "payment-gateway-oslo",
		Namespace:       "payments",
		GitOpsNamespace: "argocd",
		SSHPrivateKey:   readTestdata(t, "deploy_key"),
		KnownHosts:      readTestdata(t, "known_hosts"),
		SealingKeys:     []byte("# the output of fjord sealing-keys export\napiVersion: v1\nkind: List\nitems: []\n"),
		SealingKeysFile: DefaultSealingKeysFile,
		ConfigVersion:   "fjord.dev/v1alpha1",
		Config:          map[string]string{"fsync-p99-max": "15ms"},
		ConfigFile:      "/etc/fjord/config.yaml",
		DataDir:         "/var/lib/fjord",
		ApplicationsDir: DefaultApplicationsDir,
		Images:          []ImageArchive{{Name: "app.tar.gz", Data: readTestdata(t, "image.tar.gz")}},
	}
}

// file returns the write_files entry for path.
func file(t *testing.T, userData []byte, path string) writeFile {
	t.Helper()
	var doc cloudConfig
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range doc.WriteFiles {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("no write_files entry for %s", path)
	return writeFile{}
}

func TestCloudInitGolden(t *testing.T) {
	out, err := seed(t).Render()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "user-data.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./bootstrap -run Golden -update writes it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("the user-data differs from %s (go test ./bootstrap -run Golden -update rewrites it):\n%s", golden, out)
	}
	if !bytes.HasPrefix(out, []byte("#cloud-config\n")) {
		t.Fatal("the first line is not #cloud-config")
	}
}

// TestCloudInitSchema asks Debian's cloud-init itself.
func TestCloudInitSchema(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Skip("cloud-init is not installed (Debian's cloud-init package; make test installs it)")
	}
	for name, ci := range map[string]CloudInit{
		"ssh, sealing keys and an image": seed(t),
		"https with a token":             {RepoURL: "https://git.example.com/org/repo.git", Revision: "main", Path: ".", AppName: "repo", Namespace: "default", GitOpsNamespace: "argocd", HTTPSUsername: "git", HTTPSToken: "glpat-xyz", ConfigFile: "/etc/fjord/config.yaml", DataDir: "/var/lib/fjord", ApplicationsDir: DefaultApplicationsDir, SealingKeysFile: DefaultSealingKeysFile},
		"a public repository":            {RepoURL: "https://git.example.com/org/repo.git", Revision: "main", Path: ".", AppName: "repo", Namespace: "default", GitOpsNamespace: "argocd", ConfigFile: "/etc/fjord/config.yaml", DataDir: "/var/lib/fjord", ApplicationsDir: DefaultApplicationsDir, SealingKeysFile: DefaultSealingKeysFile},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := ci.Render()
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "user-data.yaml")
			os.WriteFile(f, out, 0o600)
			res, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput()
			if err != nil || !strings.Contains(string(res), "Valid cloud-config") {
				t.Fatalf("cloud-init schema: %v\n%s\n%s", err, res, out)
			}
		})
	}
}

// TestCloudInitWritesFiles lets Debian's cloud-init write the files (its
// own cc_write_files, paths moved below a temporary root): modes, contents
// and archives decoded from gz+b64 and b64 are what was given.
func TestCloudInitWritesFiles(t *testing.T) {
	if _, err := os.Stat("/usr/lib/python3/dist-packages/cloudinit/config/cc_write_files.py"); err != nil {
		t.Skip("cloud-init is not installed (Debian's cloud-init package; make test installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("cloud-init chowns the files to root: run as root")
	}
	ci := seed(t)
	plain := bytes.Repeat([]byte("a plain tar "), 500)
	ci.Images = append(ci.Images, ImageArchive{Name: "plain.tar", Data: plain})
	out, err := ci.Render()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	userData := filepath.Join(t.TempDir(), "user-data.yaml")
	os.WriteFile(userData, out, 0o600)
	script := `import sys, os
from cloudinit import util
from cloudinit.config import cc_write_files
cfg = util.load_yaml(open(sys.argv[1]).read())
for f in cfg["write_files"]:
    f["path"] = sys.argv[2] + f["path"]
cc_write_files.write_files("write_files", cfg["write_files"], "root:root")
`
	if res, err := exec.Command("/usr/bin/python3", "-c", script, userData, root).CombinedOutput(); err != nil {
		t.Fatalf("cloud-init's write_files: %v\n%s", err, res)
	}
	for p, want := range map[string]struct {
		mode    os.FileMode
		content []byte
	}{
		"/etc/fjord/sealing-keys.yaml":             {0o600, ci.SealingKeys},
		"/var/lib/fjord/agent/images/app.tar.gz":   {0o644, ci.Images[0].Data},
		"/var/lib/fjord/agent/images/plain.tar":    {0o644, plain},
		"/etc/fjord/applications/application.yaml": {0o644, nil},
		"/etc/fjord/applications/repository.yaml":  {0o600, nil},
		"/etc/fjord/config.yaml":                   {0o600, nil},
	} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != want.mode {
			t.Errorf("%s: mode %o, want %o", p, fi.Mode().Perm(), want.mode)
		}
		if want.content != nil {
			if got, _ := os.ReadFile(filepath.Join(root, p)); !bytes.Equal(got, want.content) {
				t.Errorf("%s: the content differs", p)
			}
		}
	}
}

// TestCloudInitObjects reads the written objects the way the GitOps engine
// does: the Application's spec as gitops.ApplicationSpec, the repository
// Secret by Argo CD's label and keys.
func TestCloudInitObjects(t *testing.T) {
	ci := seed(t)
	out, err := ci.Render()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the Application syncs on its own, prunes, heals and creates its namespace", func(t *testing.T) {
		f := file(t, out, "/etc/fjord/applications/application.yaml")
		var u unstructured.Unstructured
		if err := k8syaml.Unmarshal([]byte(f.Content), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetAPIVersion() != "argoproj.io/v1alpha1" || u.GetKind() != "Application" || u.GetName() != "payment-gateway-oslo" || u.GetNamespace() != "argocd" {
			t.Fatalf("object %s %s %s/%s", u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		}
		app := gitops.Application{Name: u.GetName(), Namespace: u.GetNamespace()}
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &app.Spec); err != nil {
			t.Fatal(err)
		}
		src := app.Spec.Source
		if src == nil || src.RepoURL != ci.RepoURL || src.TargetRevision != "HEAD" || src.Path != "apps/overlays/production" {
			t.Fatalf("source %+v", src)
		}
		if d := app.Spec.Destination; d.Server != gitops.InClusterServer || d.Namespace != "payments" || app.Spec.Project != "default" {
			t.Fatalf("destination %+v project %q", d, app.Spec.Project)
		}
		if !app.Automated() || !app.Prune() || !app.SelfHeal() || !app.SyncOption("CreateNamespace") {
			t.Fatalf("sync policy %+v", app.Spec.SyncPolicy)
		}
	})
	t.Run("the repository Secret is Argo CD's, 0600, with a usable key", func(t *testing.T) {
		f := file(t, out, "/etc/fjord/applications/repository.yaml")
		if f.Permissions != "0600" {
			t.Fatalf("permissions %s", f.Permissions)
		}
		var s corev1.Secret
		if err := k8syaml.UnmarshalStrict([]byte(f.Content), &s); err != nil {
			t.Fatal(err)
		}
		if s.Namespace != "argocd" || s.Labels["argocd.argoproj.io/secret-type"] != "repository" {
			t.Fatalf("secret %s/%s labels %v", s.Namespace, s.Name, s.Labels)
		}
		if string(s.Data["url"]) != ci.RepoURL {
			t.Fatalf("url %q", s.Data["url"])
		}
		if _, err := ssh.ParsePrivateKey(s.Data["sshPrivateKey"]); err != nil {
			t.Fatalf("sshPrivateKey: %v", err)
		}
	})
	t.Run("known hosts are in argocd-ssh-known-hosts-cm", func(t *testing.T) {
		f := file(t, out, "/etc/fjord/applications/ssh-known-hosts.yaml")
		var cm corev1.ConfigMap
		if err := k8syaml.UnmarshalStrict([]byte(f.Content), &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Name != "argocd-ssh-known-hosts-cm" || cm.Namespace != "argocd" || cm.Data["ssh_known_hosts"] != string(ci.KnownHosts) {
			t.Fatalf("configmap %s/%s %v", cm.Namespace, cm.Name, cm.Data)
		}
	})
	t.Run("the config points at the applications and the sealing keys, 0600", func(t *testing.T) {
		f := file(t, out, "/etc/fjord/config.yaml")
		if f.Permissions != "0600" {
			t.Fatalf("permissions %s", f.Permissions)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(f.Content), &cfg); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"gitops.applications-dir": DefaultApplicationsDir, "sealing.import-keys": DefaultSealingKeysFile, "fsync-p99-max": "15ms", "version": "fjord.dev/v1alpha1"} {
			if cfg[k] != want {
				t.Errorf("%s = %v, want %s", k, cfg[k], want)
			}
		}
		if keys := file(t, out, DefaultSealingKeysFile); keys.Permissions != "0600" || keys.Content != string(ci.SealingKeys) {
			t.Errorf("sealing keys: %s %q", keys.Permissions, keys.Content)
		}
	})
	t.Run("https credentials are a username and the token as password", func(t *testing.T) {
		h := CloudInit{RepoURL: "https://git.example.com/org/repo.git", Revision: "main", Path: ".", AppName: "repo", Namespace: "default", GitOpsNamespace: "argocd",
			HTTPSUsername: "git", HTTPSToken: "glpat-xyz", ConfigFile: "/etc/fjord/config.yaml", DataDir: "/var/lib/fjord", ApplicationsDir: DefaultApplicationsDir, SealingKeysFile: DefaultSealingKeysFile}
		out, err := h.Render()
		if err != nil {
			t.Fatal(err)
		}
		var s corev1.Secret
		if err := k8syaml.UnmarshalStrict([]byte(file(t, out, "/etc/fjord/applications/repository.yaml").Content), &s); err != nil {
			t.Fatal(err)
		}
		if string(s.Data["username"]) != "git" || string(s.Data["password"]) != "glpat-xyz" {
			t.Fatalf("data %v", s.Data)
		}
		if strings.Contains(string(out), "sealing.import-keys") || strings.Contains(string(out), "bootcmd") {
			t.Fatalf("keys or images that were not asked for:\n%s", out)
		}
	})
	t.Run("a plain tar is written gzipped and decodes to itself", func(t *testing.T) {
		tarData := bytes.Repeat([]byte("layer"), 1000)
		enc, content, err := encodeArchive(tarData)
		if err != nil || enc != "gz+b64" {
			t.Fatalf("%s %v", enc, err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(content, "\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		back, _ := io.ReadAll(zr)
		if !bytes.Equal(back, tarData) {
			t.Fatal("round trip differs")
		}
	})
	t.Run("runcmd installs with the image's fjord", func(t *testing.T) {
		var doc cloudConfig
		yaml.Unmarshal(out, &doc)
		if len(doc.Runcmd) != 1 || !slices.Equal(doc.Runcmd[0], []string{InstalledBinary, "install"}) {
			t.Fatalf("runcmd %v", doc.Runcmd)
		}
	})
}

func TestCloudInitRefuses(t *testing.T) {
	good := seed(t)
	for name, tc := range map[string]struct {
		mutate func(*CloudInit)
		want   string
	}{
		"no repository":                          {func(c *CloudInit) { c.RepoURL = "" }, "--repo: the Git repository's URL is required"},
		"a password in the URL":                  {func(c *CloudInit) { c.RepoURL, c.SSHPrivateKey, c.KnownHosts = "https://u:secret@h/r.git", nil, nil }, "holds a password"},
		"an ssh key and a token":                 {func(c *CloudInit) { c.HTTPSToken = "t" }, "give one of them"},
		"an ssh key for an https URL":            {func(c *CloudInit) { c.RepoURL = "https://h/r.git" }, "is not an ssh URL"},
		"an ssh key without known hosts":         {func(c *CloudInit) { c.KnownHosts = nil }, "go together"},
		"an Application name Kubernetes refuses": {func(c *CloudInit) { c.AppName = "Payment_Gateway" }, "--app-name"},
		"two archives of one name":               {func(c *CloudInit) { c.Images = append(c.Images, c.Images[0]) }, "two archives are named app.tar.gz"},
		"an archive name with a path":            {func(c *CloudInit) { c.Images[0].Name = "../x.tar" }, "is not a file name"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			c.Images = slices.Clone(good.Images)
			tc.mutate(&c)
			out, err := c.Render()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if out != nil {
				t.Fatal("output despite the error")
			}
		})
	}
}

func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		read func() error
		want string
	}{
		"a key file that cannot be read": {func() error { _, err := ReadSSHPrivateKey(filepath.Join(dir, "missing")); return err }, "no such file"},
		"a public key":                   {func() error { _, err := ReadSSHPrivateKey("testdata/deploy_key.pub"); return err }, "this is a public key"},
		"a file that is no key":          {func() error { _, err := ReadSSHPrivateKey(write("junk", []byte("hello\n"))); return err }, "not an ssh private key"},
		"a key with a passphrase":        {func() error { _, err := ReadSSHPrivateKey(write("enc", pem.EncodeToMemory(block))); return err }, "protected by a passphrase"},
		"known hosts that are not":       {func() error { _, err := ReadKnownHosts(write("kh", []byte("# c\nnot a host key line\n"))); return err }, "line 2 is not a known_hosts entry"},
		"empty known hosts":              {func() error { _, err := ReadKnownHosts(write("kh0", []byte("# only a comment\n"))); return err }, "no host keys"},
		"an empty token":                 {func() error { _, err := ReadToken(write("tok0", []byte("\n"))); return err }, "the file is empty"},
		"a token of two lines":           {func() error { _, err := ReadToken(write("tok2", []byte("a\nb\n"))); return err }, "more than one line"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.read()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "hello") {
				t.Fatalf("the error shows the file's content: %v", err)
			}
		})
	}
	t.Run("good inputs are read", func(t *testing.T) {
		if _, err := ReadSSHPrivateKey("testdata/deploy_key"); err != nil {
			t.Error(err)
		}
		if _, err := ReadKnownHosts("testdata/known_hosts"); err != nil {
			t.Error(err)
		}
		if tok, err := ReadToken(write("tok", []byte("  glpat-abc \n"))); err != nil || tok != "glpat-abc" {
			t.Errorf("%q %v", tok, err)
		}
	})
}

func TestDefaultAppName(t *testing.T) {
	for url, want := range map[string]string{
		"git@gitlab.com:your-org/infra-manifests.git": "infra-manifests",
		"https://github.com/Org/Infra_Manifests.git/": "infra-manifests",
		"ssh://git@host:2222/x/y":                     "y",
		"file:///srv/git/repo":                        "repo",
		"https://host/___":                            "fjord",
	} {
		if got := DefaultAppName(url); got != want {
			t.Errorf("DefaultAppName(%q) = %q, want %q", url, got, want)
		}
	}
}
