package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ArchiveImage is one image an archive's index names.
type ArchiveImage struct {
	// Name is the full reference containerd's import gives the image
	// (docker.io/library/busybox:latest), "" when the archive names none.
	Name string
	// Tag is the OCI ref name (latest), "" when the archive has none.
	Tag string
	// Digest is the manifest's (or image index's), e.g. "sha256:4f3c…"; for a
	// `docker save` archive without index.json, the image config's.
	Digest string
	// MediaType is the descriptor's media type.
	MediaType string
	// Size is the manifest's size in bytes (not the image's).
	Size int64
	// Platform is "linux/amd64" when the descriptor says so, otherwise "".
	Platform string
}

// ReadArchive lists the images in an image archive read from r: a tar of
// an OCI image layout, or a `docker save` tar, either optionally gzipped.
// Only the index is read, so it is cheap on a large archive; when the
// archive puts index.json first (as Build does) reading stops there.
func ReadArchive(r io.Reader) ([]ArchiveImage, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading the image archive: %w", err)
		}
		defer gz.Close()
		r = gz
	} else {
		r = br
	}
	var dockerManifest []byte
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		switch strings.TrimPrefix(path.Clean("/"+hdr.Name), "/") {
		case "index.json":
			return readIndex(tr)
		case "manifest.json":
			if dockerManifest, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("reading the image archive: %w", err)
			}
		}
	}
	if dockerManifest != nil {
		return readDockerManifest(dockerManifest)
	}
	return nil, errors.New("not an image archive: it holds neither index.json (OCI layout) nor manifest.json (docker save)")
}

// ReadArchiveFile is ReadArchive on the file at path.
func ReadArchiveFile(path string) ([]ArchiveImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := ReadArchive(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return imgs, nil
}

// readIndex lists the manifests of an OCI layout's index.json.
func readIndex(r io.Reader) ([]ArchiveImage, error) {
	index, err := v1.ParseIndexManifest(r)
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	out := make([]ArchiveImage, 0, len(index.Manifests))
	for _, d := range index.Manifests {
		img := ArchiveImage{
			Name:      d.Annotations[AnnotationImageName],
			Tag:       d.Annotations[AnnotationRefName],
			Digest:    d.Digest.String(),
			MediaType: string(d.MediaType),
			Size:      d.Size,
		}
		if d.Platform != nil {
			img.Platform = d.Platform.String()
		}
		out = append(out, img)
	}
	return out, nil
}

// readDockerManifest lists the images of a `docker save` manifest.json, one
// per repo tag, named the way containerd's import names them.
func readDockerManifest(raw []byte) ([]ArchiveImage, error) {
	var m tarball.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("reading manifest.json: %w", err)
	}
	var out []ArchiveImage
	for _, d := range m {
		digest := "sha256:" + strings.TrimSuffix(path.Base(d.Config), ".json")
		if len(d.RepoTags) == 0 {
			out = append(out, ArchiveImage{Digest: digest})
		}
		for _, t := range d.RepoTags {
			ref, tag, err := NormalizeName(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			out = append(out, ArchiveImage{Name: ref, Tag: tag, Digest: digest})
		}
	}
	return out, nil
}
