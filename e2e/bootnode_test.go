//go:build e2e

package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fjord-dev/fjord/e2e/guide"
)

// Kind-like nodes: each is a systemd-nspawn container booting the Debian 12
// root filesystem images/node/rootfs.sh builds (cached outside the
// repository), with systemd as PID 1, a NoCloud seed rendered by `fjord
// bootstrap cloud-init`, the binary under test bind-mounted read-only at
// /usr/local/bin/fjord, and its own network namespace on the bridge
// fjordbr0 with the host, which serves the Git repository over ssh and http.
// Nothing here touches the host's cni0, its iptables chains or its ports:
// those belong to the node inside its namespace.

const (
	nodeBridge = "fjordbr0"
	bridgeCIDR = "10.213.0.1/24"
	hostIP     = "10.213.0.1"
)

// nodeLab is what the nodes of one test share: the root filesystem, the
// bridge, the Git host and the test image.
type nodeLab struct {
	t        *testing.T
	rootfs   string
	dir      string
	image    string // reference
	archive  string // its archive
	repo     *gitRepo
	bare     string
	sshURL   string
	httpURL  string
	sshKey   string // deploy key file
	known    string // known_hosts file
	sshPort  int
	httpPort int
	nextIP   int
}

// needNodes skips the test where nspawn nodes cannot run, saying why; in CI
// (CI=true) it fails instead: .ci/run installs what they need.
func needNodes(t *testing.T) (rootfs string) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node e2e cannot run: %s", why)
		}
		t.Skipf("node e2e skipped: %s", why)
	}
	if os.Geteuid() != 0 {
		skip("needs root (systemd-nspawn, bridges)")
	}
	for _, bin := range []string{"systemd-nspawn", "nsenter", "/usr/sbin/sshd", "git", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip(bin + " is not installed (make deps-e2e-nodes installs it)")
		}
	}
	rootfs = os.Getenv("FJORD_E2E_ROOTFS")
	if rootfs == "" {
		skip("FJORD_E2E_ROOTFS is not set (make test-e2e-nodes builds the node root filesystem and sets it)")
	}
	if _, err := os.Stat(filepath.Join(rootfs, ".complete")); err != nil {
		skip("FJORD_E2E_ROOTFS " + rootfs + " is not a finished root filesystem")
	}
	return rootfs
}

// newNodeLab sets up the bridge, the Git host (the guide's gateway layout,
// served over ssh and http on the bridge) and the host-side guards. All of
// it is undone in t.Cleanup, failed or not.
func newNodeLab(t *testing.T) *nodeLab {
	rootfs := needNodes(t)
	archive, image := testImage(t)
	restoreSysctls(t) // the kubelets set kernel.panic & co, which are global
	for _, m := range []string{"overlay", "br_netfilter"} {
		exec.Command("modprobe", m).Run()
	}
	lab := &nodeLab{t: t, rootfs: rootfs, dir: t.TempDir(), image: image, archive: archive, nextIP: 10}
	lab.bridge()
	lab.repo = newRepo(t, guide.GatewayLayout(image, 8081))
	lab.bare = filepath.Join(lab.dir, "srv", "gateway.git")
	bareClone(t, lab.repo, lab.bare)
	lab.serveSSH()
	lab.serveHTTP()
	return lab
}

func hostRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bridge makes fjordbr0 with the host's address on it, and keeps what the
// nodes send from being forwarded anywhere (the host may forward for its
// own pods): nothing but the host is reachable from a node.
func (l *nodeLab) bridge() {
	t := l.t
	exec.Command("ip", "link", "del", nodeBridge).Run() // a crashed run's
	hostRun(t, "ip", "link", "add", nodeBridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", nodeBridge).Run() })
	hostRun(t, "ip", "addr", "add", bridgeCIDR, "dev", nodeBridge)
	hostRun(t, "ip", "link", "set", nodeBridge, "up")
	rule := []string{"FORWARD", "-i", nodeBridge, "!", "-o", nodeBridge, "-j", "DROP", "-m", "comment", "--comment", "fjord e2e nodes reach the host only"}
	hostRun(t, "iptables", append([]string{"-I"}, rule...)...)
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
}

func keygen(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

// serveSSH runs a throwaway sshd on the bridge address with a generated
// host key and the deploy key authorised.
func (l *nodeLab) serveSSH() {
	t := l.t
	dir := filepath.Join(l.dir, "sshd")
	os.MkdirAll(dir, 0o700)
	hostKey := filepath.Join(dir, "host")
	l.sshKey = filepath.Join(dir, "deploy")
	keygen(t, hostKey)
	keygen(t, l.sshKey)
	pub, _ := os.ReadFile(l.sshKey + ".pub")
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	l.sshPort = freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(strings.Join([]string{
		"Port " + strconv.Itoa(l.sshPort), "ListenAddress " + hostIP, "HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"), "AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no", "PermitRootLogin yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "",
	}, "\n")), 0o600)
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	logs := &syncBuffer{}
	sshd.Stdout, sshd.Stderr = logs, logs
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sshd.Process.Kill()
		sshd.Wait()
		if t.Failed() {
			t.Logf("sshd:\n%s", tail(logs.String(), 2000))
		}
	})
	addr := net.JoinHostPort(hostIP, strconv.Itoa(l.sshPort))
	eventually(t, 10*time.Second, "sshd listening", func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	f := strings.Fields(string(hostPub))
	l.known = filepath.Join(dir, "known_hosts")
	os.WriteFile(l.known, []byte("["+hostIP+"]:"+strconv.Itoa(l.sshPort)+" "+f[0]+" "+f[1]+"\n"), 0o644)
	l.sshURL = "ssh://root@" + addr + l.bare
}

// serveHTTP serves the repository with git's smart HTTP (git http-backend
// as CGI) on the bridge address. Plain http: a node trusting a test CA
// would need the CA in the repository Secret, which bootstrap cloud-init
// does not write yet.
func (l *nodeLab) serveHTTP() {
	t := l.t
	ln, err := net.Listen("tcp", hostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	l.httpPort = ln.Addr().(*net.TCPAddr).Port
	backend := "/usr/lib/git-core/git-http-backend"
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(l.bare), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	l.httpURL = "http://" + hostIP + ":" + strconv.Itoa(l.httpPort) + "/" + filepath.Base(l.bare)
}

// push commits files to the working repository and pushes to the served one.
func (l *nodeLab) push(msg string, files map[string]string) string {
	rev := l.repo.commit(msg, files)
	l.repo.git("push", "-q", l.bare, "HEAD:main")
	exec.Command("git", "-C", l.bare, "update-server-info").Run()
	return rev
}

// bootNode is one nspawn node booting systemd.
type bootNode struct {
	lab       *nodeLab
	t         *testing.T
	name      string
	ip        string
	dir       string
	cmd       *exec.Cmd
	console   *syncBuffer
	exited    chan struct{}
	leader    int
	started   time.Time
	startMono time.Duration
	capture   *capture
	cgroups   []string
	once      sync.Once
}

// nodeOptions say how a node is bootstrapped.
type nodeOptions struct {
	repoURL     string   // the lab's ssh URL unless set
	config      []string // extra --config-set KEY=VALUE
	sealingKeys string   // a key backup file for --sealing-keys
	// dropIn is a drop-in for fjord.service (faster watchdog, for one).
	dropIn string
}

// bootNode renders the seed and boots a node. Its traffic off the node is
// recorded from before its first packet.
func (l *nodeLab) boot(name string, o nodeOptions) *bootNode {
	t := l.t
	t.Helper()
	l.nextIP++
	n := &bootNode{lab: l, t: t, name: name, ip: "10.213.0." + strconv.Itoa(l.nextIP), dir: filepath.Join(l.dir, name), exited: make(chan struct{})}
	for _, d := range []string{"seed", "data", "etc"} {
		os.MkdirAll(filepath.Join(n.dir, d), 0o700)
	}
	url := o.repoURL
	if url == "" {
		url = l.sshURL
	}
	args := []string{"bootstrap", "cloud-init", "--repo", url, "--revision", "main", "--path", "apps/overlays/production",
		"--app-name", "gateway", "--namespace", "payments", "--image-archive", l.archive,
		// Not the disk under test: these VMs are borderline for 10 ms.
		"--config-set", "fsync-gate=warn", "--config-set", "gitops.poll-interval=2s"}
	if strings.HasPrefix(url, "ssh://") {
		args = append(args, "--ssh-key", l.sshKey, "--known-hosts", l.known)
	}
	if o.sealingKeys != "" {
		args = append(args, "--sealing-keys", o.sealingKeys)
	}
	for _, c := range o.config {
		args = append(args, "--config-set", c)
	}
	stdout, stderr, code := runSplit(t, nil, args...)
	if code != 0 {
		t.Fatalf("fjord bootstrap cloud-init: exit %d\n%s", code, stderr)
	}
	write := func(rel, content string) string {
		p := filepath.Join(n.dir, rel)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("seed/user-data", stdout)
	write("seed/meta-data", "instance-id: "+name+"\nlocal-hostname: "+name+"\n")
	network := write("etc/host0.env", "ADDRESS="+n.ip+"/24\nGATEWAY="+hostIP+"\n")
	resolv := write("etc/resolv.conf", "nameserver "+hostIP+"\n")
	nspawn := []string{"systemd-nspawn", "-D", l.rootfs, "-M", name, "--hostname", name,
		"--boot", "--register=no", "--keep-unit", "--console=read-only", "--volatile=overlay",
		"--network-bridge=" + nodeBridge, "--resolv-conf=off", "--timezone=off", "--link-journal=no",
		"--capability=all", "--system-call-filter=@keyring bpf",
		"--bind-ro=" + fjordBin + ":/usr/local/bin/fjord",
		"--bind-ro=" + filepath.Join(n.dir, "seed") + ":/var/lib/cloud/seed/nocloud",
		"--bind=" + filepath.Join(n.dir, "data") + ":/var/lib/fjord",
		"--bind-ro=" + network + ":/etc/fjord-e2e/host0.env",
		"--bind-ro=" + resolv + ":/etc/resolv.conf",
		"--bind=/dev/kmsg",
	}
	if o.dropIn != "" {
		os.MkdirAll(filepath.Join(n.dir, "etc", "fjord.service.d"), 0o755)
		write("etc/fjord.service.d/10-e2e.conf", o.dropIn)
		nspawn = append(nspawn, "--bind-ro="+filepath.Join(n.dir, "etc", "fjord.service.d")+":/etc/systemd/system/fjord.service.d")
	}
	n.cgroups = nodeCgroups(t, name)
	// The shell joins the node's own cgroups first (nspawn would otherwise
	// make /payload and /supervisor at the root of each hierarchy), then
	// becomes nspawn.
	script := `for c in "$@"; do echo $$ > "$c/cgroup.procs" || exit 1; done; exec ` + shellJoin(nspawn)
	n.cmd = exec.Command("sh", append([]string{"-c", script, "sh"}, n.cgroups...)...)
	// The node's /proc/sys and /sys writable: the kubelet sets sysctls.
	n.cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_API_VFS_WRITABLE=1")
	n.console = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.console, n.console
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	n.started, n.startMono = time.Now(), monotonic()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(n.destroy)
	n.capture = startCapture(t, "vb-"+name, n.exited)
	eventually(t, 30*time.Second, name+"'s PID 1", func() error {
		select {
		case <-n.exited:
			t.Fatalf("systemd-nspawn exited:\n%s", tail(n.console.String(), 3000))
		default:
		}
		n.leader = leaderOf(n.cmd.Process.Pid)
		if n.leader == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	return n
}

// destroy powers the node off (SIGKILL of its PID 1's namespace after a
// grace), then removes its cgroups. The pods' processes go with the PID
// namespace.
func (n *bootNode) destroy() { n.once.Do(n.powerOff) }

func (n *bootNode) powerOff() {
	if n.t.Failed() {
		n.dumpDiagnostics()
	}
	select {
	case <-n.exited:
	default:
		// SIGRTMIN+4 asks systemd in a container for a poweroff.
		if n.leader != 0 {
			syscall.Kill(n.leader, syscall.Signal(34+4)) // SIGRTMIN (34 in glibc) + 4
		}
		select {
		case <-n.exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			if n.leader != 0 {
				syscall.Kill(n.leader, syscall.SIGKILL)
			}
			<-n.exited
		}
	}
	for _, c := range n.cgroups {
		removeCgroupTree(c)
	}
	os.RemoveAll(n.dir)
}

func (n *bootNode) dumpDiagnostics() {
	if n.leader == 0 {
		n.t.Logf("%s console:\n%s", n.name, tail(n.console.String(), 4000))
		return
	}
	for _, c := range [][]string{
		{"systemctl", "--no-pager", "status", "fjord", "cloud-final"},
		{"journalctl", "--no-pager", "-n", "80", "-u", "fjord"},
		{"journalctl", "--no-pager", "-n", "30", "-u", "cloud-final"},
		{"/usr/local/bin/fjord", "kubectl", "get", "pods", "-A", "-o", "wide"},
		{"/usr/local/bin/fjord", "kubectl", "get", "applications", "-A", "-o", "yaml"},
	} {
		out, _ := n.exec(c...)
		n.t.Logf("%s: %s\n%s", n.name, strings.Join(c, " "), tail(out, 6000))
	}
}

// exec runs a command in every namespace of the node (as machinectl shell
// would; there is no host systemd here to ask).
func (n *bootNode) exec(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(n.leader), "-a", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *bootNode) mustExec(args ...string) string {
	n.t.Helper()
	out, err := n.exec(args...)
	if err != nil {
		n.t.Fatalf("%s: %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
	}
	return out
}

func (n *bootNode) kubectl(args ...string) (string, error) {
	return n.exec(append([]string{"/usr/local/bin/fjord", "kubectl"}, args...)...)
}

// unit returns properties of a unit in the node.
func (n *bootNode) unit(name string, props ...string) map[string]string {
	out, _ := n.exec("systemctl", "show", name, "-p", strings.Join(props, ","))
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// since converts a systemd monotonic timestamp (µs) into the time since the
// node was started: the node shares the host's CLOCK_MONOTONIC.
func (n *bootNode) since(usec string) time.Duration {
	v, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || v == 0 {
		return 0
	}
	return time.Duration(v)*time.Microsecond - n.startMono
}

func monotonic() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// leaderOf finds the node's PID 1: nspawn's child running systemd.
func leaderOf(nspawn int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(nspawn) && strings.Contains(s[:i], "(systemd") {
			return pid
		}
	}
	return 0
}

// nodeCgroups makes a cgroup for the node in every hierarchy, below
// fjord-e2e/, with the cpuset of the root (v1 cpusets start empty).
func nodeCgroups(t *testing.T, name string) []string {
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		root := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			continue // cpu and cpuacct are links to cpu,cpuacct
		}
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		parent := filepath.Join(root, "fjord-e2e")
		dir := filepath.Join(parent, name)
		removeCgroupTree(dir)
		for _, d := range []string{parent, dir} {
			if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if v, err := os.ReadFile(filepath.Join(root, f)); err == nil {
					os.WriteFile(filepath.Join(d, f), v, 0o644)
				}
			}
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

// removeCgroupTree removes a cgroup and those below it, deepest first.
func removeCgroupTree(dir string) {
	var all []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			all = append(all, p)
		}
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- {
		os.Remove(all[i])
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// capture records every IP packet a node sends off its namespace: an
// AF_PACKET socket on the host side of its veth, where what the node sends
// arrives as incoming.
type capture struct {
	mu    sync.Mutex
	flows map[string]int // "proto dst:port" → packets
	err   error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture(t *testing.T, ifname string, done <-chan struct{}) *capture {
	c := &capture{flows: map[string]int{}}
	var ifi *net.Interface
	eventually(t, 30*time.Second, "the node's veth "+ifname, func() error {
		var err error
		ifi, err = net.InterfaceByName(ifname)
		return err
	})
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Usec: 200000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 65536)
		for {
			select {
			case <-done:
				return
			default:
			}
			nr, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				select {
				case <-done: // the veth went with the node
					return
				case <-time.After(time.Second):
				}
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue // to the node
			}
			if key := flowKey(buf[:nr]); key != "" {
				c.mu.Lock()
				c.flows[key]++
				c.mu.Unlock()
			}
		}
	}()
	// It ends when the node does (destroy, a Cleanup registered before
	// this one): waiting for it here would wait for that Cleanup.
	return c
}

// flowKey names an Ethernet frame's IP destination: "tcp 10.213.0.1:22",
// "udp 10.213.0.1:53", "icmp 10.213.0.1", "ipv6 ff02::2"; "" for ARP.
func flowKey(frame []byte) string {
	if len(frame) < 14 {
		return ""
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case unix.ETH_P_IP:
		ip := frame[14:]
		if len(ip) < 20 {
			return "short ipv4"
		}
		ihl := int(ip[0]&0x0f) * 4
		dst := net.IP(ip[16:20]).String()
		l4 := ip[ihl:]
		switch ip[9] {
		case 6, 17:
			proto := map[byte]string{6: "tcp", 17: "udp"}[ip[9]]
			if len(l4) < 4 {
				return proto + " " + dst
			}
			return proto + " " + net.JoinHostPort(dst, strconv.Itoa(int(binary.BigEndian.Uint16(l4[2:4]))))
		case 1:
			return "icmp " + dst
		default:
			return "ipv4 proto " + strconv.Itoa(int(ip[9])) + " " + dst
		}
	case unix.ETH_P_IPV6:
		if len(frame) < 14+40 {
			return "short ipv6"
		}
		return "ipv6 " + net.IP(frame[14+24:14+40]).String()
	case unix.ETH_P_ARP:
		return ""
	default:
		return fmt.Sprintf("ethertype %#04x", binary.BigEndian.Uint16(frame[12:14]))
	}
}

// offenders returns the flows to anything but the allowed destinations,
// and every flow seen, for the log.
func (c *capture) offenders(allowed func(key string) bool) (bad, all []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.flows {
		line := fmt.Sprintf("%s (%d packets)", k, v)
		all = append(all, line)
		if !allowed(k) {
			bad = append(bad, line)
		}
	}
	sort.Strings(bad)
	sort.Strings(all)
	return bad, all, c.err
}

// gitAndDNSOnly allows the Git host's ssh and http ports and DNS.
func (l *nodeLab) gitAndDNSOnly(key string) bool {
	switch key {
	case "tcp " + hostIP + ":" + strconv.Itoa(l.sshPort), "tcp " + hostIP + ":" + strconv.Itoa(l.httpPort):
		return true
	}
	return strings.HasSuffix(key, ":53") && (strings.HasPrefix(key, "udp ") || strings.HasPrefix(key, "tcp "))
}
