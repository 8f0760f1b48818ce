package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/fjord-dev/fjord/images"
)

// configOf returns the name and config of the one image in an archive.
func configOf(t *testing.T, archive string) (string, v1.Config) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := lp.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests[0].Annotations[images.AnnotationImageName], cf.Config
}

func TestRun(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(rootfs, "pause"), []byte("not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantName   string
		wantConfig v1.Config
		needs      string
	}{
		{
			name:       "--pause names the image PauseImage and runs /pause",
			args:       []string{"--pause", "--rootfs", rootfs},
			wantName:   images.PauseImage,
			wantConfig: v1.Config{Entrypoint: []string{"/pause"}},
		},
		{
			name:       "the arguments after the flags are the command",
			args:       []string{"--rootfs", rootfs, "--name", "app", "--entrypoint", "/bin/app", "--entrypoint", "-v", "--env", "A=1", "--workdir", "/srv", "serve", "--port=80"},
			wantName:   "docker.io/library/app:latest",
			wantConfig: v1.Config{Entrypoint: []string{"/bin/app", "-v"}, Cmd: []string{"serve", "--port=80"}, Env: []string{"A=1"}, WorkingDir: "/srv"},
		},
		{
			name:       "--busybox runs sh with the usual PATH",
			args:       []string{"--busybox", "/bin/busybox"},
			wantName:   "docker.io/library/busybox:latest",
			wantConfig: v1.Config{Cmd: images.BusyboxSpec.Cmd, Env: images.BusyboxSpec.Env},
			needs:      "/bin/busybox",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs != "" {
				if _, err := os.Stat(tt.needs); err != nil {
					t.Skipf("needs %s (make images installs it)", tt.needs)
				}
			}
			out := filepath.Join(t.TempDir(), "out.tar")
			err := run(t.Context(), append([]string{"-o", out}, tt.args...))
			if tt.needs != "" && err != nil && strings.Contains(err.Error(), "dynamically linked") {
				t.Skipf("needs a static %s: %v", tt.needs, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			name, c := configOf(t, out)
			if name != tt.wantName {
				t.Errorf("named %q, want %q", name, tt.wantName)
			}
			w := tt.wantConfig
			if !slices.Equal(c.Entrypoint, w.Entrypoint) || !slices.Equal(c.Cmd, w.Cmd) || !slices.Equal(c.Env, w.Env) || c.WorkingDir != w.WorkingDir {
				t.Errorf("config %+v, want %+v", c, w)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	rootfs := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.tar")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{"--rootfs", rootfs, "--name", "x"}, "-o is required"},
		{"both a rootfs and busybox", []string{"-o", out, "--rootfs", rootfs, "--busybox", "/bin/busybox"}, "exactly one of"},
		{"neither a rootfs nor busybox", []string{"-o", out}, "exactly one of"},
		{"--pause without /pause", []string{"-o", out, "--pause", "--rootfs", rootfs}, "has no /pause"},
		{"--pause with another name", []string{"-o", out, "--pause", "--rootfs", rootfs, "--name", "x"}, "drop --name"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("wrote %s anyway", out)
			}
		})
	}
}
