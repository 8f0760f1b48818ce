package images

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestPauseArchive(t *testing.T) {
	if _, err := fs.Stat(embedded, "embedded/pause.tar"); errors.Is(err, fs.ErrNotExist) {
		t.Run("says how to build it when it is missing", func(t *testing.T) {
			_, err := PauseArchive()
			if err == nil || !strings.Contains(err.Error(), "make build") {
				t.Errorf("got error %v, want one that says `make build`", err)
			}
		})
		return
	}
	t.Run("names the pause image the node configures", func(t *testing.T) {
		b, err := PauseArchive()
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := ReadArchive(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 || imgs[0].Name != PauseImage {
			t.Errorf("the embedded archive holds %+v, want one image named %s", imgs, PauseImage)
		}
	})
}
