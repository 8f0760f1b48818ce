// Command vmimage boots the KVM image (`make vm-image`) under qemu with a
// NoCloud seed rendered by `fjord bootstrap cloud-init` and waits until
// fjord.service is READY, then for its first "synced" STATUS; it prints the
// boot's phases, timed from the serial console, as a markdown table
// (docs/benchmarks.md keeps them). `make test-vm-image` runs it.
//
// The image is never written: the VM boots a qcow2 overlay backed by it.
// qemu's user network is isolated (restrict=on): the guest reaches nothing
// but the guide's repository, a bare Git repository this program serves
// over smart HTTP (git http-backend) on the host's loopback, forwarded into
// the guest as http://10.0.2.100/ by qemu's guestfwd (one socat per
// connection).
//
// READY is what the guest says, not a guess: the image's
// fjord-console-status.service is ordered after fjord.service, so systemd
// starts it only once fjord's start job is over (READY=1 for Type=notify),
// and it prints fjord.service's ActiveState, SubState and STATUS on the
// serial console whenever they change.
//
// Without /dev/kvm qemu emulates the CPU (TCG), tens of times slower than
// KVM: fjord.service's start timeout and watchdog are made for KVM, so the
// seed also carries a boothook with a drop-in that raises them for this
// boot (-tcg-drop-in=false leaves the unit as shipped).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cgi"
	"net/textproto"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fjord-dev/fjord/e2e/bench/benchutil"
	"github.com/fjord-dev/fjord/e2e/guide"
)

// gitHost is where the guest finds the repository: an address in qemu's
// user network that guestfwd answers.
const gitHost = "10.0.2.100"

// tcgDropIn raises fjord.service's limits for a software-emulated boot.
const tcgDropIn = `[Service]
# Software emulation (TCG) is tens of times slower than KVM: starting the
# control plane, the node and a first sync takes minutes, not seconds.
TimeoutStartSec=40min
WatchdogSec=10min
`

func main() {
	var o options
	flag.StringVar(&o.image, "image", "bin/fjord-vm.qcow2", "the VM image (make vm-image)")
	flag.StringVar(&o.bin, "bin", "bin/fjord", "the fjord binary that renders the seed (the image's own)")
	flag.StringVar(&o.archive, "image-archive", "bin/images/busybox.tar", "image archive the seed puts on the node (make images)")
	flag.StringVar(&o.testImage, "test-image", "docker.io/library/busybox:1.35", "the archive's image reference, which the guide's Deployments run")
	flag.DurationVar(&o.timeout, "timeout", 40*time.Minute, "how long the boot may take until fjord.service is READY")
	flag.DurationVar(&o.syncWait, "sync-wait", 10*time.Minute, "how long to wait after READY for a synced STATUS")
	flag.StringVar(&o.console, "console", "vm-console.log", "file the serial console is written to")
	flag.StringVar(&o.fsyncGate, "fsync-gate", "warn", "the seed's fsync-gate setting (enforce, warn, off)")
	flag.BoolVar(&o.tcgDropIn, "tcg-drop-in", true, "raise fjord.service's start timeout and watchdog for software emulation")
	flag.StringVar(&o.accel, "accel", "tcg", "qemu accelerator (kvm where /dev/kvm exists)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "vmimage:", err)
		os.Exit(1)
	}
}

type options struct {
	image, bin, archive, testImage string
	timeout, syncWait              time.Duration
	console, fsyncGate, accel      string
	tcgDropIn                      bool
}

func run(ctx context.Context, o options) error {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "cloud-localds", "socat", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (make deps-vm-image)", tool)
		}
	}
	image, err := filepath.Abs(o.image)
	if err != nil {
		return err
	}
	if _, err := os.Stat(image); err != nil {
		return fmt.Errorf("the VM image: %w (make vm-image)", err)
	}
	dir, err := os.MkdirTemp("", "fjord-vm-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bare, err := guideRepository(dir, o.testImage)
	if err != nil {
		return fmt.Errorf("making the guide's repository: %w", err)
	}
	port, fetches, stopGit, err := serveGit(bare)
	if err != nil {
		return err
	}
	defer stopGit()
	seed, err := renderSeed(ctx, dir, o)
	if err != nil {
		return err
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if err := command(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, overlay); err != nil {
		return err
	}
	console, err := os.Create(o.console)
	if err != nil {
		return err
	}
	defer console.Close()

	qemuVersion, _ := exec.Command("qemu-system-x86_64", "--version").Output()
	loadBefore := benchutil.LoadAvg()
	ctx, cancel := context.WithTimeout(ctx, o.timeout+o.syncWait)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-accel", o.accel, "-m", "4096", "-smp", "2", "-nographic", "-no-reboot",
		"-drive", "file="+overlay+",if=virtio,format=qcow2",
		"-drive", "file="+seed+",if=virtio,format=raw,readonly=on",
		"-netdev", "user,id=net0,restrict=on,guestfwd=tcp:"+gitHost+":80-cmd:socat STDIO TCP:127.0.0.1:"+strconv.Itoa(port),
		"-device", "virtio-net-pci,netdev=net0")
	// The console is read from qemu's stdout; the monitor multiplexed on
	// stdio gets no input.
	qemu.Stdin = nil
	out, err := qemu.StdoutPipe()
	if err != nil {
		return err
	}
	qemu.Stderr = os.Stderr
	// qemu and the socats it spawns go together when the run ends.
	qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	qemu.Cancel = func() error { return syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	if err := qemu.Start(); err != nil {
		return err
	}
	defer func() {
		syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL)
		qemu.Wait()
	}()
	fmt.Fprintf(os.Stderr, "qemu started (%s); serial console in %s\n", firstLine(qemuVersion), o.console)

	b := newBoot(start)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	readyBy := time.NewTimer(o.timeout)
	defer readyBy.Stop()
	var syncBy <-chan time.Time
	result := func() error {
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					return errors.New("qemu exited before fjord.service was READY")
				}
				fmt.Fprintf(console, "%8.1f %s\n", time.Since(start).Seconds(), line)
				if err := b.see(line); err != nil {
					return err
				}
				if b.at(phaseReady) && syncBy == nil {
					fmt.Fprintf(os.Stderr, "fjord.service READY after %s\n", b.host[phaseReady].Round(time.Second))
					syncBy = time.After(o.syncWait)
				}
				if b.at(phaseSynced) {
					return nil
				}
			case <-readyBy.C:
				if !b.at(phaseReady) {
					return fmt.Errorf("fjord.service not READY after %s", o.timeout)
				}
			case <-syncBy:
				return nil // READY is the test; the sync is reported when it came
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}()
	fmt.Printf("\n### VM image boot under qemu (%s, -smp 2, -m 4096)\n\n", o.accel)
	fmt.Printf("%s; host: %s; load average before %s, after %s; git fetches served: %d\n\n",
		firstLine(qemuVersion), benchutil.Machine(), loadBefore, benchutil.LoadAvg(), fetches.Load())
	b.print(os.Stdout)
	if result != nil {
		fmt.Fprintf(os.Stderr, "last console lines:\n%s\n", strings.Join(b.tail, "\n"))
	}
	return result
}

// guideRepository commits the guide's layout and returns a bare clone of
// it, ready for git http-backend.
func guideRepository(dir, image string) (string, error) {
	work := filepath.Join(dir, "gateway")
	for path, content := range guide.GatewayLayout(image, 8081) {
		p := filepath.Join(work, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	bare := filepath.Join(dir, "srv", "gateway.git")
	for _, args := range [][]string{
		{"-C", work, "init", "-q", "-b", "main"},
		{"-C", work, "add", "."},
		{"-C", work, "-c", "user.name=fjord", "-c", "user.email=fjord@localhost", "commit", "-q", "-m", "the guide's gateway"},
		{"clone", "-q", "--bare", work, bare},
		{"-C", bare, "update-server-info"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bare, nil
}

// serveGit serves the bare repository with git's smart HTTP on a free
// loopback port and counts the fetches (ref advertisements) it answers.
func serveGit(bare string) (port int, fetches *atomic.Int64, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, nil, err
	}
	fetches = &atomic.Int64{}
	backend := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend",
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(bare), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			fetches.Add(1)
		}
		backend.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port, fetches, func() { srv.Close() }, nil
}

// renderSeed makes the NoCloud seed disk (volume `cidata`): the user-data
// `fjord bootstrap cloud-init` prints (with the TCG drop-in as a boothook
// part beside it when asked) and a meta-data naming the instance.
func renderSeed(ctx context.Context, dir string, o options) (string, error) {
	cmd := exec.CommandContext(ctx, o.bin, "bootstrap", "cloud-init",
		"--repo", "http://"+gitHost+"/gateway.git", "--revision", "main", "--path", "apps/overlays/production",
		"--app-name", "gateway", "--namespace", "payments", "--image-archive", o.archive,
		"--config-set", "fsync-gate="+o.fsyncGate,
		// The API server's first start under emulation takes more than the
		// default 3 minutes a start waits for each component.
		"--config-set", "component-ready-timeout=20m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cloudConfig, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("fjord bootstrap cloud-init: %w\n%s", err, stderr.Bytes())
	}
	userData := cloudConfig
	if o.tcgDropIn {
		boothook := "#cloud-boothook\n#!/bin/sh\nmkdir -p /etc/systemd/system/fjord.service.d\n" +
			"cat > /etc/systemd/system/fjord.service.d/50-tcg.conf <<'EOF'\n" + tcgDropIn + "EOF\n"
		if userData, err = mimeMultipart(
			part{"text/cloud-config", "fjord.yaml", cloudConfig},
			part{"text/cloud-boothook", "tcg.sh", []byte(boothook)},
		); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"user-data": string(userData),
		"meta-data": "instance-id: fjord-vm-test-" + strconv.FormatInt(time.Now().Unix(), 10) + "\nlocal-hostname: fjord-vm\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return "", err
		}
	}
	seed := filepath.Join(dir, "seed.img")
	return seed, command(ctx, "cloud-localds", seed, filepath.Join(dir, "user-data"), filepath.Join(dir, "meta-data"))
}

type part struct {
	contentType, filename string
	body                  []byte
}

// mimeMultipart joins user-data parts the way cloud-init reads several
// (multipart/mixed, one part per handler).
func mimeMultipart(parts ...part) ([]byte, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.contentType+`; charset="us-ascii"`)
		h.Set("Content-Disposition", `attachment; filename="`+p.filename+`"`)
		pw, err := w.CreatePart(h)
		if err != nil {
			return nil, err
		}
		pw.Write(p.body)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	head := "Content-Type: multipart/mixed; boundary=\"" + w.Boundary() + "\"\nMIME-Version: 1.0\n\n"
	return append([]byte(head), body.Bytes()...), nil
}

func command(ctx context.Context, name string, args ...string) error {
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// The boot's phases, in the order they happen, each recognised by a line
// on the serial console.
const (
	phaseKernel     = iota // the kernel prints its banner
	phaseInit              // the kernel starts the initramfs's init
	phaseSystemd           // systemd's banner
	phaseCloudInit         // cloud-init's first stage runs
	phaseFinalStart        // cloud-init's final stage (runcmd: fjord install)
	phaseReady             // fjord.service active: READY=1 arrived
	phaseCloudDone         // cloud-init finished (fjord install returned)
	phaseSynced            // fjord's STATUS says the Application synced
	phases
)

var phaseNames = [phases]string{
	"kernel banner", "initramfs started", "systemd up", "cloud-init (init stage)",
	"cloud-init final stage (fjord install)", "fjord.service READY", "cloud-init finished", "first sync (STATUS synced)",
}

var (
	ansi       = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	kernelTime = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\]`)
	uptime     = regexp.MustCompile(`uptime=([0-9.]+)`)
)

// boot follows the console and notes when each phase was first seen: the
// host's time since qemu started and, where the line carries it, the
// guest's own clock (kernel timestamps, the status report's uptime).
type boot struct {
	start time.Time
	host  [phases]time.Duration
	guest [phases]float64
	// hasGuest says the line carried the guest's clock (0.0 is the
	// kernel's first line).
	hasGuest [phases]bool
	seen     [phases]bool
	state    string // fjord.service's last reported state
	// failedStarts are the reports of starts before READY that failed.
	failedStarts []string
	tail         []string
}

func newBoot(start time.Time) *boot { return &boot{start: start} }

func (b *boot) at(p int) bool { return b.seen[p] }

func (b *boot) mark(p int, line string) {
	if b.seen[p] {
		return
	}
	b.seen[p], b.host[p] = true, time.Since(b.start)
	m := kernelTime.FindStringSubmatch(line)
	if m == nil {
		m = uptime.FindStringSubmatch(line)
	}
	if m != nil {
		b.guest[p], _ = strconv.ParseFloat(m[1], 64)
		b.hasGuest[p] = true
	}
	fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", b.host[p].Seconds(), phaseNames[p])
}

// see reads one console line; a fjord.service that failed ends the run.
func (b *boot) see(raw string) error {
	line := strings.TrimSpace(ansi.ReplaceAllString(raw, ""))
	b.tail = append(b.tail, line)
	if len(b.tail) > 80 {
		b.tail = b.tail[1:]
	}
	switch {
	case strings.Contains(line, "Linux version"):
		b.mark(phaseKernel, line)
	case strings.Contains(line, "Run /init as init process"):
		b.mark(phaseInit, line)
	case strings.HasPrefix(line, "Welcome to ") && !strings.HasPrefix(line, "Welcome to GRUB"):
		b.mark(phaseSystemd, line)
	case strings.Contains(line, "running 'init-local'"), strings.Contains(line, "running 'init'"):
		b.mark(phaseCloudInit, line)
	case strings.Contains(line, "running 'modules:final'"):
		b.mark(phaseFinalStart, line)
	case strings.Contains(line, "Cloud-init v.") && strings.Contains(line, "finished at"):
		b.mark(phaseCloudDone, line)
	case strings.Contains(line, "fjord-console-status:"):
		if _, state, ok := strings.Cut(line, "fjord-console-status: "); ok && state != b.state {
			b.state = state
			fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", time.Since(b.start).Seconds(), state)
		}
		switch {
		// systemd gave up (the unit's start limit): the boot failed.
		case strings.Contains(line, "ActiveState=failed"):
			return fmt.Errorf("fjord.service failed: %s", line)
		// A start that failed and will be tried again (Restart=always) is
		// counted and reported, not the end: that is the unit's design,
		// and under emulation a first start can outlast fjord's fixed
		// 3-minute wait for a component.
		case strings.Contains(line, "SubState=auto-restart"):
			if !b.at(phaseReady) {
				b.failedStarts = append(b.failedStarts, line)
			}
		case strings.Contains(line, "ActiveState=active"):
			b.mark(phaseReady, line)
			// The STATUS of one Application: `synced NAME @REV (N objects, Healthy)`.
			if strings.Contains(line, "StatusText=synced ") {
				b.mark(phaseSynced, line)
			}
		}
	}
	return nil
}

// print writes the phases as a markdown table.
func (b *boot) print(w io.Writer) {
	fmt.Fprintln(w, "| phase | since qemu started | guest clock (s since kernel start) |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for p := range phases {
		if !b.seen[p] {
			fmt.Fprintf(w, "| %s | not reached | |\n", phaseNames[p])
			continue
		}
		guest := ""
		if b.hasGuest[p] {
			guest = strconv.FormatFloat(b.guest[p], 'f', 1, 64)
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", phaseNames[p], b.host[p].Round(100*time.Millisecond), guest)
	}
	fmt.Fprintf(w, "\nfjord.service starts that failed before READY (systemd restarted it): %d\n", len(b.failedStarts))
	for _, f := range b.failedStarts {
		fmt.Fprintf(w, "- `%s`\n", f)
	}
	if b.state != "" {
		fmt.Fprintf(w, "\nfjord.service's last report: `%s`\n", b.state)
	}
}
