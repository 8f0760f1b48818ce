package fsyncgate

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fsInfo says where a directory lives.
type fsInfo struct {
	// device is the directory's st_dev as "major:minor".
	device string
	// fsType is the filesystem's name ("ext4", "overlay on tmpfs") or its
	// statfs magic in hex when unknown.
	fsType string
	// nonDurable is set for filesystems that live in memory, where fdatasync
	// costs nothing and every byte is lost on reboot.
	nonDurable bool
}

// Filesystem magic numbers from statfs(2) (linux/magic.h). ext2, ext3 and ext4
// share one.
var fsMagics = map[uint32]string{
	0xef53:     "ext4",
	0x58465342: "xfs",
	0x9123683e: "btrfs",
	0x2fc12fc1: "zfs",
	0xf2f52010: "f2fs",
	0xca451a4e: "bcachefs",
	0x3434:     "nilfs2",
	0x52654973: "reiserfs",
	0x3153464a: "jfs",
	0x01021994: "tmpfs",
	0x858458f6: "ramfs",
	0x794c7630: "overlay",
	0x6969:     "nfs",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x00c36400: "ceph",
	0x65735546: "fuse",
	0x01021997: "9p",
	0x4d44:     "vfat",
	0x2011bab0: "exfat",
	0x7366746e: "ntfs3",
	0x5346544e: "ntfs",
	0xf15f:     "ecryptfs",
	0x73717368: "squashfs",
	0x9660:     "iso9660",
	0x62656572: "sysfs",
	0x9fa0:     "proc",
}

// nonDurableFS lists the filesystems that keep data in memory only.
var nonDurableFS = map[string]bool{"tmpfs": true, "ramfs": true}

// statFS returns the device and filesystem of dir. For overlay it also looks
// at the upper directory's filesystem (from /proc/self/mountinfo, when that
// path is visible here), since an overlay on tmpfs is as non-durable as tmpfs.
func statFS(dir string) (fsInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fsInfo{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return fsInfo{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	info := fsInfo{
		// Dev and Type have different integer types on different platforms.
		device: fmt.Sprintf("%d:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev))),
		fsType: fsName(uint32(sfs.Type)),
	}
	info.nonDurable = nonDurableFS[info.fsType]
	if info.fsType == "overlay" {
		if upper, ok := overlayUpperFS(dir); ok {
			info.fsType = "overlay on " + upper
			info.nonDurable = nonDurableFS[upper]
		}
	}
	return info, nil
}

// fsName names a statfs magic number (every magic fits in 32 bits).
func fsName(m uint32) string {
	if name, ok := fsMagics[m]; ok {
		return name
	}
	return fmt.Sprintf("0x%x", m)
}

// overlayUpperFS returns the filesystem name of the upper directory of the
// overlay mount holding dir, when it can be found and stat'ed from here (in a
// container the upper directory is usually a host path that cannot).
func overlayUpperFS(dir string) (string, bool) {
	path, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	upper, ok := overlayUpperDir(f, path)
	if !ok {
		return "", false
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(upper, &sfs); err != nil {
		return "", false
	}
	return fsName(uint32(sfs.Type)), true
}

// overlayUpperDir reads mountinfo (proc(5)) and returns the upperdir option of
// the mount that holds path, when that mount is an overlay.
func overlayUpperDir(mountinfo io.Reader, path string) (string, bool) {
	var best, bestType, bestOpts string
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		mnt := unescapeMountinfo(fields[4])
		if !underMount(path, mnt) {
			continue
		}
		// Later lines are mounted on top of earlier ones, so >= keeps the last.
		if len(mnt) >= len(best) {
			best, bestType, bestOpts = mnt, tail[0], tail[2]
		}
	}
	if best == "" || bestType != "overlay" {
		return "", false
	}
	for _, opt := range strings.Split(bestOpts, ",") {
		if v, ok := strings.CutPrefix(opt, "upperdir="); ok {
			return unescapeMountinfo(v), true
		}
	}
	return "", false
}

// underMount reports whether path is mnt or below it.
func underMount(path, mnt string) bool {
	if mnt == "/" || path == mnt {
		return true
	}
	return strings.HasPrefix(path, mnt+"/")
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) mountinfo uses
// in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// bootIDFile holds a random id the kernel draws at every boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// readBootID returns this boot's id.
func readBootID() (string, error) {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
