// Package pageout hands what a spell of work left resident back to the
// kernel once a process is quiet again: the pages of its binary it no
// longer runs, and the Go heap's free pages. fjord server, its containerd
// and its runc shim each start by touching much of their binary once
// (initialisation, every plugin's registration), and so does a burst of
// pod starts or a large sync; the kernel keeps what was mapped, in large
// folios with readahead, until memory is short, and the Go runtime keeps
// free heap pages up to its next goal.
package pageout

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Executable asks the kernel to reclaim the pages of the running binary's
// read-only mappings (code, read-only data, the Go function tables), and
// returns how many bytes it advised. Call it once the process has settled.
//
// For fjord server: starting the control plane, the node and GitOps
// touches much of a 250 MB binary once, and the kernel maps file pages in
// large folios and reads ahead, so ~220 MiB of it stayed mapped for good
// though an idle server runs a fraction of that code. The reclaimed pages
// are clean: they leave the page cache and are read from the file again
// when they run, which brings the mapped part back to the working set
// (~95 MiB after 30 s, still so minutes later; docs/benchmarks.md).
// MADV_PAGEOUT only acts on pages no other process maps.
func Executable() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ranges, err := readOnlyMappings(f, exe)
	if err != nil {
		return 0, err
	}
	var advised int64
	for _, r := range ranges {
		// A raw syscall: the range is the binary's own mapping, never Go
		// memory, so it is not made into a slice.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_PAGEOUT); errno != 0 {
			return advised, fmt.Errorf("madvise(MADV_PAGEOUT) %#x-%#x: %w", r[0], r[1], errno)
		}
		advised += int64(r[1] - r[0])
	}
	return advised, nil
}

// readOnlyMappings returns the address ranges of /proc/self/maps (read
// from r) that map path and are not writable.
func readOnlyMappings(r io.Reader, path string) ([][2]uintptr, error) {
	var out [][2]uintptr
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != path || strings.Contains(fields[1], "w") {
			continue
		}
		var lo, hi uintptr
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
			return nil, fmt.Errorf("parsing %q: %w", sc.Text(), err)
		}
		out = append(out, [2]uintptr{lo, hi})
	}
	return out, sc.Err()
}
