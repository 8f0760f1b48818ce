package gitops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// webhookPayload holds the repository URLs of GitHub and GitLab push events.
type webhookPayload struct {
	Repository struct {
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		HTMLURL  string `json:"html_url"`
		GitURL   string `json:"git_url"`
	} `json:"repository"`
	Project struct {
		HTTPURL string `json:"git_http_url"`
		SSHURL  string `json:"git_ssh_url"`
		WebURL  string `json:"web_url"`
	} `json:"project"`
}

func (p webhookPayload) urls() []string {
	var out []string
	for _, u := range []string{p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL, p.Repository.GitURL, p.Project.HTTPURL, p.Project.SSHURL, p.Project.WebURL} {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// webhookHandler serves POST /api/webhook (Argo CD's path) for GitHub and
// GitLab push events, authenticated by the shared secret: GitHub's
// X-Hub-Signature-256 HMAC or GitLab's X-Gitlab-Token. Every Application
// whose repoURL matches a URL of the pushed repository syncs at once.
func (e *Engine) webhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/webhook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 5<<20))
		if err != nil {
			http.Error(w, "reading the body", http.StatusBadRequest)
			return
		}
		if err := e.authenticate(r, body); err != nil {
			e.log.Warn("webhook refused", "remote", r.RemoteAddr, "reason", err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if ev := r.Header.Get("X-GitHub-Event"); ev == "ping" {
			w.WriteHeader(http.StatusOK)
			return
		}
		var p webhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "the body is not a GitHub or GitLab push event", http.StatusBadRequest)
			return
		}
		n := 0
		for _, u := range p.urls() {
			n += e.Trigger(u)
		}
		e.log.Info("webhook", "repository", strings.Join(p.urls(), " "), "applications", n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"triggered\":%d}\n", n)
	})
	return mux
}

func (e *Engine) authenticate(r *http.Request, body []byte) error {
	secret := e.cfg.WebhookSecret
	if sig := r.Header.Get("X-Hub-Signature-256"); sig != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(sig), []byte(want)) {
			return errors.New("X-Hub-Signature-256 does not match the shared secret")
		}
		return nil
	}
	if tok := r.Header.Get("X-Gitlab-Token"); tok != "" {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) != 1 {
			return errors.New("X-Gitlab-Token does not match the shared secret")
		}
		return nil
	}
	return errors.New("no X-Hub-Signature-256 (GitHub) or X-Gitlab-Token (GitLab) header")
}

// serveWebhook listens on WebhookListen until ctx ends.
func (e *Engine) serveWebhook(ctx context.Context) error {
	l, err := net.Listen("tcp", e.cfg.WebhookListen)
	if err != nil {
		return fmt.Errorf("gitops.webhook-listen %s: %w", e.cfg.WebhookListen, err)
	}
	srv := &http.Server{Handler: e.webhookHandler(), ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("webhook server stopped", "err", err)
		}
	}()
	e.log.Info("webhook listening", "address", l.Addr().String(), "path", "/api/webhook")
	return nil
}
