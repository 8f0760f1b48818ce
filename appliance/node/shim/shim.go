// Package shim carries containerd's runc shim (containerd-shim-runc-v2)
// inside the fjord binary. It is a separate small program, built by `make
// build` from cmd/containerd-shim-runc-v2, because one shim process runs per
// pod: the fjord binary itself as the shim would cost every pod the
// initialisation of all of Kubernetes.
package shim

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

// Name is the executable containerd looks up on PATH for io.containerd.runc.v2.
const Name = "containerd-shim-runc-v2"

//go:embed all:embedded
var embedded embed.FS

// Extract writes the embedded shim into dir (when missing or different) and
// returns its path.
func Extract(dir string) (string, error) {
	data, err := embedded.ReadFile("embedded/" + Name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("this fjord binary was built without %s: build it with `make build`", Name)
	}
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, Name)
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return path, nil
	}
	if err := bootstrap.WriteFileAtomic(path, data, 0o755); err != nil {
		return "", fmt.Errorf("extracting %s: %w", Name, err)
	}
	return path, nil
}
