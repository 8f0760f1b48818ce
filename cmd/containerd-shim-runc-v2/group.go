package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"golang.org/x/sys/unix"
)

// GroupDirEnv names the directory in which the shim groups every container
// of a namespace into one shim process. Fjord sets it in containerd's
// environment (appliance/node); without it the shim groups as upstream's
// does, one shim per pod.
const GroupDirEnv = "FJORD_SHIM_GROUP_DIR"

// groupAnnotation is the annotation with which a container asks upstream's
// runc shim for a group of its own choosing; a container that carries it
// keeps that choice.
const groupAnnotation = "io.containerd.runc.v2.group"

// groupName is the one group of a namespace: the shim's id and the name
// its socket address is derived from.
const groupName = "fjord"

// grouped puts every container of a namespace in one shim process instead
// of one per pod.
//
// Upstream's manager groups by an annotation of the bundle's config.json it
// reads in the working directory (the sandbox id, for CRI), starts the
// serving shim with -id set to the instance id, and runs it in that
// directory. grouped runs the wrapped Start in a directory of its own per
// namespace, whose config.json names no group, with the instance id set to
// the group: the address, the serving shim's id and its working directory
// are the group's, and outlive any one pod, whose bundle is removed with it.
// Stop (the delete action) still runs in the container's bundle.
type grouped struct {
	shim.Shim
	dir string // GroupDirEnv
}

// Start starts, or finds, the namespace's shim for the container whose
// bundle is the working directory.
func (g grouped) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	bundle, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if explicit, err := hasGroup(filepath.Join(bundle, "config.json")); err != nil || explicit {
		// Unreadable: the wrapped Start reports it as it would.
		return g.Shim.Start(ctx, params)
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(g.dir, ns)
	if err := prepareGroupDir(ctx, dir, params); err != nil {
		return nil, fmt.Errorf("preparing shim group %s: %w", dir, err)
	}
	// One start action at a time per group. The wrapped Start binds the
	// group's socket, and one that finds it bound dials it and, when that
	// fails, removes it and starts a shim of its own: between another's
	// bind and listen the dial is refused, and the first shim was left
	// serving nobody (two shims for 20 pods starting on a busy machine).
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking shim group %s: %w", dir, err)
	}
	if err := os.Chdir(dir); err != nil {
		return nil, err
	}
	defer os.Chdir(bundle)
	params.InstanceID = groupName
	return g.Shim.Start(ctx, params)
}

// hasGroup reports whether the OCI spec at path asks for a group itself.
func hasGroup(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return false, err
	}
	_, ok := spec.Annotations[groupAnnotation]
	return ok, nil
}

// prepareGroupDir writes what the wrapped Start and the serving shim read
// in their working directory: a config.json without annotations (so the
// group is the instance id), the socket's address (which the serving shim
// removes when it exits) and the socket directory link the start action
// writes into a bundle.
func prepareGroupDir(ctx context.Context, dir string, params *bootapi.BootstrapParams) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		// Upstream's default, which the wrapped Start uses too.
		socketDir = "/run/containerd/s"
	}
	address, err := shim.CreateSocketAddress(ctx, socketDir, params.GetContainerdGrpcAddress(), groupName, false)
	if err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(dir, "config.json"), []byte("{}\n")); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(dir, "address"), []byte(address)); err != nil {
		return err
	}
	link := filepath.Join(dir, "s")
	if target, _ := os.Readlink(link); target != socketDir {
		tmp := fmt.Sprintf("%s.%d", link, os.Getpid())
		if err := os.Symlink(socketDir, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	return nil
}

// writeIfChanged replaces path with data atomically unless it holds data
// already: many start actions run at once when many pods start.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// maxGroupLog is the size above which a grouped shim starts its log afresh:
// it lives under /run, in memory.
const maxGroupLog = 1 << 20

// logToGroupDir sends the serving shim's log (and anything it writes to
// stderr, such as a panic) to shim.log in its working directory. A pod's
// shim logs into a FIFO in its bundle that containerd reads; the group's
// shim outlives the bundle it was started for, and the group directory has
// no such reader.
func logToGroupDir() error {
	f, err := os.OpenFile("shim.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxGroupLog {
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	return unix.Dup2(int(f.Fd()), int(os.Stderr.Fd()))
}
