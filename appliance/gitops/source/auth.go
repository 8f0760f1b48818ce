package source

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Repository is one remote repository and how to reach it.
type Repository struct {
	// URL is https://, http://, ssh://, scp-like (git@host:org/repo.git),
	// file:// or a local path. Credentials in its userinfo are used when Auth
	// has none, and never shown.
	URL string
	// Auth holds the credentials; the zero value means anonymous.
	Auth Auth
}

// Auth holds the credentials and trust settings for a repository. Fields that
// do not apply to the URL's transport must be empty (see Validate).
type Auth struct {
	// Username is the https basic-auth user, or the ssh user when the URL
	// names none. For a token, any user name works; "git" is used when empty.
	Username string
	// Password is the https password or token, or an ssh password.
	Password string
	// SSHPrivateKey is a PEM or OpenSSH private key for ssh URLs.
	SSHPrivateKey []byte
	// SSHPassphrase decrypts SSHPrivateKey when it is encrypted.
	SSHPassphrase string
	// SSHKnownHosts is the content of a known_hosts file; the server's host
	// key must be listed in it. Required for ssh unless InsecureSkipHostKey.
	SSHKnownHosts string
	// InsecureSkipHostKey accepts any ssh host key. It makes the connection
	// open to interception; use it only when told to.
	InsecureSkipHostKey bool
	// CABundle is PEM certificates trusted for https, in addition to the
	// system's.
	CABundle []byte
	// InsecureSkipTLSVerify accepts any https certificate. It makes the
	// connection open to interception; use it only when told to.
	InsecureSkipTLSVerify bool
}

// Validate reports every problem with r at once without touching the
// network or the disk. Its messages contain no secrets.
func (r Repository) Validate() error {
	ep, err := parseEndpoint(r.URL)
	if err != nil {
		return err
	}
	var errs []error
	a := r.Auth
	switch ep.protocol {
	case "ssh":
		if len(a.CABundle) > 0 || a.InsecureSkipTLSVerify {
			errs = append(errs, errors.New("CA bundle and TLS settings do not apply to an ssh URL"))
		}
		if len(a.SSHPrivateKey) == 0 && a.Password == "" && ep.password == "" {
			errs = append(errs, errors.New("an ssh URL needs a private key (or a password)"))
		}
		if len(a.SSHPrivateKey) > 0 {
			if _, err := parseSigner(a.SSHPrivateKey, a.SSHPassphrase); err != nil {
				errs = append(errs, err)
			}
		}
		if a.SSHKnownHosts == "" && !a.InsecureSkipHostKey {
			errs = append(errs, errors.New("ssh known_hosts is empty: give the server's host key, or set InsecureSkipHostKey"))
		}
	case "https", "http":
		if len(a.SSHPrivateKey) > 0 || a.SSHKnownHosts != "" || a.InsecureSkipHostKey {
			errs = append(errs, fmt.Errorf("ssh settings do not apply to an %s URL", ep.protocol))
		}
		if len(a.CABundle) > 0 && !x509.NewCertPool().AppendCertsFromPEM(a.CABundle) {
			errs = append(errs, errors.New("CA bundle holds no PEM certificate"))
		}
		if ep.protocol == "http" && (len(a.CABundle) > 0 || a.InsecureSkipTLSVerify) {
			errs = append(errs, errors.New("TLS settings do not apply to an http URL"))
		}
	case "file":
		if a.Username != "" || a.Password != "" || len(a.SSHPrivateKey) > 0 || a.SSHPassphrase != "" ||
			a.SSHKnownHosts != "" || a.InsecureSkipHostKey || len(a.CABundle) > 0 || a.InsecureSkipTLSVerify {
			errs = append(errs, errors.New("credentials do not apply to a local repository"))
		}
	}
	if len(errs) > 0 {
		return invalidError{errors.Join(errs...)}
	}
	return nil
}

// secrets returns every value that must not appear in a message.
func (r Repository) secrets(ep endpoint) []string {
	return []string{r.Auth.Password, r.Auth.SSHPassphrase, string(r.Auth.SSHPrivateKey), ep.password}
}

func parseSigner(key []byte, passphrase string) (ssh.Signer, error) {
	signer, err := ssh.ParsePrivateKey(key)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, errors.New("ssh private key is encrypted and no passphrase was given")
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(key, []byte(passphrase))
	}
	if err != nil {
		// The parser's messages describe the format, never the key material.
		return nil, fmt.Errorf("parsing ssh private key: %w", err)
	}
	return signer, nil
}

// transportOptions are the per-call go-git settings for one repository.
type transportOptions struct {
	auth     transport.AuthMethod
	caBundle []byte
	insecure bool
}

// transportOptions builds the go-git auth method. tmpDir receives the
// known_hosts file for the time it takes to parse it.
func (r Repository) transportOptions(ep endpoint, tmpDir string) (transportOptions, error) {
	a := r.Auth
	switch ep.protocol {
	case "https", "http":
		user, pass := a.Username, a.Password
		if user == "" && pass == "" {
			user, pass = ep.user, ep.password
		}
		opts := transportOptions{caBundle: a.CABundle, insecure: a.InsecureSkipTLSVerify}
		if user != "" || pass != "" {
			if user == "" {
				user = "git"
			}
			opts.auth = &githttp.BasicAuth{Username: user, Password: pass}
		}
		return opts, nil
	case "ssh":
		user := ep.user
		if user == "" {
			user = a.Username
		}
		if user == "" {
			user = "git"
		}
		var helper gitssh.HostKeyCallbackHelper
		if a.InsecureSkipHostKey {
			helper.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // explicitly requested
		} else {
			cb, algos, err := knownHostsCallback(a.SSHKnownHosts, ep, tmpDir)
			if err != nil {
				return transportOptions{}, err
			}
			helper.HostKeyCallback, helper.HostKeyAlgorithms = cb, algos
		}
		if len(a.SSHPrivateKey) > 0 {
			signer, err := parseSigner(a.SSHPrivateKey, a.SSHPassphrase)
			if err != nil {
				return transportOptions{}, invalidError{err}
			}
			return transportOptions{auth: &gitssh.PublicKeys{User: user, Signer: signer, HostKeyCallbackHelper: helper}}, nil
		}
		pass := a.Password
		if pass == "" {
			pass = ep.password
		}
		return transportOptions{auth: &gitssh.Password{User: user, Password: pass, HostKeyCallbackHelper: helper}}, nil
	}
	return transportOptions{}, nil
}

// knownHostsCallback returns a strict host key callback for the known_hosts
// content and the host key algorithms it lists for the server, so that the
// server is asked for a key type that can be verified (go-git leaves this to
// the caller when it supplies its own callback).
func knownHostsCallback(content string, ep endpoint, tmpDir string) (ssh.HostKeyCallback, []string, error) {
	if content == "" {
		return nil, nil, invalidf("ssh known_hosts is empty: give the server's host key, or set InsecureSkipHostKey")
	}
	// knownhosts only reads files; the file lives until it is parsed.
	f, err := os.CreateTemp(tmpDir, "known_hosts-*")
	if err != nil {
		return nil, nil, internal(fmt.Errorf("writing known_hosts: %w", err))
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(content + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, internal(fmt.Errorf("writing known_hosts: %w", err))
	}
	db, err := gitssh.NewKnownHostsDb(f.Name())
	if err != nil {
		return nil, nil, invalidf("parsing known_hosts: %w", err)
	}
	port := ep.port
	if port == 0 {
		port = 22
	}
	return db.HostKeyCallback(), db.HostKeyAlgorithms(net.JoinHostPort(strings.Trim(ep.host, "[]"), strconv.Itoa(port))), nil
}
