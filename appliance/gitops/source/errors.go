package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Kind says why an operation failed, in words fit for a status reason.
type Kind string

const (
	// KindUnavailable is a failure that may go away by itself: the server
	// cannot be reached, timed out or answered with a server error. It is the
	// only retryable kind besides KindInternal.
	KindUnavailable Kind = "Unavailable"
	// KindInternal is a failure of the local cache (disk full, permissions);
	// it is retryable.
	KindInternal Kind = "Internal"
	// KindAuthFailed means the server refused the credentials, or needs some
	// and none were given. Terminal.
	KindAuthFailed Kind = "AuthenticationFailed"
	// KindUntrustedServer means the server's identity could not be verified:
	// an ssh host key missing from or contradicting known_hosts, or a TLS
	// certificate that does not verify. Terminal.
	KindUntrustedServer Kind = "UntrustedServer"
	// KindRepositoryNotFound means the server has no such repository. Terminal.
	KindRepositoryNotFound Kind = "RepositoryNotFound"
	// KindRevisionNotFound means the repository has no such branch, tag or
	// commit. The error wraps a *RevisionNotFoundError. Terminal.
	KindRevisionNotFound Kind = "RevisionNotFound"
	// KindInvalid means the request itself is unusable: an unsupported URL,
	// an unparsable key, missing known_hosts, an ambiguous short SHA, a
	// malformed tree. Terminal.
	KindInvalid Kind = "Invalid"
)

// Terminal reports whether retrying cannot help until the Application or its
// credentials change.
func (k Kind) Terminal() bool {
	return k != KindUnavailable && k != KindInternal
}

// Error is the error returned by every operation of this package. Its message
// names the operation and the repository and never contains credentials:
// user:password@ is removed from every URL in it and the configured secrets
// are replaced by "***". Unwrap gives the underlying error for errors.Is and
// errors.As; print the *Error, not what it wraps.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Op is the operation, such as `fetching "main"`.
	Op string
	// URL is the repository URL without credentials.
	URL string
	// Err is the underlying error.
	Err error

	msg string
}

// Error returns "<op> from <url>: <redacted cause>".
func (e *Error) Error() string {
	return fmt.Sprintf("%s from %s: %s", e.Op, e.URL, e.msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Terminal reports whether retrying cannot help; see Kind.Terminal.
func (e *Error) Terminal() bool { return e.Kind.Terminal() }

// RevisionNotFoundError is the cause of a KindRevisionNotFound *Error: the
// revision names no branch, tag or commit of the repository.
type RevisionNotFoundError struct {
	// Revision is the revision as requested.
	Revision string
}

// Error returns `revision "<revision>" not found`.
func (e *RevisionNotFoundError) Error() string {
	return fmt.Sprintf("revision %q not found", e.Revision)
}

// IsTerminal reports whether err is a failure that retrying will not fix
// (wrong credentials, untrusted server, missing repository or revision,
// invalid request). Errors not from this package are treated as retryable.
func IsTerminal(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Terminal()
	}
	var rnf *RevisionNotFoundError
	return errors.As(err, &rnf)
}

// invalidError marks a cause as KindInvalid for classify.
type invalidError struct{ err error }

func (e invalidError) Error() string { return e.err.Error() }
func (e invalidError) Unwrap() error { return e.err }

func invalidf(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// internalError marks a cause as KindInternal for classify.
type internalError struct{ err error }

func (e internalError) Error() string { return e.err.Error() }
func (e internalError) Unwrap() error { return e.err }

func internal(err error) error {
	if err == nil {
		return nil
	}
	return internalError{err}
}

// classify maps an error from go-git, x/crypto/ssh, crypto/tls or this
// package to a Kind.
func classify(err error) Kind {
	var (
		pkgErr   *Error
		rnf      *RevisionNotFoundError
		inv      invalidError
		intl     internalError
		keyErr   *knownhosts.KeyError
		revoked  *knownhosts.RevokedError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &pkgErr):
		return pkgErr.Kind
	case errors.As(err, &rnf):
		return KindRevisionNotFound
	case errors.As(err, &inv):
		return KindInvalid
	case errors.As(err, &intl):
		return KindInternal
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindUnavailable
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(msg, "ssh: unable to authenticate"):
		return KindAuthFailed
	case errors.As(err, &keyErr), errors.As(err, &revoked),
		errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify),
		// x/crypto/ssh flattens the host key callback's error in some paths.
		strings.Contains(msg, "knownhosts: key is unknown"),
		strings.Contains(msg, "knownhosts: key mismatch"):
		return KindUntrustedServer
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return KindRepositoryNotFound
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return KindRevisionNotFound
	}
	return KindUnavailable
}

// redactor removes credentials from messages.
type redactor struct {
	secrets []string
}

// newRedactor returns a redactor that also hides the given secret values
// (and their URL-escaped forms). Values shorter than 4 bytes are not
// searched for, as replacing them would garble the message without hiding
// anything a guess could not find.
func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		r.secrets = append(r.secrets, s)
		for _, esc := range []string{url.PathEscape(s), url.QueryEscape(s)} {
			if esc != s {
				r.secrets = append(r.secrets, esc)
			}
		}
	}
	return r
}

// userinfoRE matches "scheme://userinfo@" in free text.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^/@\s'"]+)@`)

// RedactURL removes credentials from every URL in s: the userinfo of http(s)
// URLs (a token is often the user name), and the password of any other URL.
// An ssh user name without a password, such as git@, is kept.
func RedactURL(s string) string {
	return userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRE.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		lower := strings.ToLower(scheme)
		if !strings.Contains(info, ":") && !strings.HasPrefix(lower, "http") {
			return m
		}
		return scheme + "***@"
	})
}

func (r redactor) redact(s string) string {
	s = RedactURL(s)
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

// wrap turns err into an *Error for op, classifying it unless it already is
// one.
func (r redactor) wrap(op, redactedURL string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: classify(err), Op: op, URL: redactedURL, Err: err, msg: r.redact(err.Error())}
}
