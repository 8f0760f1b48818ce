package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fjord-dev/fjord/appliance/gitops/source"
)

// manyFilesRepo commits n ConfigMap manifests under app/ (in 30
// directories) to a new git repository and returns its path. With
// kustomization set, app/kustomization.yaml lists them all.
func manyFilesRepo(tb testing.TB, n int, kustomization bool) string {
	tb.Helper()
	dir := tb.TempDir()
	var resources []string
	for i := range n {
		name := fmt.Sprintf("d%02d/cm-%04d.yaml", i%30, i)
		resources = append(resources, "  - "+name)
		path := filepath.Join(dir, "app", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		content := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  index: %q\n", i, fmt.Sprint(i))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if kustomization {
		k := "resources:\n" + strings.Join(resources, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "app", "kustomization.yaml"), []byte(k), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "--quiet", "-b", "main"},
		{"add", "-A"},
		{"commit", "--quiet", "-m", "many files"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@fjord.dev", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@fjord.dev")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestFetchAndBuildThousandsOfFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("writes thousands of files; skipped with -short")
	}
	tests := []struct {
		name          string
		kustomization bool
		want          SourceType
	}{
		{name: "3000 plain manifests are fetched and read", want: SourceTypeDirectory},
		{name: "3000 resources of a kustomization are fetched and built", kustomization: true, want: SourceTypeKustomize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := manyFilesRepo(t, 3000, tt.kustomization)
			cache, err := source.New(source.Options{Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			a, err := cache.Fetch(t.Context(), source.Repository{URL: repo}, "main")
			if err != nil {
				t.Fatal(err)
			}
			fetched := time.Since(start)
			r, err := Build(a.Dir, "app", Options{Recurse: true})
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start) - fetched
			t.Logf("fetch %s + build %s = %s", fetched.Round(time.Millisecond), built.Round(time.Millisecond), (fetched + built).Round(time.Millisecond))
			if r.SourceType != tt.want || len(r.Objects) != 3000 {
				t.Errorf("%s rendered %d objects, want %s with 3000", r.SourceType, len(r.Objects), tt.want)
			}
		})
	}
}

// BenchmarkBuildThousandsOfFiles measures Build alone on a checkout of 3000
// manifests.
func BenchmarkBuildThousandsOfFiles(b *testing.B) {
	for _, kustomization := range []bool{false, true} {
		name := "directory"
		if kustomization {
			name = "kustomize"
		}
		b.Run(name, func(b *testing.B) {
			repo := manyFilesRepo(b, 3000, kustomization)
			for b.Loop() {
				if _, err := Build(repo, "app", Options{Recurse: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
