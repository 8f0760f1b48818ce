package systemd

import (
	_ "embed" // the unit file
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Unit is systemd/fjord.service, the unit `fjord install` writes: the file
// in the repository is the file installed.
//
//go:embed fjord.service
var Unit []byte

// Where an installation lives, as the installed system sees it.
const (
	UnitName    = "fjord.service"
	UnitPath    = "/etc/systemd/system/" + UnitName
	BinaryPath  = "/usr/local/bin/fjord"
	KillallPath = "/usr/local/bin/fjord-killall"
	// WantsLink is what `systemctl enable` makes for WantedBy=multi-user.target.
	WantsLink = "/etc/systemd/system/multi-user.target.wants/" + UnitName
)

// Booted reports whether systemd is the init system of this machine, as
// sd_booted(3) tells: /run/systemd/system exists only then.
func Booted() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// Installation is what `fjord install` writes. Every path is below Root
// ("/" for this host; another directory for a root filesystem being built),
// and every file is replaced atomically, so re-running an install upgrades
// it and an interrupted one leaves the previous files whole.
type Installation struct {
	// Root is the prefix of every path written.
	Root string
	// Binary is the fjord executable to copy to BinaryPath (the running one).
	Binary string
	// ConfigFile is the server's configuration file (/etc/fjord/config.yaml).
	ConfigFile string
	// Config is the content for ConfigFile; nil keeps the file there is.
	Config []byte
	// DataDir is the server's data dir, which the killall helper is for.
	DataDir string
}

// Write puts the binary, the killall helper, the configuration and the unit
// in place and enables the unit the way `systemctl enable` does (a link in
// multi-user.target.wants). It returns one line per change.
func (in Installation) Write() ([]string, error) {
	var done []string
	path := func(p string) string { return filepath.Join(in.Root, p) }

	dst := path(BinaryPath)
	if same, err := sameFile(in.Binary, dst); err != nil {
		return done, err
	} else if same {
		done = append(done, "kept "+dst+" (it is the running binary)")
	} else {
		if err := copyFileAtomic(in.Binary, dst, 0o755); err != nil {
			return done, fmt.Errorf("installing the binary: %w", err)
		}
		done = append(done, "installed "+dst)
	}

	if err := WriteFileAtomic(path(KillallPath), KillallScript(in.DataDir), 0o755); err != nil {
		return done, fmt.Errorf("writing the killall helper: %w", err)
	}
	done = append(done, "wrote "+path(KillallPath))

	cfg := path(in.ConfigFile)
	if in.Config != nil {
		// 0600: a datastore DSN or the webhook secret may be in it.
		if err := WriteFileAtomic(cfg, in.Config, 0o600); err != nil {
			return done, fmt.Errorf("writing the configuration: %w", err)
		}
		done = append(done, "wrote "+cfg)
	} else if _, err := os.Stat(cfg); err == nil {
		done = append(done, "kept "+cfg+" (no server flags given)")
	}

	if err := WriteFileAtomic(path(UnitPath), Unit, 0o644); err != nil {
		return done, fmt.Errorf("writing the unit: %w", err)
	}
	done = append(done, "wrote "+path(UnitPath))

	link := path(WantsLink)
	if target, err := os.Readlink(link); err != nil || target != UnitPath {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return done, fmt.Errorf("enabling the unit: %w", err)
		}
		os.Remove(link)
		if err := os.Symlink(UnitPath, link); err != nil {
			return done, fmt.Errorf("enabling the unit: %w", err)
		}
		done = append(done, "enabled "+UnitName+" ("+link+")")
	}
	return done, nil
}

// KillallScript is the fjord-killall helper: it stops fjord.service (where
// systemd runs) and then every pod, like k3s-killall.sh.
func KillallScript(dataDir string) []byte {
	return []byte(`#!/bin/sh
# Written by fjord install. Stops fjord.service, then every pod, the
# container runtime and the node's interfaces, iptables rules and mounts
# (fjord killall). The data dir (images, volumes, cluster state) is kept.
set -e
if [ -d /run/systemd/system ]; then
	systemctl stop ` + UnitName + `
fi
exec ` + BinaryPath + ` killall --data-dir ` + shellQuote(dataDir) + ` "$@"
`)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Removal is what `fjord uninstall` removes, below Root.
type Removal struct {
	// Root is the prefix of every path removed.
	Root string
	// ConfigFile is the server's configuration file; with Purge its
	// directory goes too.
	ConfigFile string
	// Purge also removes DataDir and ConfigFile's directory (drop-ins,
	// Applications, sealing keys a cloud-init put there).
	Purge   bool
	DataDir string
}

// Check reports, before anything is stopped, why Remove would refuse the
// data dir to purge.
func (r Removal) Check() error {
	if !r.Purge {
		return nil
	}
	_, err := purgeable(r.DataDir)
	return err
}

// Remove deletes the unit, its enable link, the configuration file, the
// killall helper and the binary, and with Purge the configuration directory
// and the data dir. The data dir is refused when something is still mounted
// below it (run fjord killall first) or when it is a system directory. It
// returns one line per removal.
func (r Removal) Remove() ([]string, error) {
	path := func(p string) string { return filepath.Join(r.Root, p) }
	var dataDir string
	if r.Purge {
		var err error
		if dataDir, err = purgeable(r.DataDir); err != nil {
			return nil, err
		}
		dataDir = path(dataDir)
		if mounts, err := mountsBelow(dataDir); err != nil {
			return nil, err
		} else if len(mounts) > 0 {
			return nil, fmt.Errorf("not purging %s: %d mounts are still below it (first %s); run fjord killall first", dataDir, len(mounts), mounts[0])
		}
	}
	var done []string
	var errs []error
	for _, p := range []string{WantsLink, UnitPath, r.ConfigFile, KillallPath, BinaryPath} {
		switch err := os.Remove(path(p)); {
		case err == nil:
			done = append(done, "removed "+path(p))
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	if r.Purge {
		for _, dir := range []string{path(filepath.Dir(r.ConfigFile)), dataDir} {
			if _, err := os.Lstat(dir); err != nil {
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, "removed "+dir)
		}
	} else if _, err := os.Stat(path(r.DataDir)); err == nil {
		done = append(done, "kept "+path(r.DataDir)+" (--purge removes it)")
	}
	return done, errors.Join(errs...)
}

// systemDirs are never purged as a data dir, whatever the configuration says.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/home": true, "/lib": true,
	"/lib64": true, "/media": true, "/mnt": true, "/opt": true, "/proc": true, "/root": true,
	"/run": true, "/sbin": true, "/srv": true, "/sys": true, "/tmp": true, "/usr": true,
	"/usr/local": true, "/var": true, "/var/lib": true, "/var/tmp": true,
}

// purgeable returns the cleaned data dir, or why it must not be removed.
func purgeable(dataDir string) (string, error) {
	clean := filepath.Clean(dataDir)
	if !filepath.IsAbs(dataDir) {
		return "", fmt.Errorf("not purging data-dir %q: not an absolute path", dataDir)
	}
	if systemDirs[clean] {
		return "", fmt.Errorf("not purging data-dir %s: it is a system directory", clean)
	}
	return clean, nil
}

// mountsBelow lists the mount points at or below dir (/proc/self/mountinfo).
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sameFile reports whether a and b are the same file; a missing b is not.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("reading the fjord binary: %w", err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, nil
	}
	return os.SameFile(sa, sb), nil
}

// WriteFileAtomic writes data to path with perm through a temporary file in
// the same directory, synced and renamed over path: readers see the old
// file or the new one, never half of it. Missing directories are made 0755.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// copyFileAtomic copies src to dst like WriteFileAtomic. A running binary
// at dst is replaced, not overwritten: rename leaves the running process
// its old file (writing into it would fail with ETXTBSY).
func copyFileAtomic(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, perm, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func writeAtomic(path string, perm fs.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
