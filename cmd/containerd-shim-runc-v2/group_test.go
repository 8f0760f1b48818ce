package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
)

// recorder is the wrapped manager: it records where and for which id
// Start ran, and what config.json it would have grouped by.
type recorder struct {
	shim.Shim
	cwd, id, spec string
}

func (r *recorder) Start(ctx context.Context, p *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	r.cwd, _ = os.Getwd()
	r.id = p.GetInstanceID()
	data, _ := os.ReadFile("config.json")
	r.spec = string(data)
	return &bootapi.BootstrapResult{Address: "unix:///x"}, nil
}

func TestGroupedStart(t *testing.T) {
	ctx := namespaces.WithNamespace(t.Context(), "k8s.io")
	start := func(t *testing.T, spec string) (*recorder, string) {
		t.Helper()
		bundle := t.TempDir()
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Chdir(bundle)
		r := &recorder{}
		dir := t.TempDir()
		params := &bootapi.BootstrapParams{InstanceID: "pod-1", ContainerdGrpcAddress: "/run/c.sock", SocketDir: ptr("/run/s")}
		if _, err := (grouped{Shim: r, dir: dir}).Start(ctx, params); err != nil {
			t.Fatal(err)
		}
		if cwd, _ := os.Getwd(); cwd != bundle {
			t.Errorf("Start left the working directory at %s, want the bundle %s", cwd, bundle)
		}
		return r, dir
	}

	t.Run("runs a pod's container in the namespace's group directory as the group", func(t *testing.T) {
		r, dir := start(t, `{"annotations":{"io.kubernetes.cri.sandbox-id":"pod-1"}}`)
		if want := filepath.Join(dir, "k8s.io"); r.cwd != want {
			t.Errorf("wrapped Start ran in %s, want %s", r.cwd, want)
		}
		if r.id != groupName {
			t.Errorf("instance id %q, want %q", r.id, groupName)
		}
		if r.spec != "{}\n" {
			t.Errorf("the group's config.json is %q, want one without annotations", r.spec)
		}
		want, err := shim.CreateSocketAddress(ctx, "/run/s", "/run/c.sock", groupName, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "k8s.io", "address")); string(got) != want {
			t.Errorf("address file %q, want %q", got, want)
		}
		if got, _ := os.Readlink(filepath.Join(dir, "k8s.io", "s")); got != "/run/s" {
			t.Errorf("socket dir link %q, want /run/s", got)
		}
	})

	t.Run("keeps a group the container asks for", func(t *testing.T) {
		r, _ := start(t, `{"annotations":{"io.containerd.runc.v2.group":"mine"}}`)
		if r.id != "pod-1" || filepath.Base(r.cwd) == "k8s.io" {
			t.Errorf("wrapped Start ran as %q in %s, want the bundle and the container's id", r.id, r.cwd)
		}
	})
}

func ptr[T any](v T) *T { return &v }
