package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

const tmpPrefix = ".tmp-"

// checkout returns the directory holding commit's tree, writing it when it is
// not there yet, and removes all but the KeepCheckouts most recently returned
// checkouts of the repository. Called with the repository lock held.
func (c *Cache) checkout(checkoutsDir string, commit *object.Commit) (string, error) {
	dir := filepath.Join(checkoutsDir, commit.Hash.String())
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(checkoutsDir, 0o700); err != nil {
			return "", internal(fmt.Errorf("creating checkouts directory: %w", err))
		}
		// The tree is written under a temporary name and renamed, so a
		// directory named after a commit is always complete.
		tmp, err := os.MkdirTemp(checkoutsDir, tmpPrefix+commit.Hash.String()[:12]+"-")
		if err != nil {
			return "", internal(fmt.Errorf("creating checkout directory: %w", err))
		}
		if err := writeTree(commit, tmp); err != nil {
			_ = os.RemoveAll(tmp)
			return "", err
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.RemoveAll(tmp)
			return "", internal(fmt.Errorf("renaming checkout: %w", err))
		}
	} else if err != nil {
		return "", internal(fmt.Errorf("checking for checkout: %w", err))
	}
	now := time.Now()
	if err := os.Chtimes(dir, now, now); err != nil {
		return "", internal(fmt.Errorf("touching checkout: %w", err))
	}
	if err := c.removeOldCheckouts(checkoutsDir, dir); err != nil {
		c.log.Warn("removing old checkouts", "dir", checkoutsDir, "err", err)
	}
	return dir, nil
}

// removeOldCheckouts keeps the KeepCheckouts most recently used checkouts
// (always including current) and removes the rest, and any leftover
// temporary directory.
func (c *Cache) removeOldCheckouts(checkoutsDir, current string) error {
	entries, err := os.ReadDir(checkoutsDir)
	if err != nil {
		return err
	}
	type checkout struct {
		path string
		used time.Time
	}
	var all []checkout
	var errs []error
	for _, e := range entries {
		path := filepath.Join(checkoutsDir, e.Name())
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			// Only a crash leaves one: writes happen under the lock.
			errs = append(errs, os.RemoveAll(path))
			continue
		}
		if path == current {
			continue
		}
		info, err := e.Info()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, checkout{path, info.ModTime()})
	}
	slices.SortFunc(all, func(a, b checkout) int { return b.used.Compare(a.used) })
	keep := max(c.opts.KeepCheckouts-1, 0)
	for _, old := range all[min(keep, len(all)):] {
		errs = append(errs, os.RemoveAll(old.path))
	}
	return errors.Join(errs...)
}

// writeTree writes the files of commit's tree into dir: regular files with
// mode 0644 or 0755, symlinks as symlinks (written last, so that no file is
// written through one), submodules left out.
func writeTree(commit *object.Commit, dir string) error {
	tree, err := commit.Tree()
	if err != nil {
		return fmt.Errorf("reading tree of %s: %w", commit.Hash, err)
	}
	made := map[string]bool{dir: true}
	var links []*object.File
	err = tree.Files().ForEach(func(f *object.File) error {
		if err := checkTreePath(f.Name); err != nil {
			return err
		}
		if f.Mode == filemode.Symlink {
			links = append(links, f)
			return nil
		}
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if parent := filepath.Dir(path); !made[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return internal(err)
			}
			made[parent] = true
		}
		perm := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			perm = 0o755
		}
		return writeBlob(f, path, perm)
	})
	if err != nil {
		return fmt.Errorf("writing tree of %s: %w", commit.Hash, err)
	}
	for _, f := range links {
		target, err := f.Contents()
		if err != nil {
			return fmt.Errorf("reading symlink %s: %w", f.Name, err)
		}
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return internal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			return internal(fmt.Errorf("writing symlink %s: %w", f.Name, err))
		}
	}
	return nil
}

func writeBlob(f *object.File, path string, perm os.FileMode) error {
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.Name, err)
	}
	defer r.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return internal(fmt.Errorf("writing %s: %w", f.Name, err))
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return internal(fmt.Errorf("writing %s: %w", f.Name, err))
	}
	return nil
}

// checkTreePath refuses tree paths git itself would refuse to check out,
// which a hostile server could send to write outside the checkout.
func checkTreePath(name string) error {
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "", part == ".", part == "..", strings.EqualFold(part, ".git"),
			strings.ContainsRune(part, 0):
			return invalidf("tree has an unsafe path %q", name)
		}
	}
	return nil
}
