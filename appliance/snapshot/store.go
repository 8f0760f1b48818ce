package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-dev/fjord/bootstrap"
)

// Ext ends every snapshot file's name.
const Ext = ".tar.gz"

// Entry is one file in a snapshot directory.
type Entry struct {
	Path     string
	Size     int64 // bytes on disk (compressed)
	Manifest Manifest
	// Err is set when the manifest cannot be read: the file is listed, never
	// pruned, and never used.
	Err error
}

// Created is when the snapshot was taken (the file's time when unreadable).
func (e Entry) Created() time.Time {
	if e.Err == nil && !e.Manifest.Created.IsZero() {
		return e.Manifest.Created
	}
	if fi, err := os.Stat(e.Path); err == nil {
		return fi.ModTime()
	}
	return time.Time{}
}

// List returns the snapshots in dir, oldest first. A missing dir has none.
func List(dir string) ([]Entry, error) {
	files, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, f := range files {
		if f.IsDir() || strings.HasPrefix(f.Name(), ".") || !strings.HasSuffix(f.Name(), Ext) {
			continue
		}
		e := Entry{Path: filepath.Join(dir, f.Name())}
		if fi, err := f.Info(); err == nil {
			e.Size = fi.Size()
		}
		e.Manifest, e.Err = ReadManifest(e.Path)
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Created().Before(entries[j].Created()) })
	return entries, nil
}

// Prune removes the oldest snapshots of trigger in dir until keep are left,
// and returns the paths removed. Other snapshots (taken by hand, before an
// upgrade) and unreadable files are never removed.
func Prune(dir, trigger string, keep int) ([]string, error) {
	entries, err := List(dir)
	if err != nil {
		return nil, err
	}
	var mine []Entry
	for _, e := range entries {
		if e.Err == nil && e.Manifest.Trigger == trigger {
			mine = append(mine, e)
		}
	}
	var removed []string
	var errs []error
	for i := 0; i < len(mine)-keep; i++ {
		if err := os.Remove(mine[i].Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, mine[i].Path)
	}
	return removed, errors.Join(errs...)
}

// CheckName refuses a --name that is not a plain file name.
func CheckName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.ContainsAny(name, " \t\n/") {
		return fmt.Errorf("--name %q: want a plain file name (letters, digits, dashes)", name)
	}
	return nil
}

// FileName is the file a snapshot named name is written to.
func FileName(dir, name string) string {
	return filepath.Join(dir, strings.TrimSuffix(name, Ext)+Ext)
}

// DefaultName names a snapshot by its trigger, node and time (UTC), so
// names sort by time and never collide within a second.
func DefaultName(trigger, node string, at time.Time) string {
	prefix := "fjord"
	if trigger != TriggerManual {
		prefix = trigger
	}
	if node != "" {
		prefix += "-" + node
	}
	return prefix + "-" + at.UTC().Format("20060102-150405")
}

// WriteFile writes the bundle to dir/name atomically (temporary file,
// fsync, rename): a failed or interrupted snapshot leaves no partial file
// and never touches older ones. A full disk says so. The file is 0600: it
// holds the keys to every Secret.
func WriteFile(dir, name string, m Manifest, sources []Source) (string, Manifest, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", m, fmt.Errorf("creating snapshot dir %s: %w", dir, Explain(dir, err))
	}
	file := FileName(dir, name)
	if _, err := os.Stat(file); err == nil {
		return "", m, fmt.Errorf("%s exists already; choose another --name", file)
	}
	var written Manifest
	err := bootstrap.WriteAtomic(file, 0o600, func(w io.Writer) error {
		var err error
		written, err = Write(w, m, sources)
		return err
	})
	if err != nil {
		return "", m, Explain(dir, err)
	}
	return file, written, nil
}

// Explain turns a full disk into an error that says so.
func Explain(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("the snapshot dir %s is full (no space left on its filesystem): the snapshot was not written and older snapshots are kept; free space or set snapshot.dir elsewhere: %w", dir, err)
	}
	return err
}
