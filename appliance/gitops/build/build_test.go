package build

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testRepo = "testdata/repo"

func TestKustomizeMatchesKubectl(t *testing.T) {
	tests := []struct {
		name, path, golden string
		kinds              []string
		warnings           []string
	}{
		{name: "the base builds", path: "apps/base", golden: "base.yaml", kinds: []string{"ConfigMap", "Service", "Deployment"}},
		{name: "the production overlay patches replicas, sets the image, prefixes names and merges generated config", path: "apps/overlays/production", golden: "production.yaml",
			kinds:    []string{"ConfigMap", "ConfigMap", "Service", "Deployment"},
			warnings: []string{"apps/overlays/production/kustomization.yaml: 'commonLabels' is deprecated. Please use 'labels' instead. Run 'kustomize edit fix' to update your Kustomization automatically."}},
		{name: "the staging overlay puts the namespace first", path: "apps/overlays/staging", golden: "staging.yaml", kinds: []string{"Namespace", "ConfigMap", "Service", "Deployment"}},
	}
	kubectl, err := exec.LookPath("/usr/bin/kubectl")
	if err != nil {
		t.Log("/usr/bin/kubectl is absent: comparing with the golden files only")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Build(testRepo, tt.path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r.SourceType != SourceTypeKustomize {
				t.Errorf("SourceType = %s", r.SourceType)
			}
			var kinds []string
			for _, o := range r.Objects {
				kinds = append(kinds, o.GetKind())
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.kinds)
			}
			if got := decodeStream(t, r.YAML); !reflect.DeepEqual(got, objectMaps(r.Objects)) {
				t.Errorf("YAML and Objects differ:\n%s", r.YAML)
			}
			if !reflect.DeepEqual(r.Warnings, tt.warnings) {
				t.Errorf("warnings = %q, want %q", r.Warnings, tt.warnings)
			}

			golden := filepath.Join("testdata/golden", tt.golden)
			if *update {
				if err := os.WriteFile(golden, r.YAML, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(r.YAML, want) {
				t.Errorf("output differs from %s:\n%s", golden, r.YAML)
			}

			if kubectl == "" {
				return
			}
			cmd := exec.Command(kubectl, "kustomize", filepath.Join(testRepo, tt.path))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
			}
			if got, want := decodeStream(t, r.YAML), decodeStream(t, out); !reflect.DeepEqual(got, want) {
				t.Errorf("Build and kubectl kustomize differ\nBuild:\n%s\nkubectl:\n%s", r.YAML, out)
			}
			if !bytes.Equal(r.YAML, out) {
				t.Logf("equal objects, but the bytes differ from kubectl's")
			}
		})
	}
}

// decodeStream parses a YAML stream into one generic value per document.
func decodeStream(t *testing.T, stream []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, doc := range splitDocuments(stream) {
		var m map[string]any
		if err := yaml.Unmarshal(doc.data, &m); err != nil {
			t.Fatalf("parsing output: %v", err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// objectMaps returns the objects as generic values comparable with
// decodeStream's.
func objectMaps(objs []*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		b, _ := yaml.Marshal(o.Object)
		var m map[string]any
		_ = yaml.Unmarshal(b, &m)
		out = append(out, m)
	}
	return out
}

func TestPlainDirectory(t *testing.T) {
	tests := []struct {
		name    string
		recurse bool
		want    []string
	}{
		{name: "reads YAML and JSON documents in file order, skipping empty ones and expanding Lists", want: []string{"first", "second", "from-json", "listed-a", "listed-b"}},
		{name: "includes subdirectories when recursing, never hidden ones", recurse: true, want: []string{"first", "second", "from-json", "listed-a", "listed-b", "nested"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Build(testRepo, "apps/plain", Options{Recurse: tt.recurse})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range r.Objects {
				names = append(names, o.GetName())
			}
			if !reflect.DeepEqual(names, tt.want) || r.SourceType != SourceTypeDirectory {
				t.Errorf("%s objects = %v, want %v", r.SourceType, names, tt.want)
			}
			if got := decodeStream(t, r.YAML); !reflect.DeepEqual(got, objectMaps(r.Objects)) {
				t.Errorf("YAML and Objects differ:\n%s", r.YAML)
			}
		})
	}
	t.Run("keeps integers as int64", func(t *testing.T) {
		r, err := Build(testRepo, "apps/plain", Options{})
		if err != nil {
			t.Fatal(err)
		}
		port, found, err := unstructured.NestedSlice(r.Objects[2].Object, "spec", "ports")
		if err != nil || !found || port[0].(map[string]any)["port"] != int64(80) {
			t.Errorf("spec.ports = %#v (%v)", port, err)
		}
	})
}

func TestEmptyRenders(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{name: "a directory without manifests renders nothing", files: map[string]string{"app/README.md": "docs\n"}},
		{name: "a directory of empty documents renders nothing", files: map[string]string{"app/empty.yaml": "---\n# nothing\n---\n"}},
		{name: "a kustomization without resources renders nothing", files: map[string]string{"app/kustomization.yaml": "resources: []\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeRepo(t, tt.files)
			r, err := Build(root, "app", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Empty() || len(bytes.TrimSpace(r.YAML)) != 0 {
				t.Errorf("Empty() = %v, YAML %q", r.Empty(), r.YAML)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	base := map[string]string{
		"apps/base/kustomization.yaml": "resources: [cm.yaml]\n",
		"apps/base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
	}
	outside := map[string]string{
		"outside/base/kustomization.yaml": "resources: [secret.yaml]\n",
		"outside/base/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n",
		"outside/secret.yaml":             "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n",
	}
	tests := []struct {
		name  string
		files map[string]string
		links map[string]string // link → target, relative to the repository root
		path  string
		want  any    // pointer to the wanted error type
		msg   string // substring of the message
	}{
		{
			name:  "invalid YAML names the file and line",
			files: map[string]string{"apps/base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  selector: matchLabels: {}\n"},
			path:  "apps/base", want: new(*ManifestError),
			msg: "apps/base/deployment.yaml: yaml: line 7: mapping values are not allowed in this context",
		},
		{
			name:  "a YAML error in a later document names the line of the file",
			files: map[string]string{"app/two.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: x: y\n"},
			path:  "app", want: new(*ManifestError),
			msg: "app/two.yaml: yaml: line 10: mapping values are not allowed in this context",
		},
		{
			name:  "an object without kind is refused with its line",
			files: map[string]string{"app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nmetadata:\n  name: nokind\n"},
			path:  "app", want: new(*ManifestError), msg: `app/a.yaml: line 6: object "nokind" has no kind`,
		},
		{
			name:  "an object without apiVersion or kind is refused",
			files: map[string]string{"app/a.json": `{"metadata": {"name": "x"}}`},
			path:  "app", want: new(*ManifestError), msg: `app/a.json: line 1: object "x" has no apiVersion or kind`,
		},
		{
			name:  "a document that is not an object is refused",
			files: map[string]string{"app/a.yaml": "- just\n- a list\n"},
			path:  "app", want: new(*ManifestError), msg: "app/a.yaml: line 1: document is not an object: it is a list",
		},
		{
			name:  "an unknown kustomization field keeps kustomize's message",
			files: map[string]string{"app/kustomization.yaml": "resourcez: [a.yaml]\n"},
			path:  "app", want: new(*KustomizeError), msg: `kustomize build app: invalid Kustomization: json: unknown field "resourcez"`,
		},
		{
			name:  "a missing resource file keeps kustomize's message",
			files: map[string]string{"app/kustomization.yaml": "resources: [missing.yaml]\n"},
			path:  "app", want: new(*KustomizeError), msg: "missing.yaml",
		},
		{
			name:  "a remote git base is refused without a network access",
			files: merge(base, map[string]string{"apps/prod/kustomization.yaml": "resources:\n  - ../base\n  - github.com/fjord-dev/manifests//deploy?ref=v1\n"}),
			path:  "apps/prod", want: new(*KustomizeError), msg: `apps/prod/kustomization.yaml: remote reference "github.com/fjord-dev/manifests//deploy?ref=v1" is not supported`,
		},
		{
			name:  "a remote base in a base of the overlay is refused",
			files: merge(base, map[string]string{"apps/base/kustomization.yaml": "resources: [cm.yaml, 'https://github.com/fjord-dev/manifests.git/deploy']\n", "apps/prod/kustomization.yaml": "resources: [../base]\n"}),
			path:  "apps/prod", want: new(*KustomizeError), msg: `apps/base/kustomization.yaml: remote reference "https://github.com/fjord-dev/manifests.git/deploy"`,
		},
		{
			name:  "a remote file is refused",
			files: map[string]string{"app/kustomization.yaml": "resources: [https://raw.githubusercontent.com/o/r/main/cm.yaml]\n"},
			path:  "app", want: new(*KustomizeError), msg: "remote reference",
		},
		{
			name:  "a remote patch is refused",
			files: merge(base, map[string]string{"apps/base/kustomization.yaml": "resources: [cm.yaml]\npatches:\n  - path: https://example.com/p.yaml\n"}),
			path:  "apps/base", want: new(*KustomizeError), msg: "remote reference",
		},
		{
			name:  "a base above the repository root is refused",
			files: merge(outside, map[string]string{"repo/app/kustomization.yaml": "resources: [../../outside/base]\n"}),
			path:  "app", want: new(*KustomizeError), msg: "outside the repository",
		},
		{
			name:  "a symlinked file leaving the repository is refused by kustomize",
			files: merge(outside, map[string]string{"repo/app/kustomization.yaml": "resources: [secret.yaml]\n"}),
			links: map[string]string{"repo/app/secret.yaml": "../../outside/secret.yaml"},
			path:  "app", want: new(*KustomizeError), msg: "secret.yaml",
		},
		{
			name:  "a symlinked base leaving the repository is refused",
			files: merge(outside, map[string]string{"repo/app/kustomization.yaml": "resources: [base]\n"}),
			links: map[string]string{"repo/app/base": "../../outside/base"},
			path:  "app", want: new(*KustomizeError), msg: "outside the repository",
		},
		{
			name:  "a symlinked manifest leaving the repository is refused",
			files: merge(outside, map[string]string{"repo/app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"}),
			links: map[string]string{"repo/app/secret.yaml": "../../outside/secret.yaml"},
			path:  "app", want: new(*ManifestError), msg: "app/secret.yaml: symlink leaves the repository",
		},
		{
			name:  "helm charts are disabled",
			files: map[string]string{"app/kustomization.yaml": "helmCharts:\n  - name: redis\n    repo: https://charts.example.com\n"},
			path:  "app", want: new(*KustomizeError), msg: "helm",
		},
		{
			name: "exec functions are disabled",
			files: map[string]string{
				"app/kustomization.yaml": "transformers: [fn.yaml]\n",
				"app/fn.yaml":            "apiVersion: example.com/v1\nkind: Fn\nmetadata:\n  name: fn\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
			},
			path: "app", want: new(*KustomizeError), msg: "",
		},
		{name: "a path with .. leaving the repository is refused", files: base, path: "apps/../../etc", want: new(*PathError), msg: "leaves the repository"},
		{name: "a missing path is refused", files: base, path: "apps/nothing", want: new(*PathError), msg: `path "apps/nothing": does not exist`},
		{name: "a file as path is refused", files: base, path: "apps/base/cm.yaml", want: new(*PathError), msg: "is not a directory"},
		{
			name: "a path symlinked outside the repository is refused", files: merge(outside, map[string]string{"repo/.keep": ""}),
			links: map[string]string{"repo/app": "../outside/base"}, path: "app", want: new(*PathError), msg: "leaves the repository through a symlink",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := dir
			files := tt.files
			if _, nested := files["repo/.keep"]; nested || hasPrefix(files, "repo/") {
				root = filepath.Join(dir, "repo")
			}
			writeFiles(t, dir, files)
			for link, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			r, err := Build(root, tt.path, Options{})
			if err == nil {
				t.Fatalf("Build succeeded with %d objects:\n%s", len(r.Objects), r.YAML)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Build took %s to fail", elapsed)
			}
			if !errors.As(err, tt.want) {
				t.Errorf("error %T %q is not a %T", err, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q lacks %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), dir) {
				t.Errorf("error %q shows the absolute checkout path", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestConcurrentBuildsAgree(t *testing.T) {
	want, err := Build(testRepo, "apps/overlays/production", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := Build(testRepo, "apps/overlays/production", Options{})
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(r.YAML, want.YAML) {
				t.Error("a concurrent build rendered differently")
			}
		})
	}
	wg.Wait()
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func hasPrefix(files map[string]string, prefix string) bool {
	for name := range files {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// writeRepo writes files into a new repository directory and returns it.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
