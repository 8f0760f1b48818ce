//go:build e2e

package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const webhookSecret = "e2e-webhook-secret-0123456789"

func TestGitOpsWebhookTriggersASyncAtOnce(t *testing.T) {
	port := freePort(t)
	// A poll interval far longer than the test: only the webhook can sync it.
	s := newServer(t, "--gitops.poll-interval", "10m", "--gitops.webhook-listen", "127.0.0.1:"+strconv.Itoa(port), "--gitops.webhook-secret", webhookSecret)
	s.start()
	s.waitReady(2 * time.Minute)
	repo := newRepo(t, argoLayout())
	eventually(t, time.Minute, "the Application CRD", func() error {
		_, err := s.kubectl("get", "crd", "applications.argoproj.io")
		return err
	})
	s.kubectlApply(argoApp("hooked", repo.url(), "apps/overlays/production", automatedFull))
	s.waitApp(t, "hooked", "synced", time.Minute, synced(repo.head()))

	post := func(headers map[string]string, body string) int {
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/api/webhook", port), strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("a GitLab push with the right token syncs at once", func(t *testing.T) {
		rev := repo.commit("gitlab push", map[string]string{"apps/base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pushed\ndata: {v: gitlab}\n", "apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n- cm.yaml\n"})
		begin := time.Now()
		if code := post(map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": webhookSecret}, `{"project":{"git_http_url":"`+repo.url()+`"}}`); code != http.StatusAccepted {
			t.Fatalf("status %d", code)
		}
		s.waitApp(t, "hooked", "synced after the push", 20*time.Second, synced(rev))
		t.Logf("push → synced in %s", time.Since(begin).Round(10*time.Millisecond))
	})
	t.Run("a GitHub push signed with the secret syncs at once", func(t *testing.T) {
		rev := repo.commit("github push", map[string]string{"apps/base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pushed\ndata: {v: github}\n"})
		body := `{"repository":{"clone_url":"` + repo.url() + `"}}`
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write([]byte(body))
		sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if code := post(map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sig}, body); code != http.StatusAccepted {
			t.Fatalf("status %d", code)
		}
		s.waitApp(t, "hooked", "synced after the push", 20*time.Second, synced(rev))
	})
	t.Run("a wrong secret is refused", func(t *testing.T) {
		if code := post(map[string]string{"X-Gitlab-Token": "wrong"}, `{"project":{"git_http_url":"`+repo.url()+`"}}`); code != http.StatusUnauthorized {
			t.Fatalf("status %d", code)
		}
		if code := post(nil, `{}`); code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated: status %d", code)
		}
	})
}

func TestGitOpsApplicationsFromTheConfigFile(t *testing.T) {
	repo := newRepo(t, argoLayout())
	s := newServer(t)
	dir := filepath.Join(s.dataDir, "applications")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(argoApp("from-config", repo.url(), "apps/overlays/production", automatedFull)), 0o600)
	os.WriteFile(filepath.Join(s.dataDir, "config.yaml"), []byte("gitops:\n  applications-dir: "+dir+"\n  poll-interval: 1s\n"), 0o600)
	s.start()
	s.waitReady(2 * time.Minute)
	s.waitApp(t, "from-config", "synced with no kubectl at all", time.Minute, synced(repo.head()))
	s.mustKubectl("get", "deploy", "app", "-n", "payments")
}
