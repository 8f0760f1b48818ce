package images

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

// PauseImage is the reference of Fjord's pause image, the sandbox container
// of every pod. The archive PauseArchive returns names exactly this image,
// and containerd's CRI sandbox_image must be set to it.
const PauseImage = "docker.io/fjord/pause:1"

// embedded holds the archives `make` builds into images/embedded; its
// committed README keeps the pattern matching in a clean clone.
//
//go:embed embedded
var embedded embed.FS

// PauseArchive returns the OCI archive of PauseImage built into this binary.
func PauseArchive() ([]byte, error) {
	b, err := embedded.ReadFile("embedded/pause.tar")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("this fjord binary was built without its pause image: build it with `make build`")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the built-in pause image: %w", err)
	}
	return b, nil
}
