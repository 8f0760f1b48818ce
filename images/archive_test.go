package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tarOf returns a tar holding the given files in order.
func tarOf(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadArchive(t *testing.T) {
	built := filepath.Join(t.TempDir(), "img.tar")
	want, err := Build(t.Context(), testRootfs(t, time.Now()), built, Spec{Name: "ghcr.io/fjord/tool:v1"})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	index := `{"schemaVersion":2,"manifests":[
		{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + digest + `","size":9,
		 "annotations":{"io.containerd.image.name":"docker.io/library/a:1","org.opencontainers.image.ref.name":"1"}},
		{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest + `","size":7}]}`
	dockerSave := `[{"Config":"blobs/sha256/` + digest[7:] + `","RepoTags":["busybox:1.36","ghcr.io/x/y:2"],"Layers":[]}]`

	tests := []struct {
		name    string
		archive []byte
		want    []ArchiveImage
	}{
		{"lists the image of an archive Build wrote", archive, []ArchiveImage{want}},
		{"reads a gzipped archive", gzipped(t, archive), []ArchiveImage{want}},
		{"lists every descriptor of an index.json, named or not", tarOf(t, [2]string{"./index.json", index}), []ArchiveImage{
			{Name: "docker.io/library/a:1", Tag: "1", Digest: digest, MediaType: "application/vnd.oci.image.index.v1+json", Size: 9},
			{Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 7},
		}},
		{"names docker save images after their normalised repo tags", tarOf(t, [2]string{"manifest.json", dockerSave}), []ArchiveImage{
			{Name: "docker.io/library/busybox:1.36", Tag: "1.36", Digest: digest},
			{Name: "ghcr.io/x/y:2", Tag: "2", Digest: digest},
		}},
		{"prefers index.json over manifest.json", tarOf(t, [2]string{"manifest.json", dockerSave}, [2]string{"index.json", index}), []ArchiveImage{
			{Name: "docker.io/library/a:1", Tag: "1", Digest: digest, MediaType: "application/vnd.oci.image.index.v1+json", Size: 9},
			{Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 7},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadArchive(bytes.NewReader(tt.archive))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("image %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReadArchiveErrors(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"a tar without an index", tarOf(t, [2]string{"hello.txt", "hi"}), "not an image archive"},
		{"a broken index.json", tarOf(t, [2]string{"index.json", "{"}), "reading index.json"},
		{"something that is not a tar", []byte(strings.Repeat("x", 2048)), "reading the image archive"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := ReadArchive(bytes.NewReader(tt.archive))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
