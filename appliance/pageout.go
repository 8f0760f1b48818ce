package appliance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseExecutable asks the kernel to reclaim the pages of the fjord
// binary's read-only mappings (code, read-only data, the Go function
// tables) now that the server has settled, and returns how many bytes it
// advised.
//
// Starting the control plane, the node and GitOps touches much of a 250 MB
// binary once, and the kernel maps file pages in large folios and reads
// ahead, so ~220 MiB of it stayed mapped for good though an idle server
// runs a fraction of that code. The reclaimed pages are clean: they leave
// the page cache and are read from the file again when they run, which
// brings the mapped part back to the working set (~95 MiB after 30 s,
// still so minutes later; docs/benchmarks.md). MADV_PAGEOUT only acts on
// pages no other process maps.
func releaseExecutable() (int64, error) {
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
