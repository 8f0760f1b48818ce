// Command sealing measures Fjord's sealed-secrets controller on a real
// `fjord server --disable-agent` and prints a markdown table: how long
// sealing a Secret takes offline (what kubeseal --cert does), how long one
// SealedSecret takes from create to its Secret existing, and how long a
// burst of N takes until every Secret exists, with the machine it ran on.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fjord-dev/fjord/appliance/sealing"
	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
)

func main() {
	bin := flag.String("bin", os.Getenv("FJORD_BIN"), "fjord binary")
	single := flag.Int("single", 30, "SealedSecrets created one at a time")
	burst := flag.Int("burst", 300, "SealedSecrets created at once")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "set -bin or FJORD_BIN")
		os.Exit(2)
	}
	if err := run(*bin, *single, *burst); err != nil {
		fmt.Fprintln(os.Stderr, "sealing bench:", err)
		os.Exit(1)
	}
}

func run(bin string, single, burst int) error {
	dir, err := os.MkdirTemp("", "fjord-sealing-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port := benchutil.FreePort()
	cmd := exec.Command(bin, "server", "--disable-agent", "--data-dir", dir, "--fsync-gate=off", "--gitops.disable",
		"--https-listen-port", strconv.Itoa(port), "--etcd-client-port", strconv.Itoa(benchutil.FreePort()),
		"--etcd-peer-port", strconv.Itoa(benchutil.FreePort()), "--kube-controller-manager-port", "0",
		"--kube-scheduler-port", "0", "--sealing.port", strconv.Itoa(benchutil.FreePort()),
		"--config", filepath.Join(dir, "none.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600); err != nil {
		return err
	}
	log, _ := os.Create(filepath.Join(dir, "fjord.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cmd.Process.Signal(os.Interrupt); <-exited }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var kube kubernetes.Interface
	var dyn dynamic.Interface
	var pem []byte
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no certificate after 3m; log in %s", dir)
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "fjord.log"))
			exited <- err
			return fmt.Errorf("fjord exited: %v\n%s", err, out)
		default:
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig.yaml"))
		if err != nil {
			continue
		}
		cfg.QPS, cfg.Burst = 1000, 2000
		kube, _ = kubernetes.NewForConfig(cfg)
		dyn, _ = dynamic.NewForConfig(cfg)
		if pem, err = sealing.FetchCert(ctx, kube); err == nil {
			break
		}
	}
	pub, err := sealing.ParseCertPEM(pem)
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}

	// Offline sealing, as kubeseal --cert does it: three values per Secret.
	var sealed []*sealing.SealedSecret
	begin := time.Now()
	for i := range single + burst {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%04d", i), Namespace: "bench"},
			StringData: map[string]string{"user": "app", "password": strings.Repeat("p", 32), "url": "postgres://db:5432/app"}}
		ss, err := sealing.Seal(rand.Reader, pub, s, sealing.Strict)
		if err != nil {
			return err
		}
		sealed = append(sealed, ss)
	}
	sealMs := float64(time.Since(begin).Microseconds()) / 1000 / float64(len(sealed))

	// Every Secret's arrival, from a watch.
	w, err := kube.CoreV1().Secrets("bench").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type == watch.Added {
				mu.Lock()
				arrived[s.Name] = time.Now()
				mu.Unlock()
			}
		}
	}()
	defer w.Stop()
	waitFor := func(names []string, timeout time.Duration) (time.Time, error) {
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			mu.Lock()
			var last time.Time
			all := true
			for _, n := range names {
				t, ok := arrived[n]
				if !ok {
					all = false
					break
				}
				if t.After(last) {
					last = t
				}
			}
			mu.Unlock()
			if all {
				return last, nil
			}
		}
		return time.Time{}, fmt.Errorf("Secrets missing after %s", timeout)
	}
	create := func(ss *sealing.SealedSecret) error {
		obj, err := ss.ToUnstructured()
		if err != nil {
			return err
		}
		_, err = dyn.Resource(sealing.GVR).Namespace("bench").Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		return err
	}

	var one []float64
	for _, ss := range sealed[:single] {
		start := time.Now()
		if err := create(ss); err != nil {
			return err
		}
		at, err := waitFor([]string{ss.Name}, 30*time.Second)
		if err != nil {
			return err
		}
		one = append(one, at.Sub(start).Seconds()*1000)
	}

	batch := sealed[single:]
	names := make([]string, len(batch))
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(batch))
	sem := make(chan struct{}, 32)
	for i, ss := range batch {
		names[i] = ss.Name
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := create(ss); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	last, err := waitFor(names, 5*time.Minute)
	if err != nil {
		return err
	}
	burstS := last.Sub(start).Seconds()

	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| seal one Secret of 3 values offline (RSA-4096 certificate) | %.2f ms |\n", sealMs)
	fmt.Printf("| create one SealedSecret → its Secret exists, median of %d | %.0f ms |\n", single, benchutil.Median(one))
	fmt.Printf("| same, p95 | %.0f ms |\n", benchutil.Percentile(one, 95))
	fmt.Printf("| create %d SealedSecrets at once → every Secret exists | %.2f s (%.0f per second) |\n", burst, burstS, float64(burst)/burstS)
	fmt.Printf("\nMachine: %s\n", benchutil.Machine())
	return nil
}
