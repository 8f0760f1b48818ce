// Command verify measures `fjord verify` from process start to exit on the
// guide's overlay (its Application, verbatim but for repoURL, given with
// --app) and on N objects in a plain directory (the GitOps benchmark's mix:
// 50% ConfigMaps, 25% Services, 25% Deployments of one replica), and prints a
// markdown table: the wall time (median of -runs, with min–max) and the
// median of each phase fjord verify reports (-o json), with the machine and
// its load.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

var phases = []string{"start", "render", "dry run", "apply", "health"}

func main() {
	bin := flag.String("bin", os.Getenv("FJORD_BIN"), "fjord binary")
	runs := flag.Int("runs", 3, "runs per case")
	n := flag.Int("n", 1000, "objects in the large case")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "set -bin or FJORD_BIN")
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "fjord-verify-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	if err := writeRepo(work, *n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cms, svcs, deps := split(*n)
	cases := []struct {
		name    string
		objects int
		args    []string
	}{
		{"the guide's overlay: its Application with `--app` (Kustomize; Deployment, Service; CreateNamespace)", 2,
			[]string{"--app", filepath.Join(work, "guide-app.yaml")}},
		{fmt.Sprintf("%d objects: a plain directory with `--path` (%d ConfigMaps, %d Services, %d Deployments of 1 replica)", *n, cms, svcs, deps), *n,
			[]string{"--path", "bench"}},
	}
	machine, loadStart := benchutil.Machine(), benchutil.LoadAvg()
	type row struct {
		wall   []float64
		phases map[string][]float64
	}
	rows := make([]row, len(cases))
	for i, c := range cases {
		rows[i].phases = map[string][]float64{}
		for r := range *runs {
			wall, ph, err := once(*bin, work, c.args)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s, run %d: %v\n", c.name, r+1, err)
				os.Exit(1)
			}
			rows[i].wall = append(rows[i].wall, wall)
			for _, p := range phases {
				rows[i].phases[p] = append(rows[i].phases[p], ph[p])
			}
			fmt.Fprintf(os.Stderr, "%s, run %d: %.2fs (start %.2fs); load %s\n", c.name, r+1, wall, ph["start"], benchutil.LoadAvg())
		}
	}
	fmt.Printf("| case | objects | `fjord verify`, start to exit (median of %d) | min–max | start | render | dry run | apply | health |\n", *runs)
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for i, c := range cases {
		r := rows[i]
		fmt.Printf("| %s | %d | %.2f s | %.2f–%.2f s |", c.name, c.objects, benchutil.Median(r.wall), minOf(r.wall), maxOf(r.wall))
		for _, p := range phases {
			fmt.Printf(" %.2f s |", benchutil.Median(r.phases[p]))
		}
		fmt.Println()
	}
	fmt.Printf("\nPhases are medians of what `fjord verify -o json` reports; the render overlaps the start.\n")
	fmt.Printf("Machine: %s; load average %s before, %s after.\n", machine, loadStart, benchutil.LoadAvg())
}

// once runs fjord verify with args in dir and returns its wall time and
// phases; a verification that does not pass is an error.
func once(bin, dir string, args []string) (float64, map[string]float64, error) {
	cmd := exec.Command(bin, append([]string{"verify", "-o", "json"}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	wall := time.Since(began).Seconds()
	var report struct {
		Passed bool `json:"passed"`
		Phases []struct {
			Name    string  `json:"name"`
			Seconds float64 `json:"seconds"`
		} `json:"phases"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &report); jerr != nil || err != nil || !report.Passed {
		return 0, nil, fmt.Errorf("fjord verify: %v (passed %v)\n%s%s", err, report.Passed, stderr.String(), stdout.String())
	}
	ph := map[string]float64{}
	for _, p := range report.Phases {
		ph[p.Name] = p.Seconds
	}
	return wall, ph, nil
}

// writeRepo writes the guide's layout, its Application and the large case.
func writeRepo(dir string, n int) error {
	files := map[string]string{
		"apps/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: app
`,
		"apps/base/service.yaml":                       "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector: {app: app}\n  ports:\n  - port: 80\n",
		"apps/base/kustomization.yaml":                 "resources:\n- deployment.yaml\n- service.yaml\n",
		"apps/overlays/production/kustomization.yaml":  "resources:\n- ../../base\npatches:\n- path: patch-replicas.yaml\n",
		"apps/overlays/production/patch-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 3\n",
		"guide-app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: payment-gateway-oslo, namespace: argocd}
spec:
  project: default
  source: {repoURL: 'git@gitlab.com:your-org/infra-manifests.git', targetRevision: HEAD, path: apps/overlays/production}
  destination: {server: 'https://kubernetes.default.svc', namespace: payments}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, PruneLast=true]
`,
		"bench/objects.yaml": objects(n, "bench"),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func split(n int) (cms, svcs, deps int) { return n / 2, n / 4, n - n/2 - n/4 }

// objects are the GitOps benchmark's objects, in namespace ns (made first).
func objects(n int, ns string) string {
	cms, svcs, deps := split(n)
	docs := []string{fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)}
	for i := range cms {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\n  namespace: %s\ndata:\n  index: \"%d\"\n  payload: \"%s\"\n", i, ns, i, strings.Repeat("x", 64)))
	}
	for i := range svcs {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%05d\n  namespace: %s\nspec:\n  selector: {app: dep-%05d}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n", i, ns, i))
	}
	for i := range deps {
		docs = append(docs, fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-%05d\n  namespace: %s\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: dep-%05d}}\n"+
			"  template:\n    metadata: {labels: {app: dep-%05d}}\n    spec:\n      containers:\n      - {name: app, image: registry.k8s.io/pause:3.10}\n", i, ns, i, i))
	}
	return strings.Join(docs, "---\n")
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
