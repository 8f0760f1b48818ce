package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a named local cluster: a detached `fjord server
// --disable-agent` with its data dir in Clusters.StateDir/NAME/data, its
// log in NAME/server.log and this record in NAME/cluster.json.
type Cluster struct {
	Name    string    `json:"name"`
	PID     int       `json:"pid"`
	Ports   Ports     `json:"ports"`
	Created time.Time `json:"created"`
	// Server is the API server's URL.
	Server string `json:"server"`
	// WithNode: the server runs the node agent too (as root).
	WithNode bool `json:"withNode,omitempty"`
	// Running is whether the server process is alive (not recorded).
	Running bool `json:"-"`
	// Dir is the cluster's state directory (not recorded).
	Dir string `json:"-"`
}

// Clusters manages the named local clusters of one user.
type Clusters struct {
	// StateDir holds a directory per cluster.
	StateDir string
	// Self is the fjord executable the servers run.
	Self string
	// Kubeconfig is where contexts are merged; nil means kubectl's rules
	// (KUBECONFIG, else ~/.kube/config).
	Kubeconfig clientcmd.ConfigAccess
}

// DefaultStateDir is $XDG_STATE_HOME/fjord, or ~/.local/state/fjord.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "fjord"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locating the state dir: %w", err)
	}
	return filepath.Join(home, ".local", "state", "fjord"), nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// CheckName refuses a name that is not a DNS label of at most 40 characters
// (it names a directory and kubeconfig entries).
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: use lowercase letters, digits and '-', at most 40, starting and ending with a letter or digit", name)
	}
	return nil
}

func (cs *Clusters) access() clientcmd.ConfigAccess {
	if cs.Kubeconfig != nil {
		return cs.Kubeconfig
	}
	return clientcmd.NewDefaultPathOptions()
}

func (cs *Clusters) dir(name string) string { return filepath.Join(cs.StateDir, name) }

// lock serialises up and down of every cluster of this user.
func (cs *Clusters) lock() (func(), error) {
	if err := os.MkdirAll(cs.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", cs.StateDir, err)
	}
	f, err := os.OpenFile(filepath.Join(cs.StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// read returns the cluster's record, with Running set; fs.ErrNotExist when
// there is none.
func (cs *Clusters) read(name string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(cs.dir(name), "cluster.json"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("reading cluster %s: %w", name, err)
	}
	c.Dir = cs.dir(name)
	c.Running = serverRunning(c.PID, filepath.Join(c.Dir, "data"))
	return c, nil
}

func (cs *Clusters) write(c *Cluster) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, "cluster.json.tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, "cluster.json"))
}

// serverRunning reports whether pid is a fjord server on dataDir (and not
// another process that got the pid of one that died).
func serverRunning(pid int, dataDir string) bool {
	if !processAlive(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true // no procfs: trust the pid
	}
	return bytes.Contains(cmdline, []byte("\x00server\x00")) && bytes.Contains(cmdline, []byte("\x00"+dataDir+"\x00"))
}

// UpOptions say what kind of cluster Up makes; a cluster keeps its kind
// until it is deleted.
type UpOptions struct {
	// WithNode runs the node too (root; one per machine, see CheckNode),
	// its images imported from ImageArchives.
	WithNode      bool
	ImageArchives []string
}

// UpResult says what Up did.
type UpResult struct {
	Cluster *Cluster
	// AlreadyRunning: the cluster was up; nothing was started.
	AlreadyRunning bool
	// Kubeconfig is the file the context was written to.
	Kubeconfig string
	// Took is how long the server took to become ready.
	Took time.Duration
}

// Up starts the cluster name, or restarts it on its data dir when it was
// stopped, waits until every component is ready (its READY=1), and merges
// its admin credentials into the kubeconfig as context fjord-NAME. A
// running cluster is left as it is (its context is merged again). ctx
// bounds the wait; a server not ready by then is stopped. status is told
// "starting" before the server starts, then the server's own status lines.
func (cs *Clusters) Up(ctx context.Context, name string, opts UpOptions, status func(string)) (*UpResult, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if !opts.WithNode && len(opts.ImageArchives) > 0 {
		return nil, errors.New("--image-archive needs --with-node: without a node no image is pulled")
	}
	unlock, err := cs.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := cs.read(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c = &Cluster{Name: name, Dir: cs.dir(name), Created: time.Now().UTC().Truncate(time.Second)}
	case err != nil:
		return nil, err
	case c.WithNode != opts.WithNode:
		had := "without"
		if c.WithNode {
			had = "with"
		}
		return nil, fmt.Errorf("cluster %s was made %s --with-node; `fjord down %s` first to change that", name, had, name)
	case c.Running:
		file, err := mergeKubeconfig(cs.access(), name, filepath.Join(c.Dir, "data", "kubeconfig.yaml"))
		return &UpResult{Cluster: c, AlreadyRunning: true, Kubeconfig: file}, err
	}
	if opts.WithNode {
		if err := CheckNode(); err != nil {
			return nil, err
		}
	}
	c.WithNode = opts.WithNode
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", c.Dir, err)
	}
	// Keep the recorded ports when they are still free; else take new
	// ones that no other cluster has recorded.
	if c.Ports.API == 0 || !portFree(c.Ports.API) || !portFree(c.Ports.Sealing) {
		avoid := map[int]bool{}
		others, _ := cs.List()
		for _, o := range others {
			if o.Name != name {
				avoid[o.Ports.API], avoid[o.Ports.Sealing] = true, true
			}
		}
		if c.Ports, err = FreePorts(avoid); err != nil {
			return nil, err
		}
	}
	status("starting")
	began := time.Now()
	srv, err := StartServer(ctx, ServerOptions{
		Self: cs.Self, DataDir: filepath.Join(c.Dir, "data"), Ports: c.Ports,
		LogFile: filepath.Join(c.Dir, "server.log"), Detach: true, GitOps: true, Status: status,
		WithNode: opts.WithNode, ImageArchives: opts.ImageArchives,
	})
	if err != nil {
		return nil, fmt.Errorf("starting cluster %s: %w (log: %s)", name, err, filepath.Join(c.Dir, "server.log"))
	}
	took := time.Since(began)
	c.PID, c.Server, c.Running = srv.PID(), srv.URL(), true
	file, err := mergeKubeconfig(cs.access(), name, srv.Kubeconfig())
	if err == nil {
		err = cs.write(c)
	}
	if err != nil {
		srv.Kill()
		return nil, err
	}
	if err := srv.Release(); err != nil {
		return nil, err
	}
	return &UpResult{Cluster: c, Kubeconfig: file, Took: took}, nil
}

// StopTimeout is how long Down waits for a server to stop after SIGTERM
// before it kills it: the server's own clean-shutdown bound and a margin.
const StopTimeout = 35 * time.Second

// Down stops the cluster name (SIGTERM, then SIGKILL after StopTimeout),
// removes its context, cluster and user from the kubeconfig and deletes its
// state directory, data included. It reports whether there was a cluster;
// the kubeconfig entries are removed either way.
func (cs *Clusters) Down(name string) (bool, error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	unlock, err := cs.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	c, err := cs.read(name)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// An unreadable record: the directory is still ours to remove.
		if _, serr := os.Stat(cs.dir(name)); serr == nil {
			exists = true
		}
	}
	if exists && c != nil && c.WithNode && os.Geteuid() != 0 {
		return true, fmt.Errorf("cluster %s runs a node, whose pods and mounts only root can remove: run fjord down as root", name)
	}
	if exists && c != nil && c.Running {
		syscall.Kill(c.PID, syscall.SIGTERM)
		if !waitGone(c.PID, StopTimeout) {
			syscall.Kill(c.PID, syscall.SIGKILL)
			if !waitGone(c.PID, 5*time.Second) {
				return true, fmt.Errorf("cluster %s: server (pid %d) did not stop", name, c.PID)
			}
		}
	}
	if exists && c != nil && c.WithNode {
		// Pods outlive the server: stop them and unmount their volumes
		// before the data dir is removed.
		if err := StopNode(cs.Self, filepath.Join(c.Dir, "data")); err != nil {
			return true, fmt.Errorf("cluster %s: %w; nothing was removed", name, err)
		}
	}
	if err := removeKubeconfig(cs.access(), name); err != nil {
		return exists, err
	}
	if _, err := os.Stat(cs.dir(name)); err == nil {
		exists = true
		if err := os.RemoveAll(cs.dir(name)); err != nil {
			return true, fmt.Errorf("removing %s: %w", cs.dir(name), err)
		}
	}
	return exists, nil
}

// List returns every cluster with a record, by name.
func (cs *Clusters) List() ([]*Cluster, error) {
	entries, err := os.ReadDir(cs.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Cluster
	for _, e := range entries {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		c, err := cs.read(e.Name())
		if err != nil {
			continue // being created, or not ours
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
