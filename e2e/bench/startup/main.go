// Command startup measures how fast `fjord server --disable-agent` becomes
// ready and how much memory it holds when idle, per datastore, and prints a
// markdown table: seconds from process start to /readyz ok, and RSS after an
// idle period, median of N runs, with the machine it ran on.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	bin := flag.String("bin", os.Getenv("FJORD_BIN"), "fjord binary")
	runs := flag.Int("runs", 5, "runs per datastore")
	idle := flag.Duration("idle", 60*time.Second, "idle time before reading RSS")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "set -bin or FJORD_BIN")
		os.Exit(2)
	}
	type row struct {
		name   string
		cold   []float64
		ready  []float64
		rssMiB []float64
	}
	var rows []row
	for _, ds := range []struct{ name, endpoint string }{{"embedded etcd", ""}, {"kine sqlite", "sqlite://"}} {
		r := row{name: ds.name}
		for i := range *runs {
			cold, ready, rss, err := once(*bin, ds.endpoint, *idle)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s run %d: %v\n", ds.name, i+1, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s run %d: first start %.2fs, restart %.2fs, idle RSS %.0f MiB\n", ds.name, i+1, cold.Seconds(), ready.Seconds(), rss)
			r.cold = append(r.cold, cold.Seconds())
			r.ready = append(r.ready, ready.Seconds())
			r.rssMiB = append(r.rssMiB, rss)
		}
		rows = append(rows, r)
	}
	fmt.Printf("| datastore | first start → /readyz (empty data dir) | restart → /readyz (median of %d) | min–max | RSS after %s idle (median) | min–max |\n", *runs, *idle)
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f–%.2f s | %.0f MiB | %.0f–%.0f MiB |\n", r.name, median(r.cold),
			median(r.ready), slices.Min(r.ready), slices.Max(r.ready), median(r.rssMiB), slices.Min(r.rssMiB), slices.Max(r.rssMiB))
	}
	fmt.Printf("\nMachine: %s\n", machine())
}

func once(bin, endpoint string, idle time.Duration) (cold, warm time.Duration, rss float64, err error) {
	dir, err := os.MkdirTemp("/var/tmp", "fjord-bench-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	port := freePort()
	args := []string{"server", "--disable-agent", "--data-dir", dir, "--fsync-gate=off",
		"--https-listen-port", strconv.Itoa(port), "--etcd-client-port", strconv.Itoa(freePort()),
		"--etcd-peer-port", strconv.Itoa(freePort()), "--kube-controller-manager-port=0", "--kube-scheduler-port=0",
		"--config", filepath.Join(dir, "none.yaml")}
	os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600)
	if endpoint != "" {
		args = append(args, "--datastore-endpoint", endpoint)
	}
	// The first start generates the PKI and a new etcd member; a restart (what
	// systemd does) reuses both. Measure each.
	if cold, _, err = run(bin, args, dir, port, 0); err != nil {
		return 0, 0, 0, err
	}
	warm, rss, err = run(bin, args, dir, port, idle)
	return cold, warm, rss, err
}

func run(bin string, args []string, dir string, port int, idle time.Duration) (time.Duration, float64, error) {
	cmd := exec.Command(bin, args...)
	log, _ := os.Create(filepath.Join(dir, "fjord.log"))
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	var ready time.Duration
	for {
		if time.Since(begin) > 2*time.Minute {
			return 0, 0, fmt.Errorf("not ready after 2m; see the log")
		}
		if ok(filepath.Join(dir, "kubeconfig.yaml"), port) {
			ready = time.Since(begin)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if idle == 0 {
		return ready, 0, nil
	}
	time.Sleep(idle)
	return ready, rssMiB(cmd.Process.Pid), nil
}

func ok(kubeconfig string, port int) bool {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false
	}
	cfg.Timeout = time.Second
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return false
	}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func rssMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var u syscall.Utsname
	syscall.Uname(&u)
	kernel := ""
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		kernel += string(rune(c))
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.Split(string(data), "\n")[0])[1]
		if kb, err := strconv.Atoi(mem); err == nil {
			mem = fmt.Sprintf("%.0f GiB", float64(kb)/1024/1024)
		}
	}
	return fmt.Sprintf("%d cores (%s), %s RAM, Linux %s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}
