package dns

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"k8s.io/klog/v2"
)

// TestServerLifecycle starts the real CoreDNS against an API server that is
// not there (its kubernetes plugin gives up waiting after 5s): it must
// listen and answer, leave klog's logger alone, and stop cleanly, twice.
func TestServerLifecycle(t *testing.T) {
	if conf, err := os.ReadFile(HostResolvConf); err != nil || !strings.Contains(string(conf), "nameserver") {
		t.Skipf("forward needs a nameserver in %s", HostResolvConf)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()

	klogged := &syncBuffer{}
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(klogged, nil)))
	t.Cleanup(klog.ClearLogger)

	cfg := Default()
	cfg.ClusterDNSPort = port
	s := New(cfg, Runtime{Kubeconfig: kubeconfig, NodeIP: net.ParseIP("127.0.0.1"), ClusterDomain: "cluster.local",
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}) // the log package stays routed here: not t.Output
	ctx := t.Context()
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })

	klog.InfoS("probe after start")
	klog.Flush()
	if !strings.Contains(klogged.String(), "probe after start") {
		t.Errorf("klog's logger was replaced by CoreDNS's")
	}

	q := new(mdns.Msg)
	q.SetQuestion("kubernetes.default.svc.cluster.local.", mdns.TypeA)
	if _, _, err := (&mdns.Client{Timeout: 2 * time.Second}).ExchangeContext(ctx, q, s.addr()); err != nil {
		t.Errorf("CoreDNS does not answer on %s: %v", s.addr(), err)
	}

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := s.Stop(stopCtx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	select {
	case err := <-s.Err():
		t.Errorf("Err after Stop: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := net.ListenPacket("udp", s.addr()); err != nil {
		t.Errorf("the port is still bound after Stop: %v", err)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
