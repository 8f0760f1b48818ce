package node

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
)

// CRINamespace is the containerd namespace the kubelet's images live in.
const CRINamespace = "k8s.io"

// Importer imports image archives (OCI layouts or `docker save` tars,
// optionally gzipped) into containerd for the kubelet, and unpacks them so
// a pod starts without waiting.
type Importer struct {
	Client *containerd.Client
	Log    *slog.Logger
	// Progress, when set, is told of each archive as it is imported.
	Progress func(file string, images []string, err error)
}

// Import imports one archive read from r; name says where it came from.
// It returns the image references it held.
func (im *Importer) Import(ctx context.Context, name string, r io.Reader) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, CRINamespace)
	imgs, err := im.Client.Import(ctx, r, containerd.WithImportPlatform(platforms.Default()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var refs []string
	for _, img := range imgs {
		if err := containerd.NewImage(im.Client, img).Unpack(ctx, "overlayfs"); err != nil {
			return refs, fmt.Errorf("%s: unpacking %s: %w", name, img.Name, err)
		}
		refs = append(refs, img.Name)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s: the archive names no image (an OCI layout needs the io.containerd.image.name annotation, a docker archive RepoTags)", name)
	}
	return refs, nil
}

// ImportFile imports the archive at path.
func (im *Importer) ImportFile(ctx context.Context, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, ".tgz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	return im.Import(ctx, path, r)
}

// isArchive says whether a file in the images dir is one to import.
func isArchive(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".oci"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// ImportDir imports every archive in dir, in name order. A corrupt archive
// is logged with its file name; the others are still imported.
func (im *Importer) ImportDir(ctx context.Context, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		im.Log.Warn("reading the images dir", "dir", dir, "err", err)
		return
	}
	for _, e := range entries {
		if e.IsDir() || !isArchive(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		t0 := time.Now()
		refs, err := im.ImportFile(ctx, path)
		if im.Progress != nil {
			im.Progress(path, refs, err)
		}
		if err != nil {
			im.Log.Error("image archive not imported", "file", path, "err", err)
			continue
		}
		im.Log.Info("image archive imported", "file", path, "images", strings.Join(refs, ","), "took", time.Since(t0).Round(time.Millisecond))
	}
}

// Watch imports archives that appear in (or change in) dir until ctx ends,
// k3s's airgap habit. A file is taken once it has not changed for one
// interval, so a copy in progress is not read half-written.
func (im *Importer) Watch(ctx context.Context, dir string, interval time.Duration) {
	scan := func() map[string]time.Time {
		out := map[string]time.Time{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !e.IsDir() && isArchive(e.Name()) {
				out[e.Name()] = info.ModTime()
			}
		}
		return out
	}
	seen := scan() // imported by ImportDir already
	pending := map[string]time.Time{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := scan()
		var ready []string
		for name, mt := range now {
			if seen[name].Equal(mt) {
				continue
			}
			if prev, ok := pending[name]; ok && prev.Equal(mt) {
				ready = append(ready, name)
				continue
			}
			pending[name] = mt
		}
		sort.Strings(ready)
		for _, name := range ready {
			path := filepath.Join(dir, name)
			refs, err := im.ImportFile(ctx, path)
			seen[name] = pending[name]
			delete(pending, name)
			if err != nil {
				im.Log.Error("image archive not imported", "file", path, "err", err)
				continue
			}
			im.Log.Info("image archive imported", "file", path, "images", strings.Join(refs, ","))
		}
	}
}

// Image is one image the kubelet can run.
type Image struct {
	Name   string
	Digest string
	Size   int64
}

// DialImporter connects to the containerd of the node kept in dataDir (the
// server must run) for `fjord images`.
func DialImporter(ctx context.Context, dataDir string, log *slog.Logger) (*Importer, error) {
	sock := PathsFor(dataDir).ContainerdSock
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("no containerd socket at %s: is `fjord server` running with the node agent? (%w)", sock, err)
	}
	client, err := containerd.New(sock, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", sock, err)
	}
	if ok, err := client.IsServing(ctx); err != nil || !ok {
		client.Close()
		return nil, fmt.Errorf("containerd at %s is not serving: %v", sock, err)
	}
	return &Importer{Client: client, Log: log}, nil
}

// Close closes the connection to containerd.
func (im *Importer) Close() error { return im.Client.Close() }

// List returns the images the kubelet sees, by name.
func (im *Importer) List(ctx context.Context) ([]Image, error) {
	ctx = namespaces.WithNamespace(ctx, CRINamespace)
	imgs, err := im.Client.ImageService().List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, img := range imgs {
		size, _ := containerd.NewImage(im.Client, img).Size(ctx)
		out = append(out, Image{Name: img.Name, Digest: img.Target.Digest.String(), Size: size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
