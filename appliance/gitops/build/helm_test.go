package build

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const chartRepo = "testdata/charts"

// production is the shop chart as an Argo CD Application with a production
// values file would render it.
var production = HelmOptions{
	ReleaseName: "shop-oslo", Namespace: "payments", KubeVersion: "v1.37.2",
	ValueFiles: []string{"values-production.yaml"},
	Values:     "image:\n  tag: 2.1.7\n",
	Parameters: []HelmParameter{{Name: "service.port", Value: "8080"}, {Name: "env.BUILD", Value: "0012", ForceString: true}},
}

// helmBinary is upstream's helm CLI built from the same module version
// (`make helm`), or "".
func helmBinary(t *testing.T) string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := filepath.Abs("../../../bin/helm"); err == nil {
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	return ""
}

// helmTemplate runs the real `helm template` on a copy of the chart
// directory whose file:// dependencies `helm dependency build` vendored
// first, as Argo CD's repo-server does.
func helmTemplate(t *testing.T, helm string, args ...string) string {
	t.Helper()
	tmp := t.TempDir()
	if out, err := exec.Command("cp", "-r", chartRepo+"/.", tmp).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	env := append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(tmp, ".cache"), "HELM_CONFIG_HOME="+filepath.Join(tmp, ".config"), "HELM_DATA_HOME="+filepath.Join(tmp, ".data"))
	dep := exec.Command(helm, "dependency", "build", filepath.Join(tmp, "shop"))
	dep.Env = env
	if out, err := dep.CombinedOutput(); err != nil {
		t.Fatalf("helm dependency build: %v: %s", err, out)
	}
	cmd := exec.Command(helm, append([]string{"template", filepath.Join(tmp, "shop"), "--include-crds"}, args...)...)
	cmd.Env = env
	cmd.Dir = filepath.Join(tmp, "shop")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	return string(out)
}

func TestHelmMatchesHelmTemplate(t *testing.T) {
	tests := []struct {
		name     string
		opts     HelmOptions
		helmArgs []string
		golden   string
		kinds    []string
	}{
		{name: "the chart's defaults render like helm template", golden: "shop-default.yaml",
			opts:     HelmOptions{ReleaseName: "shop", Namespace: "default", KubeVersion: "v1.37.2"},
			helmArgs: []string{"--name-template", "shop", "--namespace", "default", "--kube-version", "v1.37.2"},
			kinds:    []string{"CustomResourceDefinition", "ConfigMap", "Service", "Deployment", "StatefulSet", "Job"}},
		{name: "a values file, inline values and parameters render like -f, --values and --set", golden: "shop-production.yaml",
			opts: production,
			helmArgs: []string{"--name-template", "shop-oslo", "--namespace", "payments", "--kube-version", "v1.37.2",
				"-f", "values-production.yaml", "--values", "inline-values.yaml", "--set", "service.port=8080", "--set-string", "env.BUILD=0012"},
			kinds: []string{"CustomResourceDefinition", "ConfigMap", "Service", "Service", "Deployment", "StatefulSet", "Job"}},
	}
	helm := helmBinary(t)
	if helm == "" {
		t.Log("no helm CLI (make helm, or HELM=…): comparing with the golden files only")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Build(chartRepo, "shop", Options{Helm: &tt.opts, HelmSource: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.SourceType != SourceTypeHelm {
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
			// The migrate hook (pre-install,pre-upgrade) runs as a PreSync
			// hook of the sync: nothing to warn about.
			if len(r.Warnings) != 0 {
				t.Errorf("warnings = %q, want none", r.Warnings)
			}
			golden := filepath.Join("testdata", "golden", tt.golden)
			if *update {
				os.WriteFile(golden, r.YAML, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.YAML) != string(want) {
				t.Errorf("differs from %s:\n%s", golden, r.YAML)
			}
			if helm == "" {
				return
			}
			args := tt.helmArgs
			for i, a := range args {
				if a == "inline-values.yaml" {
					// Not in t.TempDir(): helm splits --values at commas,
					// and the test's name has some.
					dir, err := os.MkdirTemp("", "fjord-helm-values-")
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.RemoveAll(dir) })
					f := filepath.Join(dir, "inline-values.yaml")
					os.WriteFile(f, []byte(tt.opts.Values), 0o644)
					args = append(append([]string{}, args[:i]...), append([]string{f}, args[i+1:]...)...)
				}
			}
			if out := helmTemplate(t, helm, args...); out != string(r.YAML) {
				t.Errorf("differs from helm template:\n--- helm\n%s\n--- fjord\n%s", out, r.YAML)
			}
		})
	}
}

func TestHelmValues(t *testing.T) {
	render := func(t *testing.T, o HelmOptions) map[string]string {
		t.Helper()
		o.ReleaseName, o.KubeVersion = "shop", "v1.37.2"
		r, err := Build(chartRepo, "shop", Options{Helm: &o, HelmSource: true})
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, obj := range r.Objects {
			if obj.GetKind() != "Deployment" {
				continue
			}
			cs, _, _ := unstructuredSlice(obj.Object, "spec", "template", "spec", "containers")
			for _, e := range cs[0].(map[string]any)["env"].([]any) {
				m := e.(map[string]any)
				env[m["name"].(string)] = m["value"].(string)
			}
			env["image"] = cs[0].(map[string]any)["image"].(string)
		}
		return env
	}
	t.Run("valuesObject wins over values, as in Argo CD", func(t *testing.T) {
		env := render(t, HelmOptions{Values: "env: {LOG_LEVEL: debug}", ValuesObject: map[string]any{"env": map[string]any{"LOG_LEVEL": "error"}}})
		if env["LOG_LEVEL"] != "error" {
			t.Errorf("LOG_LEVEL = %q", env["LOG_LEVEL"])
		}
	})
	t.Run("parameters come after the value files and values", func(t *testing.T) {
		env := render(t, HelmOptions{ValueFiles: []string{"values-production.yaml"}, Values: "env: {REGION: bergen}",
			Parameters: []HelmParameter{{Name: "image.tag", Value: "9"}}})
		if env["REGION"] != "bergen" || env["LOG_LEVEL"] != "warn" || env["image"] != "registry.example/shop:9" {
			t.Errorf("env = %v", env)
		}
	})
	t.Run("a $ref/ value file is read from the source with that ref (Argo CD's multiple sources)", func(t *testing.T) {
		values := t.TempDir()
		if err := os.MkdirAll(filepath.Join(values, "envs", "prod"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(values, "envs", "prod", "values.yaml"), []byte("env: {LOG_LEVEL: trace}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		env := render(t, HelmOptions{ValueFiles: []string{"$values/envs/prod/values.yaml"}, Refs: map[string]string{"values": values}})
		if env["LOG_LEVEL"] != "trace" {
			t.Errorf("env = %v", env)
		}
		o := HelmOptions{ReleaseName: "shop", ValueFiles: []string{"$config/values.yaml"}, Refs: map[string]string{"values": values}}
		if _, err := Build(chartRepo, "shop", Options{Helm: &o, HelmSource: true}); err == nil || !strings.Contains(err.Error(), "no source has ref config") {
			t.Errorf("unknown ref: %v", err)
		}
		o.ValueFiles = []string{"$values/../escape.yaml"}
		if _, err := Build(chartRepo, "shop", Options{Helm: &o, HelmSource: true}); err == nil || !strings.Contains(err.Error(), "leaves the repository") && !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("escaping ref: %v", err)
		}
	})
	t.Run("a missing values file is skipped with ignoreMissingValueFiles", func(t *testing.T) {
		env := render(t, HelmOptions{ValueFiles: []string{"values-nowhere.yaml"}, IgnoreMissingValueFiles: true})
		if env["LOG_LEVEL"] != "info" {
			t.Errorf("env = %v", env)
		}
	})
}

func unstructuredSlice(obj map[string]any, path ...string) ([]any, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[p]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

func TestHelmErrors(t *testing.T) {
	chart := map[string]string{
		"c/Chart.yaml":               "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"c/values.yaml":              "count: 1\n",
		"c/templates/cm.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {count: {{ .Values.count | quote }}}\n",
		"outside/secret-values.yaml": "count: 2\n",
	}
	tests := []struct {
		name  string
		files map[string]string
		path  string
		opts  HelmOptions
		want  string
	}{
		{name: "a missing values file names itself", files: chart, path: "c", opts: HelmOptions{ValueFiles: []string{"values-prod.yaml"}},
			want: "helm template c: value file values-prod.yaml does not exist in the repository (set ignoreMissingValueFiles to skip it)"},
		{name: "a values file outside the repository is refused", files: chart, path: "c", opts: HelmOptions{ValueFiles: []string{"../../../../etc/passwd"}},
			want: "leaves the repository"},
		{name: "a values URL is refused", files: chart, path: "c", opts: HelmOptions{ValueFiles: []string{"https://example.com/v.yaml"}},
			want: "only files in the repository can be read"},
		{name: "a template error names the template and line", path: "c", opts: HelmOptions{},
			files: merge(chart, map[string]string{"c/templates/bad.yaml": "kind: {{ .Values.count | nosuchfunc }}\n"}),
			want:  `function "nosuchfunc" not defined`},
		{name: "a dependency from a chart repository that is not vendored is refused with what to do", path: "c", opts: HelmOptions{},
			files: merge(chart, map[string]string{"c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies:\n- {name: pg, version: 1.0.0, repository: https://charts.example}\n"}),
			want:  "missing in charts/ directory: pg (from https://charts.example): no chart repository can be reached from here; vendor them (helm dependency build) and commit charts/"},
		{name: "a values file breaking the chart's schema is refused", path: "c", opts: HelmOptions{Values: "count: many"},
			files: merge(chart, map[string]string{"c/values.schema.json": `{"type": "object", "properties": {"count": {"type": "integer"}}}`}),
			want:  "values don't meet the specifications of the schema"},
		{name: "an incompatible kubeVersion names both", path: "c", opts: HelmOptions{KubeVersion: "v1.37.2"},
			files: merge(chart, map[string]string{"c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\nkubeVersion: '<1.25.0'\n"}),
			want:  "chart requires kubeVersion: <1.25.0 which is incompatible with Kubernetes v1.37.2"},
		{name: "spec.source.helm on a path without a chart is refused", files: map[string]string{"d/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
			path: "d", opts: HelmOptions{}, want: "holds no Chart.yaml, but spec.source.helm is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := writeRepo(t, tt.files)
			tt.opts.ReleaseName = "r"
			_, err := Build(repo, tt.path, Options{Helm: &tt.opts, HelmSource: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), repo) {
				t.Errorf("the error shows the checkout's path: %v", err)
			}
		})
	}
	t.Run("a chart symlinking a file outside the repository is refused", func(t *testing.T) {
		repo := writeRepo(t, chart)
		outside := filepath.Join(t.TempDir(), "host-secret")
		os.WriteFile(outside, []byte("secret"), 0o600)
		if err := os.Symlink(outside, filepath.Join(repo, "c", "stolen.txt")); err != nil {
			t.Fatal(err)
		}
		_, err := Build(repo, "c", Options{})
		var herr *HelmError
		if !errors.As(err, &herr) || !strings.Contains(err.Error(), "c/stolen.txt is a symlink that leaves the repository") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a kustomization beside a chart wins unless spec.source.helm is set, as in Argo CD", func(t *testing.T) {
		repo := writeRepo(t, merge(chart, map[string]string{"c/kustomization.yaml": "resources: [other.yaml]\n",
			"c/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-kustomize}\n"}))
		r, err := Build(repo, "c", Options{})
		if err != nil || r.SourceType != SourceTypeKustomize {
			t.Fatalf("got %v, %v", r, err)
		}
		r, err = Build(repo, "c", Options{HelmSource: true, Helm: &HelmOptions{ReleaseName: "r"}})
		if err != nil || r.SourceType != SourceTypeHelm {
			t.Fatalf("got %v, %v", r, err)
		}
	})
}
