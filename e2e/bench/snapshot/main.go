// Command snapshot measures Fjord's snapshots on a real `fjord server
// --disable-agent` holding N objects (ConfigMaps and Secrets), on the
// embedded etcd and on kine SQLite: how long `fjord snapshot save` takes
// and how large the file is, how long `fjord snapshot restore` takes into a
// wiped data dir, and how long the restored server takes to /readyz with
// every object back (the Secrets' values compared). It prints a markdown table with the machine.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fjord-dev/fjord/appliance/snapshot"
	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

func main() {
	bin := flag.String("bin", os.Getenv("FJORD_BIN"), "fjord binary")
	n := flag.Int("n", 1000, "objects created before the snapshot (a tenth of them Secrets)")
	runs := flag.Int("runs", 3, "snapshots saved per datastore (the median is shown)")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "set -bin or FJORD_BIN")
		os.Exit(2)
	}
	loadBefore := benchutil.LoadAvg()
	var rows []string
	for _, ds := range []struct{ name, endpoint string }{{"embedded etcd", ""}, {"kine sqlite", "sqlite://"}} {
		row, err := run(*bin, ds.endpoint, *n, *runs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "snapshot bench (%s): %v\n", ds.name, err)
			os.Exit(1)
		}
		rows = append(rows, "| "+ds.name+" | "+row+" |")
	}
	fmt.Printf("| datastore | objects | save (median of %d) | min–max | file size | datastore part | restore | restored server → /readyz | objects back |\n", *runs)
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Printf("\nMachine: %s; load average before %s, after %s\n", benchutil.Machine(), loadBefore, benchutil.LoadAvg())
}

type server struct {
	bin  string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan error
}

func (s *server) start() error {
	log, err := os.OpenFile(filepath.Join(s.dir, "..", "fjord.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, append([]string{"server"}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	return nil
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// waitReady returns a client once /readyz says ok.
func (s *server) waitReady(timeout time.Duration) (kubernetes.Interface, error) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("fjord exited: %v (log in %s)", err, filepath.Dir(s.dir))
		default:
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.dir, "kubeconfig.yaml"))
		if err != nil {
			continue
		}
		cfg.QPS, cfg.Burst = 500, 1000
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			continue
		}
		body, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err == nil && string(body) == "ok" {
			return kube, nil
		}
	}
	return nil, fmt.Errorf("not ready after %s", timeout)
}

func fjord(bin string, args ...string) (string, time.Duration, error) {
	begin := time.Now()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("fjord %s: %v\n%s", strings.Join(args[:2], " "), err, out)
	}
	return string(out), time.Since(begin), nil
}

func run(bin, endpoint string, n, runs int) (string, error) {
	work, err := os.MkdirTemp("", "fjord-snapshot-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "data")
	os.MkdirAll(dir, 0o700)
	cfgFile := filepath.Join(work, "none.yaml")
	os.WriteFile(cfgFile, nil, 0o600)
	args := []string{"--disable-agent", "--data-dir", dir, "--fsync-gate=off", "--gitops.disable", "--sealing.key-bits", "2048",
		"--https-listen-port", strconv.Itoa(benchutil.FreePort()), "--etcd-client-port", strconv.Itoa(benchutil.FreePort()),
		"--etcd-peer-port", strconv.Itoa(benchutil.FreePort()), "--kube-controller-manager-port", "0",
		"--kube-scheduler-port", "0", "--sealing.port", strconv.Itoa(benchutil.FreePort()), "--config", cfgFile}
	if endpoint != "" {
		args = append(args, "--datastore-endpoint", endpoint)
	}
	s := &server{bin: bin, dir: dir, args: args}
	if err := s.start(); err != nil {
		return "", err
	}
	defer func() {
		if s.cmd.ProcessState == nil {
			s.kill()
		}
	}()
	kube, err := s.waitReady(3 * time.Minute)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	// Random values, so the file's size is not flattered by compression.
	values := make([]string, n)
	for i := range values {
		b := make([]byte, 384)
		rand.Read(b)
		values[i] = base64.StdEncoding.EncodeToString(b) // 512 characters
	}
	for i := range n {
		payload := values[i]
		meta := metav1.ObjectMeta{Name: fmt.Sprintf("o%04d", i), Namespace: "bench"}
		if i%10 == 0 {
			_, err = kube.CoreV1().Secrets("bench").Create(ctx, &corev1.Secret{ObjectMeta: meta, StringData: map[string]string{"v": payload}}, metav1.CreateOptions{})
		} else {
			_, err = kube.CoreV1().ConfigMaps("bench").Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"v": payload}}, metav1.CreateOptions{})
		}
		if err != nil {
			return "", err
		}
	}
	snaps := filepath.Join(work, "snapshots")
	var saves []float64
	var file string
	for i := range runs {
		out, took, err := fjord(bin, append([]string{"snapshot", "save", "--dir", snaps, "--name", "run-" + strconv.Itoa(i)}, args...)...)
		if err != nil {
			return "", err
		}
		saves = append(saves, took.Seconds())
		file = strings.TrimSuffix(strings.Fields(out)[1], ":")
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	dbPart := datastorePart(file)

	s.kill()
	os.RemoveAll(dir)
	_, restoreTook, err := fjord(bin, append([]string{"snapshot", "restore", file}, args...)...)
	if err != nil {
		return "", err
	}
	begin := time.Now()
	if err := s.start(); err != nil {
		return "", err
	}
	kube, err = s.waitReady(3 * time.Minute)
	if err != nil {
		return "", err
	}
	ready := time.Since(begin)
	cms, err := kube.CoreV1().ConfigMaps("bench").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	secrets, err := kube.CoreV1().Secrets("bench").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	back := 0
	for _, c := range cms.Items {
		if strings.HasPrefix(c.Name, "o") {
			back++
		}
	}
	for _, s := range secrets.Items {
		var i int
		if _, err := fmt.Sscanf(s.Name, "o%04d", &i); err == nil && i < n && string(s.Data["v"]) == values[i] {
			back++
		}
	}
	return fmt.Sprintf("%d | %.2f s | %.2f–%.2f s | %.2f MiB | %s | %.2f s | %.2f s | %d of %d",
		n, benchutil.Median(saves), benchutil.Percentile(saves, 0), benchutil.Percentile(saves, 100), float64(fi.Size())/(1<<20),
		dbPart, restoreTook.Seconds(), ready.Seconds(), back, n), nil
}

// datastorePart is the datastore's uncompressed size, from the manifest.
func datastorePart(file string) string {
	m, err := snapshot.ReadManifest(file)
	if err != nil {
		return "?"
	}
	for _, p := range m.Parts {
		if strings.HasPrefix(p.Name, "datastore/") {
			return fmt.Sprintf("%.2f MiB", float64(p.Size)/(1<<20))
		}
	}
	return "?"
}
