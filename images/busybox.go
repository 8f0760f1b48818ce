package images

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// BusyboxSpec is the config of a busybox image: no entrypoint, `sh` as the
// command (so a pod's args replace it), the usual PATH. Name is left to the
// caller.
var BusyboxSpec = Spec{
	Cmd: []string{"sh"},
	Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
}

// BusyboxRootfs lays out, in the empty or missing directory dir, a root
// filesystem around the static busybox binary at busybox: /bin/busybox, a
// symlink in /bin for each applet `busybox --list` names (and
// /usr/bin/env), /etc/passwd and
// /etc/group with root and nobody, a world-writable sticky /tmp and the
// usual empty directories. A dynamically linked busybox is refused: the
// rootfs has no libraries for it.
func BusyboxRootfs(ctx context.Context, busybox, dir string) error {
	if err := checkStatic(busybox); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("listing the applets of %s: %w", busybox, err)
	}
	applets := strings.Fields(string(out))
	if !slices.Contains(applets, "sh") {
		return fmt.Errorf("%s has no sh applet", busybox)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err != nil {
		return err
	} else if len(entries) > 0 {
		return fmt.Errorf("the rootfs directory %s is not empty", dir)
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"home", 0o755}, {"proc", 0o755},
		{"root", 0o700}, {"sys", 0o755}, {"tmp", 0o777 | os.ModeSticky}, {"usr", 0o755},
		{"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"var", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(dir, d.path)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		// Chmod, not Mkdir's mode: the umask must not decide the image.
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	files := []struct {
		path, content string
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"},
		{"etc/group", "root:x:0:\nnobody:x:65534:\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, "bin", "busybox")
	if err := os.WriteFile(dst, bin, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		if a == "busybox" || strings.ContainsRune(a, '/') {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return err
		}
	}
	// Scripts start with #!/usr/bin/env more often than with #!/bin/sh.
	if slices.Contains(applets, "env") {
		if err := os.Symlink("/bin/busybox", filepath.Join(dir, "usr", "bin", "env")); err != nil {
			return err
		}
	}
	return nil
}

// checkStatic refuses a file that is not a statically linked ELF executable.
func checkStatic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != elf.ELFMAG {
		return fmt.Errorf("%s is not an ELF executable", path)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := interpreter(p)
			return fmt.Errorf("%s is dynamically linked (interpreter %s): install a static busybox (Debian: busybox-static)", path, interp)
		}
	}
	return nil
}

// interpreter reads a PT_INTERP segment: the dynamic loader's path.
func interpreter(p *elf.Prog) (string, error) {
	b := make([]byte, p.Filesz)
	if _, err := p.ReadAt(b, 0); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(b, "\x00")), nil
}
