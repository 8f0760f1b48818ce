package images

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBusyboxRootfsRefusesWhatItCannotUse(t *testing.T) {
	text := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, busybox, want string
	}{
		{"a script", text, "is not an ELF executable"},
		{"a missing file", filepath.Join(t.TempDir(), "nope"), "no such file"},
	}
	// Debian's coreutils are dynamically linked.
	if err := checkStatic("/bin/ls"); err != nil && strings.Contains(err.Error(), "dynamically linked") {
		tests = append(tests, struct{ name, busybox, want string }{"a dynamic binary", "/bin/ls", "install a static busybox"})
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rootfs")
			err := BusyboxRootfs(t.Context(), tt.busybox, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("made %s anyway", dir)
			}
		})
	}
}

func TestBusyboxRootfs(t *testing.T) {
	const busybox = "/bin/busybox"
	if err := checkStatic(busybox); err != nil {
		t.Skipf("no static busybox here (make images installs Debian's busybox-static): %v", err)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := BusyboxRootfs(t.Context(), busybox, dir); err != nil {
		t.Fatal(err)
	}

	t.Run("links the applets to busybox", func(t *testing.T) {
		for _, applet := range []string{"sh", "ls", "sleep"} {
			if link, err := os.Readlink(filepath.Join(dir, "bin", applet)); err != nil || link != "busybox" {
				t.Errorf("bin/%s -> %q (%v), want busybox", applet, link, err)
			}
		}
	})
	t.Run("makes a sticky world-writable tmp", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(dir, "tmp"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o777 || fi.Mode()&fs.ModeSticky == 0 {
			t.Errorf("tmp has mode %v", fi.Mode())
		}
	})
	t.Run("knows root", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, "etc", "passwd"))
		if err != nil || !strings.HasPrefix(string(b), "root:x:0:0:") {
			t.Errorf("etc/passwd = %q (%v)", b, err)
		}
	})
	t.Run("refuses a directory that is not empty", func(t *testing.T) {
		if err := BusyboxRootfs(t.Context(), busybox, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("got error %v", err)
		}
	})
	t.Run("builds into an archive", func(t *testing.T) {
		spec := BusyboxSpec
		spec.Name = "busybox"
		out := filepath.Join(t.TempDir(), "busybox.tar")
		img, err := Build(t.Context(), dir, out, spec)
		if err != nil {
			t.Fatal(err)
		}
		if img.Name != "docker.io/library/busybox:latest" {
			t.Errorf("named %q", img.Name)
		}
	})
}
