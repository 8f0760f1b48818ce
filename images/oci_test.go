package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testRootfs lays out a small tree with each kind of entry Build must keep,
// under a fresh temp dir, with mtimes taken from mtime.
func testRootfs(t *testing.T, mtime time.Time) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "tool"), []byte("#!/bin/tool\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "conf"), []byte("key=value\n"), 0o644))
	must(os.Symlink("tool", filepath.Join(root, "bin", "sh")))
	must(os.Link(filepath.Join(root, "etc", "conf"), filepath.Join(root, "etc", "conf.link")))
	// Explicit modes: the umask must not decide what the test expects.
	must(os.Chmod(filepath.Join(root, "bin", "tool"), 0o755))
	must(os.Chmod(filepath.Join(root, "etc", "conf"), 0o640))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky))
	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	}))
	return root
}

// extract unpacks an archive Build wrote (regular files and dirs only).
func extract(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry %s of type %c in the archive", hdr.Name, hdr.Typeflag)
		}
	}
}

type entry struct {
	typeflag byte
	mode     int64
	link     string
	content  string
}

func TestBuild(t *testing.T) {
	root := testRootfs(t, time.Now())
	out := filepath.Join(t.TempDir(), "tool.tar")
	spec := Spec{
		Name:       "tool",
		Entrypoint: []string{"/bin/tool"},
		Cmd:        []string{"--serve"},
		Env:        []string{"PATH=/bin"},
		WorkingDir: "/tmp",
	}
	got, err := Build(t.Context(), root, out, spec)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("returns the normalised name and the manifest digest", func(t *testing.T) {
		if got.Name != "docker.io/library/tool:latest" || got.Tag != "latest" {
			t.Errorf("got name %q tag %q", got.Name, got.Tag)
		}
		if got.Platform != "linux/"+runtime.GOARCH || !strings.HasPrefix(got.Digest, "sha256:") {
			t.Errorf("got platform %q digest %q", got.Platform, got.Digest)
		}
	})

	lp, err := layout.FromPath(extract(t, out))
	if err != nil {
		t.Fatal(err)
	}
	index, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]

	t.Run("names the image for containerd's import", func(t *testing.T) {
		want := map[string]string{
			AnnotationImageName: "docker.io/library/tool:latest",
			AnnotationRefName:   "latest",
		}
		for k, v := range want {
			if desc.Annotations[k] != v {
				t.Errorf("annotation %s = %q, want %q", k, desc.Annotations[k], v)
			}
		}
		if desc.MediaType != types.OCIManifestSchema1 || desc.Digest.String() != got.Digest {
			t.Errorf("descriptor %s %s, want an OCI manifest %s", desc.MediaType, desc.Digest, got.Digest)
		}
		if desc.ArtifactType != "" {
			t.Errorf("descriptor has artifactType %q", desc.ArtifactType)
		}
	})

	img, err := lp.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("writes the config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
			t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
		}
		if !cf.Created.Equal(epoch) {
			t.Errorf("created %v, want %v", cf.Created, epoch)
		}
		c := cf.Config
		if !slices.Equal(c.Entrypoint, spec.Entrypoint) || !slices.Equal(c.Cmd, spec.Cmd) ||
			!slices.Equal(c.Env, spec.Env) || c.WorkingDir != spec.WorkingDir {
			t.Errorf("config %+v does not match spec %+v", c, spec)
		}
		mt, err := img.MediaType()
		if err != nil || mt != types.OCIManifestSchema1 {
			t.Errorf("manifest media type %s (%v)", mt, err)
		}
	})

	t.Run("keeps files, dirs, symlinks, hard links and modes, owned by root", func(t *testing.T) {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%d layers, want 1", len(layers))
		}
		if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
			t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		entries := map[string]entry{}
		var names []string
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || !hdr.ModTime.Equal(epoch) {
				t.Errorf("%s: owner %d:%d (%q:%q) time %v, want root and the epoch", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.ModTime)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, hdr.Name)
			entries[hdr.Name] = entry{hdr.Typeflag, hdr.Mode, hdr.Linkname, string(b)}
		}
		want := map[string]entry{
			"bin/":          {tar.TypeDir, 0o755, "", ""},
			"bin/sh":        {tar.TypeSymlink, 0o777, "tool", ""},
			"bin/tool":      {tar.TypeReg, 0o755, "", "#!/bin/tool\n"},
			"etc/":          {tar.TypeDir, 0o755, "", ""},
			"etc/conf":      {tar.TypeReg, 0o640, "", "key=value\n"},
			"etc/conf.link": {tar.TypeLink, 0o640, "etc/conf", ""},
			"tmp/":          {tar.TypeDir, 0o1777, "", ""},
		}
		for name, w := range want {
			if g, ok := entries[name]; !ok {
				t.Errorf("%s is missing from the layer", name)
			} else if g != w {
				t.Errorf("%s: got %+v, want %+v", name, g, w)
			}
		}
		if len(entries) != len(want) {
			t.Errorf("layer holds %v, want exactly %d entries", names, len(want))
		}
		if !slices.IsSorted(names) {
			t.Errorf("layer entries %v are not in lexical order", names)
		}
	})

	t.Run("lists the same image as ReadArchiveFile", func(t *testing.T) {
		listed, err := ReadArchiveFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0] != got {
			t.Errorf("ReadArchiveFile = %+v, want [%+v]", listed, got)
		}
	})
}

func TestBuildIsDeterministic(t *testing.T) {
	spec := Spec{Name: "docker.io/fjord/test:1", Entrypoint: []string{"/bin/tool"}}
	dir := t.TempDir()
	var archives [][]byte
	// Two copies of the tree made at different times, one built twice.
	roots := []string{testRootfs(t, time.Unix(1e9, 0)), testRootfs(t, time.Now())}
	for i, root := range []string{roots[0], roots[0], roots[1]} {
		out := filepath.Join(dir, "out"+string(rune('a'+i))+".tar")
		if _, err := Build(t.Context(), root, out, spec); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, b)
	}
	for i := 1; i < len(archives); i++ {
		if !bytes.Equal(archives[0], archives[i]) {
			t.Errorf("archive %d differs from archive 0", i)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	root := testRootfs(t, time.Now())
	file := filepath.Join(root, "etc", "conf")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		rootfs string
		ref    string
		want   string
	}{
		{"a missing rootfs", t.Context(), filepath.Join(root, "nope"), "x", "reading the rootfs: stat " + filepath.Join(root, "nope") + ": no such file or directory"},
		{"a rootfs that is a file", t.Context(), file, "x", "is not a directory"},
		{"no name", t.Context(), root, "", "the image needs a name"},
		{"an invalid name", t.Context(), root, "Upper/Case", `image name "Upper/Case"`},
		{"a digest reference", t.Context(), root, "busybox@sha256:" + strings.Repeat("a", 64), "image name"},
		{"a cancelled context", cancelled, root, "x", "context canceled"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name+" and keeps the old archive", func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.tar")
			if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Build(tt.ctx, tt.rootfs, out, Spec{Name: tt.ref})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if b, _ := os.ReadFile(out); string(b) != "old" {
				t.Errorf("the old archive was changed to %d bytes", len(b))
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("left behind %v", entries)
			}
		})
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, ref, tag string
	}{
		{"busybox", "docker.io/library/busybox:latest", "latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "1.36"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "latest"},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "1"},
		{"fjord/pause:1", "docker.io/fjord/pause:1", "1"},
		{PauseImage, PauseImage, "1"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "3.10"},
		{"localhost:5000/app", "localhost:5000/app:latest", "latest"},
		{"ghcr.io/org/team/app:v1.2.3", "ghcr.io/org/team/app:v1.2.3", "v1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.in+" becomes "+tt.ref, func(t *testing.T) {
			ref, tag, err := NormalizeName(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if ref != tt.ref || tag != tt.tag {
				t.Errorf("got %q %q, want %q %q", ref, tag, tt.ref, tt.tag)
			}
		})
	}
}
