package appliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFileName is the file in the data dir a running server (or a restore)
// holds an exclusive flock on; the kernel releases it when the process
// ends, kill -9 included.
const LockFileName = "fjord.lock"

// ErrDataDirInUse is returned when another process holds the data dir.
var ErrDataDirInUse = errors.New("the data dir is in use")

// InUseError says which process holds a data dir.
type InUseError struct {
	DataDir string
	PID     int
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s (a running fjord server, or a restore): stop it first", e.DataDir, who)
}

func (e *InUseError) Unwrap() error { return ErrDataDirInUse }

// LockDataDir takes the data dir's lock without waiting. The file is left
// empty and unchanged (the holder is found in /proc/locks), so starting a
// server changes nothing in a data dir it then refuses. The returned
// function releases it.
func LockDataDir(dataDir string) (func(), error) {
	path := filepath.Join(dataDir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking data dir %s: %w", dataDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{DataDir: dataDir, PID: lockHolder(path)}
		}
		return nil, fmt.Errorf("locking data dir %s: %w", dataDir, err)
	}
	return func() { f.Close() }, nil
}

// DataDirInUse reports whether a process holds the data dir's lock (a
// running server), without taking it for long.
func DataDirInUse(dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, LockFileName)); err != nil {
		return nil
	}
	unlock, err := LockDataDir(dataDir)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// lockHolder finds the process holding a flock on path in /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 1234 fd:00:5678 0 EOF"); 0 when unknown.
func lockHolder(path string) int {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	data, _ := os.ReadFile("/proc/locks")
	inode := ":" + strconv.FormatUint(st.Ino, 10)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && strings.HasSuffix(f[5], inode) {
			pid, _ := strconv.Atoi(f[4])
			return pid
		}
	}
	return 0
}
