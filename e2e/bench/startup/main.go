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
				ds.name, i+1, cold.readyz.Seconds(), cold.all.Seconds(), warm.readyz.Seconds(), warm.all.Seconds(), warm.gitops.Seconds(), rss, loadavg())
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
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f–%.2f s | %.0f MiB | %.0f–%.0f MiB |\n", r.name, median(r.cold),
			median(r.ready), slices.Min(r.ready), slices.Max(r.ready), median(r.rssMiB), slices.Min(r.rssMiB), slices.Max(r.rssMiB))
	}
	fmt.Printf("\n| datastore | first start → all components ready (median) | min–max | restart → all components ready (median of %d) | min–max | gitops component start → ready on restart (median) |\n", *runs)
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %.2f s | %.2f–%.2f s | %.2f s | %.2f–%.2f s | %.2f s |\n", r.name, median(r.coldAll), slices.Min(r.coldAll), slices.Max(r.coldAll),
			median(r.all), slices.Min(r.all), slices.Max(r.all), median(r.gitops))
	}
	fmt.Printf("\nMachine: %s\n", machine())
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
	return t, rssMiB(cmd.Process.Pid), nil
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

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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
