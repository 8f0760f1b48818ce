package bootstrap

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "sigs.k8s.io/yaml"
)

// Where a cloud-init user-data puts things on the VM, unless the
// configuration says otherwise.
const (
	// DefaultApplicationsDir holds the Application and the repository
	// Secret; the server applies it at start (gitops.applications-dir).
	DefaultApplicationsDir = "/etc/fjord/applications"
	// DefaultSealingKeysFile is the sealing key backup imported at start
	// (sealing.import-keys).
	DefaultSealingKeysFile = "/etc/fjord/sealing-keys.yaml"
	// DefaultRestoreSnapshotFile is the snapshot restored at the first
	// start (snapshot.restore-from).
	DefaultRestoreSnapshotFile = "/etc/fjord/restore-snapshot.tar.gz"
	// InstalledBinary is where the VM image has fjord; runcmd runs it.
	InstalledBinary = "/usr/local/bin/fjord"
)

// CloudInit is what a first boot needs to become a synced cluster: the
// server's configuration, the seed's Application and how to reach its
// repository, sealing keys and image archives. Render turns it into a
// cloud-init user-data.
type CloudInit struct {
	// RepoURL, Revision and Path are the Application's source.
	RepoURL  string
	Revision string
	Path     string
	// AppName names the Application; Namespace is its destination namespace.
	AppName   string
	Namespace string
	// GitOpsNamespace holds Applications and repository Secrets (argocd).
	GitOpsNamespace string

	// SSHPrivateKey and KnownHosts are the repository's ssh credentials;
	// HTTPSUsername and HTTPSToken its https ones. At most one kind is set.
	SSHPrivateKey []byte
	KnownHosts    []byte
	HTTPSUsername string
	HTTPSToken    string

	// SealingKeys is a key backup (fjord sealing-keys export), written to
	// SealingKeysFile and imported at start.
	SealingKeys     []byte
	SealingKeysFile string

	// ConfigVersion heads the configuration file; Config holds its keys
	// (flag names → values), to which Render adds gitops.applications-dir
	// and, with SealingKeys, sealing.import-keys.
	ConfigVersion   string
	Config          map[string]string
	ConfigFile      string
	DataDir         string
	ApplicationsDir string

	// Images are archives put in <DataDir>/agent/images, imported at start.
	Images []ImageArchive

	// Snapshot is a snapshot file (fjord snapshot save) written to
	// SnapshotFile; the server restores it at its first start
	// (snapshot.restore-from), so a replacement VM boots into the old state.
	Snapshot     []byte
	SnapshotFile string
}

// ImageArchive is one image archive (OCI layout or docker save tar, maybe
// gzipped) for the node.
type ImageArchive struct {
	Name string // file name in the images directory
	Data []byte
}

// Validate reports every problem with c at once. It reads no files.
func (c CloudInit) Validate() error {
	var errs []error
	switch {
	case strings.TrimSpace(c.RepoURL) == "":
		errs = append(errs, errors.New("--repo: the Git repository's URL is required"))
	case strings.ContainsAny(c.RepoURL, " \t\r\n"):
		errs = append(errs, errors.New("--repo: the URL has white space in it"))
	default:
		if u, err := url.Parse(c.RepoURL); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				errs = append(errs, errors.New("--repo: the URL holds a password; give it with --https-token-file (it would be readable in the Application)"))
			}
		}
	}
	if len(c.SSHPrivateKey) > 0 && c.HTTPSToken != "" {
		errs = append(errs, errors.New("--ssh-key and --https-token-file: give one of them"))
	}
	if len(c.SSHPrivateKey) > 0 && !isSSHURL(c.RepoURL) {
		errs = append(errs, fmt.Errorf("--ssh-key: %s is not an ssh URL (git@host:path or ssh://…)", c.RepoURL))
	}
	if c.HTTPSToken != "" && !strings.HasPrefix(c.RepoURL, "https://") && !strings.HasPrefix(c.RepoURL, "http://") {
		errs = append(errs, fmt.Errorf("--https-token-file: %s is not an https URL", c.RepoURL))
	}
	if (len(c.SSHPrivateKey) > 0) != (len(c.KnownHosts) > 0) {
		errs = append(errs, errors.New("--ssh-key and --known-hosts go together: Fjord checks the Git host's key"))
	}
	if msgs := validation.IsDNS1123Subdomain(c.AppName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--app-name %q: %s", c.AppName, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", c.Namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(c.GitOpsNamespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("gitops.namespace %q: %s", c.GitOpsNamespace, strings.Join(msgs, "; ")))
	}
	for _, p := range []struct{ name, value string }{
		{"the configuration file", c.ConfigFile}, {"data-dir", c.DataDir},
		{"gitops.applications-dir", c.ApplicationsDir}, {"sealing.import-keys", c.SealingKeysFile},
	} {
		if !path.IsAbs(p.value) {
			errs = append(errs, fmt.Errorf("%s: %q must be an absolute path", p.name, p.value))
		}
	}
	seen := map[string]bool{}
	for _, img := range c.Images {
		if img.Name == "" || img.Name != path.Base(img.Name) || strings.HasPrefix(img.Name, ".") {
			errs = append(errs, fmt.Errorf("--image-archive: %q is not a file name", img.Name))
		}
		if seen[img.Name] {
			errs = append(errs, fmt.Errorf("--image-archive: two archives are named %s", img.Name))
		}
		seen[img.Name] = true
	}
	return errors.Join(errs...)
}

// isSSHURL tells ssh URLs (ssh://…, scp-like user@host:path) apart, as the
// GitOps engine does.
func isSSHURL(u string) bool {
	if strings.HasPrefix(u, "ssh://") {
		return true
	}
	return !strings.Contains(u, "://") && strings.Contains(u, "@") && strings.Contains(u, ":")
}

// cloudConfig is the part of cloud-init's #cloud-config Fjord writes, in
// the order it is rendered.
type cloudConfig struct {
	// Locale "false" skips cc_locale: a minbase Debian has no locales and
	// update-locale fails there. It is the string, not the boolean, because
	// cloud-init 22.4's schema wants a string (and cc_locale reads "false"
	// as off, like false).
	Locale     string      `yaml:"locale"`
	Bootcmd    [][]string  `yaml:"bootcmd,omitempty"`
	WriteFiles []writeFile `yaml:"write_files"`
	Runcmd     [][]string  `yaml:"runcmd"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Encoding    string `yaml:"encoding,omitempty"`
	Content     string `yaml:"content"`
}

// Render returns the user-data: a #cloud-config that writes the
// configuration, the repository Secret, the Application, the sealing keys
// and the image archives, and runs `fjord install`, which enables and
// starts fjord.service. The image is expected to have fjord at
// InstalledBinary already. The output holds credentials: treat it as a secret.
func (c CloudInit) Render() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	config := map[string]string{}
	for k, v := range c.Config {
		config[k] = v
	}
	config["gitops.applications-dir"] = c.ApplicationsDir
	var files []writeFile
	add := func(p, perm string, content []byte) {
		files = append(files, writeFile{Path: p, Owner: "root:root", Permissions: perm, Content: string(content)})
	}
	dir := c.ApplicationsDir
	if len(c.SSHPrivateKey) > 0 || c.HTTPSToken != "" {
		secret, err := k8syaml.Marshal(c.repositorySecret())
		if err != nil {
			return nil, err
		}
		add(path.Join(dir, "repository.yaml"), "0600", secret)
	}
	if len(c.KnownHosts) > 0 {
		cm, err := k8syaml.Marshal(c.knownHostsConfigMap())
		if err != nil {
			return nil, err
		}
		add(path.Join(dir, "ssh-known-hosts.yaml"), "0644", cm)
	}
	app, err := k8syaml.Marshal(c.application())
	if err != nil {
		return nil, err
	}
	add(path.Join(dir, "application.yaml"), "0644", app)
	if len(c.SealingKeys) > 0 {
		config["sealing.import-keys"] = c.SealingKeysFile
		add(c.SealingKeysFile, "0600", c.SealingKeys)
	}
	if len(c.Snapshot) > 0 {
		if !path.IsAbs(c.SnapshotFile) {
			return nil, fmt.Errorf("snapshot.restore-from: %q must be an absolute path", c.SnapshotFile)
		}
		// Restored by the server's first start, before any component runs:
		// a failed restore keeps the server down rather than up and empty.
		config["snapshot.restore-from"] = c.SnapshotFile
		f := writeFile{Path: c.SnapshotFile, Owner: "root:root", Permissions: "0600"}
		if f.Encoding, f.Content, err = encodeArchive(c.Snapshot); err != nil {
			return nil, fmt.Errorf("encoding the snapshot: %w", err)
		}
		files = append(files, f)
	}
	cfg, err := ConfigFile(c.ConfigVersion, "Written by cloud-init (fjord bootstrap cloud-init); keys are `fjord server` flags.", config)
	if err != nil {
		return nil, err
	}
	// First: the files above are what the server reads at start.
	files = append([]writeFile{{Path: c.ConfigFile, Owner: "root:root", Permissions: "0600", Content: string(cfg)}}, files...)
	doc := cloudConfig{Locale: "false", Runcmd: [][]string{{InstalledBinary, "install"}}}
	if len(c.Images) > 0 {
		// write_files makes missing directories 0755; the data dir is the
		// server's own (0700), so it is made before write_files runs.
		doc.Bootcmd = [][]string{{"mkdir", "-p", "-m", "0700", c.DataDir}}
		for _, img := range c.Images {
			f := writeFile{Path: path.Join(c.DataDir, "agent", "images", img.Name), Owner: "root:root", Permissions: "0644"}
			f.Encoding, f.Content, err = encodeArchive(img.Data)
			if err != nil {
				return nil, fmt.Errorf("encoding %s: %w", img.Name, err)
			}
			files = append(files, f)
		}
	}
	doc.WriteFiles = files
	var out bytes.Buffer
	out.WriteString("#cloud-config\n")
	out.WriteString("# Rendered by fjord bootstrap cloud-init. It holds the repository's credentials\n")
	out.WriteString("# and sealing keys: keep it as secret as they are. The image must have fjord at\n")
	out.WriteString("# " + InstalledBinary + "; runcmd installs and starts fjord.service with it.\n")
	out.WriteString("# locale \"false\" skips cloud-init's locale module (a minbase Debian has no locales).\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// repositorySecret is Argo CD's repository Secret for the source.
func (c CloudInit) repositorySecret() map[string]any {
	data := map[string]string{"type": "git", "url": c.RepoURL}
	if len(c.SSHPrivateKey) > 0 {
		data["sshPrivateKey"] = string(c.SSHPrivateKey)
	} else {
		data["username"], data["password"] = c.HTTPSUsername, c.HTTPSToken
	}
	enc := map[string]string{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      repoSecretName(c.AppName),
			"namespace": c.GitOpsNamespace,
			"labels":    map[string]string{"argocd.argoproj.io/secret-type": "repository"},
		},
		"type": "Opaque",
		"data": enc,
	}
}

func repoSecretName(app string) string {
	name := "repo-" + app
	if len(name) > validation.DNS1123SubdomainMaxLength {
		name = strings.TrimRight(name[:validation.DNS1123SubdomainMaxLength], "-.")
	}
	return name
}

// knownHostsConfigMap is Argo CD's argocd-ssh-known-hosts-cm.
func (c CloudInit) knownHostsConfigMap() map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": "argocd-ssh-known-hosts-cm", "namespace": c.GitOpsNamespace},
		"data":       map[string]string{"ssh_known_hosts": string(c.KnownHosts)},
	}
}

// application is the seed's Application, in the README's shape: synced on
// its own, pruned, drift reverted, its namespace created.
func (c CloudInit) application() map[string]any {
	return map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": c.AppName, "namespace": c.GitOpsNamespace},
		"spec": map[string]any{
			"project": "default",
			"source":  map[string]any{"repoURL": c.RepoURL, "targetRevision": c.Revision, "path": c.Path},
			"destination": map[string]any{
				"server":    "https://kubernetes.default.svc",
				"namespace": c.Namespace,
			},
			"syncPolicy": map[string]any{
				"automated":   map[string]any{"prune": true, "selfHeal": true},
				"syncOptions": []string{"CreateNamespace=true", "PruneLast=true"},
			},
		},
	}
}

// encodeArchive returns cloud-init's encoding and content for an archive:
// gzipped then base64 unless it is gzipped already, in lines of 76.
func encodeArchive(data []byte) (string, string, error) {
	encoding := "b64"
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		var gz bytes.Buffer
		w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return "", "", err
		}
		// A fixed header (no name, no time) keeps the output reproducible.
		if _, err := w.Write(data); err != nil {
			return "", "", err
		}
		if err := w.Close(); err != nil {
			return "", "", err
		}
		data, encoding = gz.Bytes(), "gz+b64"
	}
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteByte('\n')
		s = s[76:]
	}
	b.WriteString(s)
	b.WriteByte('\n')
	return encoding, b.String(), nil
}

// DefaultAppName derives an Application name from a repository URL: its
// last path element without .git, in lower case, other characters as
// dashes ("git@gitlab.com:org/Infra_Manifests.git" → "infra-manifests").
func DefaultAppName(repoURL string) string {
	u := strings.TrimRight(strings.TrimSpace(repoURL), "/")
	if i := strings.LastIndexAny(u, "/:"); i >= 0 {
		u = u[i+1:]
	}
	u = strings.ToLower(strings.TrimSuffix(u, ".git"))
	u = nonName.ReplaceAllString(u, "-")
	u = strings.Trim(u, "-")
	if len(u) > 63 {
		u = strings.Trim(u[:63], "-")
	}
	if u == "" {
		return "fjord"
	}
	return u
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// ReadSSHPrivateKey reads an unencrypted ssh private key (OpenSSH or PEM),
// saying clearly what the file is when it is not one. The error never holds
// the file's content.
func ReadSSHPrivateKey(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ssh-key: %w", err)
	}
	if _, err := ssh.ParsePrivateKey(data); err != nil {
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, fmt.Errorf("--ssh-key %s: the key is protected by a passphrase; Fjord needs a key it can use unattended (a deploy key without passphrase)", file)
		case isPublicKey(data):
			return nil, fmt.Errorf("--ssh-key %s: this is a public key; give the private key", file)
		default:
			return nil, fmt.Errorf("--ssh-key %s: not an ssh private key", file)
		}
	}
	return data, nil
}

func isPublicKey(data []byte) bool {
	_, _, _, _, err := ssh.ParseAuthorizedKey(data)
	return err == nil
}

// ReadKnownHosts reads an ssh known_hosts file and checks every line.
func ReadKnownHosts(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--known-hosts: %w", err)
	}
	entries := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(line)); err != nil {
			return nil, fmt.Errorf("--known-hosts %s: line %d is not a known_hosts entry (ssh-keyscan HOST prints them)", file, i+1)
		}
		entries++
	}
	if entries == 0 {
		return nil, fmt.Errorf("--known-hosts %s: no host keys in it (ssh-keyscan HOST prints them)", file)
	}
	return data, nil
}

// ReadToken reads an access token from a file: one line, surrounding white
// space removed.
func ReadToken(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--https-token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	switch {
	case token == "":
		return "", fmt.Errorf("--https-token-file %s: the file is empty", file)
	case strings.ContainsAny(token, "\r\n"):
		return "", fmt.Errorf("--https-token-file %s: more than one line; the file must hold the token only", file)
	}
	return token, nil
}
