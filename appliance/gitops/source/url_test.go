package source

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"an scp-like URL becomes ssh://", "git@github.com:Org/Repo.git", "ssh://github.com/Org/Repo"},
		{"an ssh URL drops its user and default port", "ssh://git@GitHub.com:22/org/repo.git", "ssh://github.com/org/repo"},
		{"an ssh URL keeps another port", "ssh://root@127.0.0.1:2222/srv/repo.git", "ssh://127.0.0.1:2222/srv/repo"},
		{"an https URL drops credentials, default port and .git", "https://user:tok@Example.COM:443/org/repo.git/", "https://example.com/org/repo"},
		{"an https URL without .git normalises equally", "https://example.com/org/repo", "https://example.com/org/repo"},
		{"a file URL is its path", "file:///srv/git/repo.git", "file:///srv/git/repo.git"},
		{"a plain path is a file URL", "/srv/git/repo.git", "file:///srv/git/repo.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeURL(tt.url)
			if err != nil || got != tt.want {
				t.Errorf("NormalizeURL(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
			}
		})
	}
	t.Run("unsupported schemes are refused", func(t *testing.T) {
		if _, err := NormalizeURL("git://example.com/repo.git"); err == nil {
			t.Error("git:// accepted")
		}
	})
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a password is removed", `fetching https://user:hunter2@host/repo: 401`, `fetching https://***@host/repo: 401`},
		{"an https token as user name is removed", `Get "https://ghp_abcdef@github.com/o/r/info/refs": EOF`, `Get "https://***@github.com/o/r/info/refs": EOF`},
		{"an ssh user without password is kept", `ssh://git@host/repo`, `ssh://git@host/repo`},
		{"an ssh password is removed", `ssh://git:pw@host/repo`, `ssh://***@host/repo`},
		{"every URL in a message is redacted", `a http://u:p@a/x and https://v:q@b/y`, `a http://***@a/x and https://***@b/y`},
		{"text without URLs is unchanged", `revision "main" not found`, `revision "main" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("configured secrets are hidden even outside URLs", func(t *testing.T) {
		r := newRedactor("p@ss/word", "abc")
		got := r.redact("server said: bad password p@ss/word (escaped p%40ss%2Fword); abc stays")
		if strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") || !strings.Contains(got, "abc stays") {
			t.Errorf("redact = %q", got)
		}
	})
}

func TestValidate(t *testing.T) {
	key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
	tests := []struct {
		name string
		repo Repository
		want []string // substrings of the error; none means valid
	}{
		{name: "an anonymous https repository is valid", repo: Repository{URL: "https://example.com/r.git"}},
		{name: "an empty URL is refused", repo: Repository{}, want: []string{"URL is empty"}},
		{name: "ssh without a key is refused", repo: Repository{URL: "git@example.com:r.git", Auth: Auth{SSHKnownHosts: "x"}}, want: []string{"needs a private key"}},
		{name: "ssh reports every problem at once", repo: Repository{URL: "ssh://git@example.com/r.git", Auth: Auth{SSHPrivateKey: key, CABundle: []byte("x")}},
			want: []string{"parsing ssh private key", "known_hosts is empty", "do not apply to an ssh URL"}},
		{name: "ssh settings on https are refused", repo: Repository{URL: "https://example.com/r.git", Auth: Auth{SSHKnownHosts: "x"}}, want: []string{"ssh settings do not apply"}},
		{name: "a CA bundle without certificates is refused", repo: Repository{URL: "https://example.com/r.git", Auth: Auth{CABundle: []byte("junk")}}, want: []string{"no PEM certificate"}},
		{name: "credentials for a local path are refused", repo: Repository{URL: "/srv/repo", Auth: Auth{Password: "x"}}, want: []string{"do not apply to a local repository"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.repo.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var inv invalidError
			if !errors.As(err, &inv) || !classify(err).Terminal() {
				t.Errorf("validation error is not terminal")
			}
		})
	}
}
