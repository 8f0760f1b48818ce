// Command startup measures how fast `fjord server --disable-agent` becomes
// ready and how much memory it holds when idle, per datastore, and prints a
// markdown table: seconds from process start to /readyz ok, and RSS after an
// idle period, median of N runs, with the machine it ran on. Besides the API
// server's /readyz it records when the whole server is ready (the log line
// "fjord is ready", logged once every component, the GitOps engine included,
// is ready: what systemd's READY=1 means), and how long the gitops component
// took to become ready. The first start is stopped only once the whole server
// is ready, so that the restart is the restart of a fully bootstrapped server.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
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
		name    string
		cold    []float64
		ready   []float64
		coldAll []float64
		all     []float64
		gitops  []float64
		rssMiB  []float64
	}
	var rows []row
	for _, ds := range []struct{ name, endpoint string }{{"embedded etcd", ""}, {"kine sqlite", "sqlite://"}} {
		r := row{name: ds.name}
		for i := range *runs {
			cold, warm, rss, err := once(*bin, ds.endpoint, *idle)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s run %d: %v\n", ds.name, i+1, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s run %d: first start /readyz %.2fs, all ready %.2fs; restart /readyz %.2fs, all ready %.2fs (gitops %.2fs); idle RSS %.0f MiB; load %s\n",
				ds.name, i+1, cold.readyz.Seconds(), cold.all.Seconds(), warm.readyz.Seconds(), warm.all.Seconds(), warm.gitops.Seconds(), rss, benchutil.LoadAvg())
			r.cold = append(r.cold, cold.readyz.Seconds())
			r.ready = append(r.ready, warm.readyz.Seconds())
			r.coldAll = append(r.coldAll, cold.all.Seconds())
			r.all = append(r.all, warm.all.Seconds())
			r.gitops = append(r.gitops, warm.gitops.Seconds())
			r.rssMiB = append(r.rssMiB, rss)
		}
		rows = append(rows, r)
	}
	fmt.Printf("| datastore | first start → /readyz (empty data dir) | restart → /readyz (median of %d) | min–max | RSS after %s idle (median) | min–max |\n", *runs, *idle)
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f–%.2f s | %.0f MiB | %.0f–%.0f MiB |\n", r.name, benchutil.Median(r.cold),
			benchutil.Median(r.ready), slices.Min(r.ready), slices.Max(r.ready), benchutil.Median(r.rssMiB), slices.Min(r.rssMiB), slices.Max(r.rssMiB))
	}
	fmt.Printf("\n| datastore | first start → all components ready (median) | min–max | restart → all components ready (median of %d) | min–max | gitops component start → ready on restart (median) |\n", *runs)
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %.2f s | %.2f–%.2f s | %.2f s | %.2f–%.2f s | %.2f s |\n", r.name, benchutil.Median(r.coldAll), slices.Min(r.coldAll), slices.Max(r.coldAll),
			benchutil.Median(r.all), slices.Min(r.all), slices.Max(r.all), benchutil.Median(r.gitops))
	}
	fmt.Printf("\nMachine: %s\n", benchutil.Machine())
}

// timing is one start: to the API server's /readyz ok, to "fjord is ready"
// (every component ready), and the gitops component's own start-to-ready time.
type timing struct{ readyz, all, gitops time.Duration }

func once(bin, endpoint string, idle time.Duration) (cold, warm timing, rss float64, err error) {
	dir, err := os.MkdirTemp("/var/tmp", "fjord-bench-")
	if err != nil {
		return cold, warm, 0, err
	}
	defer os.RemoveAll(dir)
	port := benchutil.FreePort()
	args := []string{"server", "--disable-agent", "--data-dir", dir, "--fsync-gate=off",
		"--https-listen-port", strconv.Itoa(port), "--etcd-client-port", strconv.Itoa(benchutil.FreePort()),
		"--etcd-peer-port", strconv.Itoa(benchutil.FreePort()), "--kube-controller-manager-port=0", "--kube-scheduler-port=0",
		"--config", filepath.Join(dir, "none.yaml")}
	os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600)
	if endpoint != "" {
		args = append(args, "--datastore-endpoint", endpoint)
	}
	// The first start generates the PKI and a new etcd member; a restart (what
	// systemd does) reuses both. Measure each.
	if cold, _, err = run(bin, args, dir, port, 0); err != nil {
		return cold, warm, 0, err
	}
	warm, rss, err = run(bin, args, dir, port, idle)
	return cold, warm, rss, err
}

func run(bin string, args []string, dir string, port int, idle time.Duration) (t timing, rss float64, err error) {
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(dir, "fjord.log")
	log, _ := os.Create(logPath)
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return t, 0, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	// The data dir (and the log in it) is removed after the run: on a
	// failure, show the end of the log here.
	fail := func(format string, a ...any) (timing, float64, error) {
		data, _ := os.ReadFile(logPath)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		return t, 0, fmt.Errorf(format+"; end of the log:\n%s", append(a, data)...)
	}
	for t.readyz == 0 || t.all == 0 {
		select {
		case <-exited:
			return fail("fjord exited before it was ready")
		default:
		}
		if time.Since(begin) > 2*time.Minute {
			return fail("not ready after 2m (/readyz after %s, all components after %s)", t.readyz, t.all)
		}
		if t.readyz == 0 && ok(filepath.Join(dir, "kubeconfig.yaml"), port) {
			t.readyz = time.Since(begin)
		}
		if t.all == 0 && allReady(logPath) {
			t.all = time.Since(begin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.gitops = componentTook(logPath, "gitops")
	if idle == 0 {
		return t, 0, nil
	}
	time.Sleep(idle)
	select {
	case <-exited:
		return fail("fjord exited while idle")
	default:
	}
	return t, rssOf(cmd.Process.Pid), nil
}

// allReady reports whether the server logged that every component is ready.
func allReady(logPath string) bool {
	data, _ := os.ReadFile(logPath)
	return strings.Contains(string(data), `msg="fjord is ready"`)
}

// componentTook returns the "took" of the component's "component ready" log
// line (0 when absent).
func componentTook(logPath, name string) time.Duration {
	data, _ := os.ReadFile(logPath)
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `msg="component ready"`) || !strings.Contains(line, " component="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "took="); ok {
				d, _ := time.ParseDuration(v)
				return d
			}
		}
	}
	return 0
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

// rssOf is pid's VmRSS in MiB.
func rssOf(pid int) float64 {
	rss, _ := benchutil.MemMiB(pid)
	return rss
}
