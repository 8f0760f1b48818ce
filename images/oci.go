package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on an index.json manifest descriptor. containerd's import
// (`ctr images import`, client.Import) names the image after
// AnnotationImageName; OCI tools read the tag from AnnotationRefName.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// epoch is the one timestamp a built archive carries (file times, the
// config's created, history), so that the same rootfs gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

// Spec describes the single-layer linux image Build makes from a rootfs.
type Spec struct {
	// Name is the image reference; short names are normalised the way
	// docker and containerd do (busybox → docker.io/library/busybox:latest).
	Name string
	// Entrypoint and Cmd are the image config's; either may be empty.
	Entrypoint []string
	Cmd        []string
	// Env holds KEY=value pairs. Nothing is added: containerd supplies a
	// default PATH when an image has no Env at all.
	Env []string
	// WorkingDir is the process's working directory; "" means /.
	WorkingDir string
	// Architecture is the GOARCH-style architecture; "" means runtime.GOARCH.
	Architecture string
}

// Build writes an OCI image archive (a tar of an OCI image layout) holding
// one image whose only layer is the tree at rootfs, and returns what the
// archive's index.json says about it. Every file in the layer is owned by
// root with the time set to the Unix epoch, so the same rootfs and spec give
// the same bytes. out is replaced atomically: a reader sees the old file or
// the whole new one.
func Build(ctx context.Context, rootfs, out string, spec Spec) (ArchiveImage, error) {
	ref, tag, err := NormalizeName(spec.Name)
	if err != nil {
		return ArchiveImage{}, err
	}
	if fi, err := os.Stat(rootfs); err != nil {
		return ArchiveImage{}, fmt.Errorf("reading the rootfs: %w", err)
	} else if !fi.IsDir() {
		return ArchiveImage{}, fmt.Errorf("the rootfs %s is not a directory", rootfs)
	}
	arch := spec.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}

	work, err := os.MkdirTemp("", "fjord-image-")
	if err != nil {
		return ArchiveImage{}, err
	}
	defer os.RemoveAll(work)

	layerPath := filepath.Join(work, "layer.tar")
	if err := writeLayerTar(ctx, rootfs, layerPath); err != nil {
		return ArchiveImage{}, fmt.Errorf("archiving the rootfs %s: %w", rootfs, err)
	}
	img, err := newImage(layerPath, arch, spec)
	if err != nil {
		return ArchiveImage{}, fmt.Errorf("assembling the image: %w", err)
	}

	layoutDir := filepath.Join(work, "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return ArchiveImage{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := lp.WriteImage(img); err != nil {
		return ArchiveImage{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return ArchiveImage{}, err
	}
	// ggcr fills artifactType with the config's media type; docker and
	// buildkit leave it out for plain images, and so do we.
	desc.ArtifactType = ""
	desc.Annotations = map[string]string{AnnotationImageName: ref, AnnotationRefName: tag}
	desc.Platform = &v1.Platform{OS: "linux", Architecture: arch}
	if err := lp.AppendDescriptor(*desc); err != nil {
		return ArchiveImage{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return ArchiveImage{}, err
	}
	if err := writeFileAtomic(out, func(w io.Writer) error { return tarLayout(layoutDir, w) }); err != nil {
		return ArchiveImage{}, fmt.Errorf("writing %s: %w", out, err)
	}

	return ArchiveImage{
		Name:      ref,
		Tag:       tag,
		Digest:    desc.Digest.String(),
		MediaType: string(desc.MediaType),
		Size:      desc.Size,
		Platform:  desc.Platform.String(),
	}, nil
}

// NormalizeName turns an image reference into the full form containerd
// stores (busybox → docker.io/library/busybox:latest) and its tag. The image
// is built here, so a digest reference is refused. name.Tag.Name() is not
// used: it spells Docker Hub index.docker.io, which containerd does not.
func NormalizeName(s string) (ref, tag string, err error) {
	if s == "" {
		return "", "", errors.New("the image needs a name")
	}
	t, err := name.NewTag(s)
	if err != nil {
		return "", "", fmt.Errorf("image name %q: %w", s, err)
	}
	registry := t.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + t.RepositoryStr() + ":" + t.TagStr(), t.TagStr(), nil
}

// newImage assembles the OCI image around the layer tar at layerPath.
func newImage(layerPath, arch string, spec Spec) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(layerPath,
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithCompressedCaching,
	)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "fjord images build", Comment: "rootfs"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Config = v1.Config{
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
	}
	return mutate.ConfigFile(img, cf)
}

// writeLayerTar writes the tree at rootfs as a layer tar to path, in lexical
// order, owned by root and dated epoch. Symlinks are kept as links, hard
// links within the tree as tar hard links, modes (with setuid, setgid and
// sticky bits) as they are. Sockets cannot be archived and are skipped.
func writeLayerTar(ctx context.Context, rootfs, path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err = filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[key] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		return copyFile(tw, p)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// tarLayout writes the OCI layout at dir to w as a tar: oci-layout and
// index.json first, so that a streaming reader learns the names before the
// blobs, then the blobs in lexical order; modes 0644/0755, owned by root,
// dated epoch.
func tarLayout(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	add := func(rel string) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: rel, ModTime: epoch}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
		default:
			return fmt.Errorf("%s: unexpected file type %s in the layout", rel, fi.Mode().Type())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		return copyFile(tw, p)
	}
	for _, rel := range []string{"oci-layout", "index.json"} {
		if err := add(rel); err != nil {
			return err
		}
	}
	blobs := filepath.Join(dir, "blobs")
	err := filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return add(filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// copyFile copies the file at path to w.
func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeFileAtomic writes path through a temporary file beside it, synced
// and renamed into place only once write has succeeded.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
