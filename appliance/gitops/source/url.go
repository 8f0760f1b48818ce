package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// endpoint is a parsed repository URL.
type endpoint struct {
	// protocol is ssh, https, http or file.
	protocol string
	// dial is the URL handed to go-git: the URL as given, without the
	// password (and, for http, without any userinfo; it is sent as basic
	// auth instead). scp-like URLs stay scp-like, as their path is relative
	// to the login directory.
	dial string
	// user and password come from the URL's userinfo.
	user, password string
	// host and port are empty and 0 for file URLs.
	host string
	port int
	// path is the absolute directory of a file URL.
	path string
	// normalized identifies the repository independent of spelling:
	// lower-case host, default port and ".git" suffix dropped, no userinfo.
	normalized string
	// redacted is the URL fit for messages.
	redacted string
}

// local reports whether the repository is on this machine.
func (e endpoint) local() bool { return e.protocol == "file" }

// key is the name of the repository's cache directory.
func (e endpoint) key() string {
	sum := sha256.Sum256([]byte(e.normalized))
	return hex.EncodeToString(sum[:])
}

var defaultPorts = map[string]int{"ssh": 22, "https": 443, "http": 80}

// NormalizeURL returns the canonical spelling of a repository URL, the one
// whose SHA-256 names the repository's cache directory: scheme and host in
// lower case, scp-like URLs as ssh://, no userinfo, no default port, no
// trailing slash or ".git", local paths absolute. Two URLs that normalise
// equally share a cache.
func NormalizeURL(raw string) (string, error) {
	ep, err := parseEndpoint(raw)
	if err != nil {
		return "", err
	}
	return ep.normalized, nil
}

func parseEndpoint(raw string) (endpoint, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return endpoint{}, invalidf("repository URL is empty")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return endpoint{}, invalidf("parsing repository URL %s: %s", RedactURL(raw), RedactURL(err.Error()))
	}
	e := endpoint{
		protocol: strings.ToLower(ep.Protocol),
		user:     ep.User,
		password: ep.Password,
		host:     strings.ToLower(ep.Host),
		port:     ep.Port,
	}
	switch e.protocol {
	case "file":
		p := ep.Path
		if !filepath.IsAbs(p) {
			if p, err = filepath.Abs(p); err != nil {
				return endpoint{}, invalidf("making %q absolute: %w", ep.Path, err)
			}
		}
		e.path = filepath.Clean(p)
		e.dial = e.path
		e.normalized = "file://" + e.path
		e.redacted = e.normalized
		return e, nil
	case "ssh", "https", "http":
	default:
		return endpoint{}, invalidf("repository URL %s: unsupported scheme %q (want https, http, ssh, file or a local path)", RedactURL(raw), ep.Protocol)
	}
	if e.host == "" {
		return endpoint{}, invalidf("repository URL %s has no host", RedactURL(raw))
	}

	e.dial = raw
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return endpoint{}, invalidf("parsing repository URL %s: %s", RedactURL(raw), RedactURL(err.Error()))
		}
		switch {
		case e.protocol != "ssh":
			u.User = nil
		case u.User != nil:
			u.User = url.User(u.User.Username())
		}
		e.dial = u.String()
	}

	path := "/" + strings.TrimPrefix(ep.Path, "/")
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	hostPort := e.host
	if e.port != 0 && e.port != defaultPorts[e.protocol] {
		hostPort += ":" + strconv.Itoa(e.port)
	}
	e.normalized = fmt.Sprintf("%s://%s%s", e.protocol, hostPort, path)
	e.redacted = RedactURL(e.dial)
	return e, nil
}
