// Package nodebin carries the node's helper programs inside the fjord
// binary and extracts them at start, k3s's way: containerd (built from
// cmd/fjord-containerd) and its runc shim (cmd/containerd-shim-runc-v2).
// Each is a small program of its own because each runs as its own
// process, one shim per pod: the fjord binary in their place would
// initialise all of Kubernetes in every one of them.
package nodebin

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
// different) and returns the path of each by name.
func Extract(dir string) (map[string]string, error) {
	paths := map[string]string{}
	for _, name := range []string{Containerd, Shim} {
		data, err := embedded.ReadFile("embedded/" + name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("this fjord binary was built without %s: build it with `make build`", name)
		}
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name)
		paths[name] = path
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			continue
		}
		if err := bootstrap.WriteFileAtomic(path, data, 0o755); err != nil {
			return nil, fmt.Errorf("extracting %s: %w", name, err)
		}
	}
	return paths, nil
}
