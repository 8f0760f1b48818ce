// Package nodebin carries the node's helper programs inside the fjord
// binary and extracts them at start, k3s's way: containerd (built from
// cmd/fjord-containerd) and its runc shim (cmd/containerd-shim-runc-v2).
// Each is a small program of its own because each runs as its own
// process (containerd, and the shim its pods share): the fjord binary in their place would
// initialise all of Kubernetes in every one of them.
package nodebin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fjord-dev/fjord/bootstrap"
)

// The programs, by the names containerd and the supervisor look for.
const (
	Containerd = "containerd"
	Shim       = "containerd-shim-runc-v2"
)

//go:embed all:embedded
var embedded embed.FS

// Extract writes the embedded programs into dir (each only when missing or
// different) and returns the path of each by name. An unchanged program is
// recognised by the SHA256SUMS `make build` embeds beside them, so a
// restart reads none of the 54 MB: pages of the binary that are read stay
// mapped in fjord's memory, and this kernel maps them 2 MiB at a time.
func Extract(dir string) (map[string]string, error) {
	sums := embeddedSums()
	paths := map[string]string{}
	for _, name := range []string{Containerd, Shim} {
		f, err := embedded.Open("embedded/" + name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("this fjord binary was built without %s: build it with `make build`", name)
		}
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name)
		paths[name] = path
		same, err := unchanged(path, sums[name], f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if same {
			continue
		}
		err = bootstrap.WriteAtomic(path, 0o755, func(w io.Writer) error {
			src, err := embedded.Open("embedded/" + name)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(w, src)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("extracting %s: %w", name, err)
		}
	}
	return paths, nil
}

// embeddedSums reads SHA256SUMS (sha256sum's format) when the build wrote one.
func embeddedSums() map[string]string {
	data, err := embedded.ReadFile("embedded/SHA256SUMS")
	if err != nil {
		return nil
	}
	sums := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok {
			sums[filepath.Base(name)] = sum
		}
	}
	return sums
}

// unchanged says whether the file at path already holds the embedded
// program: by its checksum when the build recorded one, else byte by byte.
func unchanged(path, sum string, embeddedFile fs.File) (bool, error) {
	cur, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer cur.Close()
	if sum != "" {
		h := sha256.New()
		if _, err := io.Copy(h, cur); err != nil {
			return false, err
		}
		return hex.EncodeToString(h.Sum(nil)) == sum, nil
	}
	a, err := io.ReadAll(cur)
	if err != nil {
		return false, err
	}
	b, err := io.ReadAll(embeddedFile)
	if err != nil {
		return false, err
	}
	return bytes.Equal(a, b), nil
}
