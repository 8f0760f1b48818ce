package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture writes files under a temp dir and returns them as sources.
func fixture(t *testing.T, files map[string]string) []Source {
	t.Helper()
	dir := t.TempDir()
	var sources []Source
	for _, name := range []string{"datastore/etcd.db", "tls/ca.key", "encryption/config.yaml"} {
		content, ok := files[name]
		if !ok {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, Source{Name: name, Path: p})
	}
	return sources
}

var parts = map[string]string{
	"datastore/etcd.db":      strings.Repeat("bbolt page ", 5000),
	"tls/ca.key":             "-----BEGIN EC PRIVATE KEY-----\nnot really\n",
	"encryption/config.yaml": "kind: EncryptionConfiguration\n",
}

func manifest(trigger string, at time.Time) Manifest {
	return Manifest{FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.2", Datastore: "etcd", Name: "n", Trigger: trigger, Created: at}
}

func writeBundle(t *testing.T, dir, name string, m Manifest) string {
	t.Helper()
	file, _, err := WriteFile(dir, name, m, fixture(t, parts))
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// rewrite copies a bundle entry by entry through edit, which may change an
// entry's content (return it) or drop it (return nil).
func rewrite(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, _ := os.Open(src)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if data = edit(h.Name, data); data == nil {
			continue
		}
		h.Size = int64(len(data))
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	gw.Close()
	os.WriteFile(dst, out.Bytes(), 0o600)
}

func TestBundle(t *testing.T) {
	dir := t.TempDir()
	file := writeBundle(t, dir, "one", manifest(TriggerManual, time.Now()))

	t.Run("is written 0600 with a manifest of every part", func(t *testing.T) {
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v %v", fi.Mode(), err)
		}
		m, err := ReadManifest(file)
		if err != nil {
			t.Fatal(err)
		}
		if m.Format != Format || len(m.Parts) != 3 || m.Size() != int64(len(parts["datastore/etcd.db"])+len(parts["tls/ca.key"])+len(parts["encryption/config.yaml"])) {
			t.Fatalf("manifest %+v", m)
		}
	})
	t.Run("verifies and extracts what was put in", func(t *testing.T) {
		if _, err := Verify(file); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "x")
		if _, err := Extract(file, out); err != nil {
			t.Fatal(err)
		}
		for name, want := range parts {
			got, err := os.ReadFile(filepath.Join(out, name))
			if err != nil || string(got) != want {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
	t.Run("leaves no temporary files and refuses to overwrite", func(t *testing.T) {
		if _, _, err := WriteFile(dir, "one", manifest(TriggerManual, time.Now()), fixture(t, parts)); err == nil || !strings.Contains(err.Error(), "exists already") {
			t.Fatalf("err %v", err)
		}
		files, _ := os.ReadDir(dir)
		if len(files) != 1 {
			t.Fatalf("files: %v", files)
		}
	})

	damaged := map[string]func(string, []byte) []byte{
		"a changed part": func(name string, data []byte) []byte {
			if name == "tls/ca.key" {
				data = bytes.ToUpper(data)
			}
			return data
		},
		"a missing part": func(name string, data []byte) []byte {
			if name == "encryption/config.yaml" {
				return nil
			}
			return data
		},
		"a manifest with another hash": func(name string, data []byte) []byte {
			if name != ManifestName {
				return data
			}
			var m Manifest
			json.Unmarshal(data, &m)
			m.Parts[0].SHA256 = strings.Repeat("0", 64)
			out, _ := json.Marshal(m)
			return out
		},
		"a manifest with a path outside": func(name string, data []byte) []byte {
			if name != ManifestName {
				return data
			}
			var m Manifest
			json.Unmarshal(data, &m)
			m.Parts[0].Name = "../../etc/passwd"
			out, _ := json.Marshal(m)
			return out
		},
	}
	for name, edit := range damaged {
		t.Run("refuses "+name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar.gz")
			rewrite(t, file, bad, edit)
			_, err := Verify(bad)
			var d *DamagedError
			if !errors.As(err, &d) {
				t.Fatalf("err %v", err)
			}
			out := filepath.Join(t.TempDir(), "x")
			if _, err := Extract(bad, out); !errors.As(err, &d) {
				t.Fatalf("extract: %v", err)
			}
		})
	}
	t.Run("refuses a truncated file", func(t *testing.T) {
		data, _ := os.ReadFile(file)
		for _, n := range []int{0, 10, len(data) / 2, len(data) - 9} {
			bad := filepath.Join(t.TempDir(), "cut.tar.gz")
			os.WriteFile(bad, data[:n], 0o600)
			var d *DamagedError
			if _, err := Verify(bad); !errors.As(err, &d) {
				t.Fatalf("cut at %d of %d: %v", n, len(data), err)
			}
		}
	})
	t.Run("refuses a file that is no snapshot", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "x.tar.gz")
		os.WriteFile(bad, []byte("hello"), 0o600)
		if _, err := Verify(bad); err == nil || !strings.Contains(err.Error(), "not a Fjord snapshot") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestCheckCompatible(t *testing.T) {
	b := Build{FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.2"}
	for name, tc := range map[string]struct {
		m    Manifest
		want string
	}{
		"the same versions":             {Manifest{Format: 1, FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.2"}, ""},
		"an older fjord and Kubernetes": {Manifest{Format: 1, FjordVersion: "v1.1.9", KubernetesVersion: "v1.36.5"}, ""},
		"a newer Kubernetes patch":      {Manifest{Format: 1, FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.9"}, ""},
		"a development build":           {Manifest{Format: 1, FjordVersion: "4ed5ada-dirty", KubernetesVersion: "v1.37.2"}, ""},
		"a newer format":                {Manifest{Format: 2, FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.2"}, "snapshot format 2"},
		"a newer fjord":                 {Manifest{Format: 1, FjordVersion: "v1.3.0", KubernetesVersion: "v1.37.2"}, "newer than this fjord v1.2.3"},
		"a newer Kubernetes minor":      {Manifest{Format: 1, FjordVersion: "v1.2.3", KubernetesVersion: "v1.38.0"}, "Kubernetes v1.38.0"},
		"no format":                     {Manifest{FjordVersion: "v1.2.3", KubernetesVersion: "v1.37.2"}, "no valid format"},
		"a newer fjord with a pre-tag":  {Manifest{Format: 1, FjordVersion: "v2.0.0-rc.1", KubernetesVersion: "v1.37.2"}, "fjord v2.0.0-rc.1"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.m.CheckCompatible(b)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		writeBundle(t, dir, DefaultName(TriggerScheduled, "n", base.Add(time.Duration(i)*time.Hour)), manifest(TriggerScheduled, base.Add(time.Duration(i)*time.Hour)))
	}
	manual := writeBundle(t, dir, "by-hand", manifest(TriggerManual, base.Add(-time.Hour)))
	os.WriteFile(filepath.Join(dir, "junk.tar.gz"), []byte("junk"), 0o600)

	t.Run("lists oldest first, unreadable files marked", func(t *testing.T) {
		entries, err := List(dir)
		if err != nil || len(entries) != 7 {
			t.Fatalf("%d entries, %v", len(entries), err)
		}
		if entries[0].Path != manual && entries[0].Err == nil {
			t.Fatalf("first: %s", entries[0].Path)
		}
	})
	t.Run("prunes only scheduled snapshots, oldest first", func(t *testing.T) {
		removed, err := Prune(dir, TriggerScheduled, 2)
		if err != nil || len(removed) != 3 {
			t.Fatalf("removed %v, %v", removed, err)
		}
		for i, r := range removed {
			if !strings.Contains(r, base.Add(time.Duration(i)*time.Hour).Format("20060102-150405")) {
				t.Fatalf("removed %s as number %d", r, i)
			}
		}
		entries, _ := List(dir)
		if len(entries) != 4 {
			t.Fatalf("left %d", len(entries))
		}
		if _, err := os.Stat(manual); err != nil {
			t.Fatal("the manual snapshot was pruned")
		}
		if _, err := os.Stat(filepath.Join(dir, "junk.tar.gz")); err != nil {
			t.Fatal("an unreadable file was pruned")
		}
	})
}

func TestConfig(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{Schedule: "every noon", Retention: 0, Dir: "rel", RestoreFrom: "x.tar.gz"}
	err := bad.Validate()
	for _, want := range []string{"snapshot.schedule", "snapshot.retention", "snapshot.dir", "snapshot.restore-from"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v lacks %s", err, want)
		}
	}
	if err := (Config{Schedule: "@every 2s", Retention: 2}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"", ".hidden", "a/b", "a b"} {
		if CheckName(n) == nil {
			t.Fatalf("name %q accepted", n)
		}
	}
}
