package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/fjord-dev/fjord/bootstrap"
)

// Source is a file to bundle: Name inside the bundle, Path on disk.
type Source struct {
	Name string
	Path string
}

// DamagedError is a snapshot whose content does not match its manifest, or
// that ends early: nothing from it may be used.
type DamagedError struct {
	File   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("snapshot %s is damaged (truncated or changed): %s", e.File, e.Reason)
}

// Write hashes every source, then writes the bundle to w: a gzipped tar
// whose first entry is the manifest (m with its Parts filled in) and then
// the sources in order. It returns the manifest written.
func Write(w io.Writer, m Manifest, sources []Source) (Manifest, error) {
	m.Format = Format
	m.Parts = nil
	for _, s := range sources {
		if err := checkPartName(s.Name); err != nil {
			return m, err
		}
		sum, size, err := hashFile(s.Path)
		if err != nil {
			return m, err
		}
		m.Parts = append(m.Parts, Part{Name: s.Name, Size: size, SHA256: sum})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return m, err
	}
	tw := tar.NewWriter(gz)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: m.Created.Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(manifest)))); err != nil {
		return m, err
	}
	if _, err := tw.Write(manifest); err != nil {
		return m, err
	}
	for i, s := range sources {
		if err := copyPart(tw, hdr(s.Name, m.Parts[i].Size), s.Path, m.Parts[i]); err != nil {
			return m, err
		}
	}
	if err := tw.Close(); err != nil {
		return m, err
	}
	return m, gz.Close()
}

// copyPart writes one file; a file that changed since it was hashed fails
// the snapshot rather than bundling content the manifest does not describe.
func copyPart(tw *tar.Writer, h *tar.Header, file string, p Part) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, sum), io.LimitReader(f, p.Size))
	if err != nil {
		return err
	}
	if n != p.Size || hex.EncodeToString(sum.Sum(nil)) != p.SHA256 {
		return fmt.Errorf("%s changed while the snapshot was taken", file)
	}
	return nil
}

func hashFile(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", file, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), n, nil
}

// checkPartName keeps bundle entries to plain relative paths, so extracting
// one can never write outside the target directory.
func checkPartName(name string) error {
	if name == ManifestName || !filepath.IsLocal(name) || path.Clean(name) != name {
		return fmt.Errorf("%q is not a valid part name", name)
	}
	return nil
}

// ReadManifest reads only the manifest (the first entry): enough to list a
// snapshot, not to trust it.
func ReadManifest(file string) (Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	_, tr, m, err := openBundle(file, f)
	if tr != nil {
		tr.Close()
	}
	return m, err
}

// Verify reads the whole snapshot and checks every part against the
// manifest (sha256 and size), that every part is there and nothing else
// is. It writes nothing.
func Verify(file string) (Manifest, error) {
	return walk(file, func(Part, io.Reader) error { return nil })
}

// Extract verifies the snapshot while writing its parts under dir (created
// 0700; files 0600). On an error, what was written under dir is the
// caller's to remove: dir should be a fresh staging directory.
func Extract(file, dir string) (Manifest, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Manifest{}, err
	}
	return walk(file, func(p Part, r io.Reader) error {
		target := filepath.Join(dir, filepath.FromSlash(p.Name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		return bootstrap.WriteAtomic(target, 0o600, func(w io.Writer) error {
			_, err := io.Copy(w, r)
			return err
		})
	})
}

type gzipTar struct {
	*tar.Reader
	gz *gzip.Reader
}

func (g gzipTar) Close() error { return g.gz.Close() }

func openBundle(file string, r io.Reader) (*gzip.Reader, *gzipTar, Manifest, error) {
	var m Manifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, m, &DamagedError{File: file, Reason: "not a Fjord snapshot (not gzip): " + err.Error()}
	}
	tr := &gzipTar{Reader: tar.NewReader(gz), gz: gz}
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return gz, tr, m, &DamagedError{File: file, Reason: "no manifest at its start"}
	}
	if h.Size > 1<<20 {
		return gz, tr, m, &DamagedError{File: file, Reason: "manifest too large"}
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return gz, tr, m, &DamagedError{File: file, Reason: "manifest: " + err.Error()}
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return gz, tr, m, &DamagedError{File: file, Reason: "manifest is not valid JSON"}
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if err := checkPartName(p.Name); err != nil || seen[p.Name] || len(p.SHA256) != 2*sha256.Size {
			return gz, tr, m, &DamagedError{File: file, Reason: fmt.Sprintf("manifest lists an invalid part %q", p.Name)}
		}
		seen[p.Name] = true
	}
	return gz, tr, m, nil
}

// walk verifies file entry by entry, handing each part's content to fn as
// it is read; fn's data is only trusted once walk returns nil.
func walk(file string, fn func(Part, io.Reader) error) (Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	_, tr, m, err := openBundle(file, f)
	if tr != nil {
		defer tr.Close()
	}
	if err != nil {
		return m, err
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, &DamagedError{File: file, Reason: "it ends early or is corrupt: " + err.Error()}
		}
		p, ok := m.Part(h.Name)
		if !ok || seen[h.Name] {
			return m, &DamagedError{File: file, Reason: fmt.Sprintf("entry %q is not in its manifest", h.Name)}
		}
		seen[h.Name] = true
		if h.Size != p.Size {
			return m, &DamagedError{File: file, Reason: fmt.Sprintf("%s is %d bytes, the manifest says %d", p.Name, h.Size, p.Size)}
		}
		sum := sha256.New()
		in := &readErrors{r: io.TeeReader(tr, sum)}
		if err := fn(p, in); err != nil {
			if in.err != nil {
				// Reading the snapshot failed, not writing what it holds.
				return m, &DamagedError{File: file, Reason: fmt.Sprintf("it ends early or is corrupt, in %s: %v", p.Name, in.err)}
			}
			return m, err
		}
		// What fn did not read still counts.
		if _, err := io.Copy(sum, tr); err != nil {
			return m, &DamagedError{File: file, Reason: fmt.Sprintf("it ends early or is corrupt, in %s: %v", p.Name, err)}
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != p.SHA256 {
			return m, &DamagedError{File: file, Reason: fmt.Sprintf("%s: sha256 %s…, the manifest says %s…", p.Name, got[:12], p.SHA256[:12])}
		}
	}
	for _, p := range m.Parts {
		if !seen[p.Name] {
			return m, &DamagedError{File: file, Reason: fmt.Sprintf("%s is missing", p.Name)}
		}
	}
	// The gzip trailer (CRC and length) is checked when the stream is read to its end.
	if _, err := io.Copy(io.Discard, tr.gz); err != nil {
		return m, &DamagedError{File: file, Reason: "it ends early: " + err.Error()}
	}
	return m, nil
}

// readErrors remembers a read error other than the end of the stream.
type readErrors struct {
	r   io.Reader
	err error
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}
