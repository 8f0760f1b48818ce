package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/datastore"
	"github.com/fjord-dev/fjord/appliance/node"
	"github.com/fjord-dev/fjord/appliance/snapshot"
	"github.com/fjord-dev/fjord/bootstrap"
	"github.com/fjord-dev/fjord/systemd"
)

// rootFlag is --root of install and uninstall.
func rootFlag() cli.Flag {
	return &cli.StringFlag{Name: "root", Value: "/", Usage: "prefix of every path written or removed: a root filesystem being built (or a test); systemd is left alone (needs --no-start with install)"}
}

func installCommand() *cli.Command {
	flags := []cli.Flag{
		rootFlag(),
		&cli.BoolFlag{Name: "no-start", Usage: "install and enable fjord.service, but do not start it"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "how long to wait for fjord.service to be ready"},
		&cli.BoolFlag{Name: "no-snapshot", Usage: "upgrade an existing installation without taking a snapshot first"},
	}
	return &cli.Command{
		Name:      "install",
		Usage:     "install fjord as the systemd service fjord.service, start it and wait until it is ready",
		UsageText: "fjord install [--root DIR] [--no-start] [--timeout 10m] [server flags…]",
		Description: "Copies this binary to " + systemd.BinaryPath + ", writes " + appliance.DefaultConfigFile +
			" from the server flags given (keys are the flag names; without any, an existing file is kept), the unit " +
			systemd.UnitPath + " and the helper " + systemd.KillallPath + ", then enables and starts (or restarts) " +
			"fjord.service and prints its status until it is ready. Running it again upgrades the binary and restarts the service; " +
			"pods keep running.",
		Flags:  append(flags, serverKeyFlags()...),
		Action: runInstall,
	}
}

func uninstallCommand() *cli.Command {
	return &cli.Command{
		Name:      "uninstall",
		Usage:     "stop and remove fjord.service, every pod, the configuration file and the binary (the data dir stays unless --purge)",
		UsageText: "fjord uninstall [--purge] [--root DIR]",
		Flags: []cli.Flag{
			rootFlag(),
			&cli.BoolFlag{Name: "purge", Usage: "also remove the data dir (cluster state, images, volumes) and " + filepath.Dir(appliance.DefaultConfigFile)},
		},
		Action: runUninstall,
	}
}

// serverKeyFlags are `fjord server`'s configuration flags for install: only
// the command line counts (no FJORD_* environment), since what is given is
// what is written to the configuration file.
func serverKeyFlags() []cli.Flag {
	defaults := appliance.Default()
	var flags []cli.Flag
	for _, k := range defaults.KeyInfos() {
		if k.Bool {
			flags = append(flags, &cli.BoolFlag{Name: k.Name, Usage: usage[k.Name]})
			continue
		}
		flags = append(flags, &cli.StringFlag{Name: k.Name, Usage: usage[k.Name], Value: k.Default})
	}
	return flags
}

// givenServerFlags returns the server flags set on the command line.
func givenServerFlags(c *cli.Context) map[string]string {
	values := map[string]string{}
	defaults := appliance.Default()
	for _, k := range defaults.KeyInfos() {
		if !c.IsSet(k.Name) {
			continue
		}
		if k.Bool {
			values[k.Name] = strconv.FormatBool(c.Bool(k.Name))
		} else {
			values[k.Name] = c.String(k.Name)
		}
	}
	return values
}

// installRoot returns --root, cleaned, and whether it is this machine's own.
func installRoot(c *cli.Context) (string, bool, error) {
	root := c.String("root")
	if !filepath.IsAbs(root) {
		return "", false, fmt.Errorf("--root %q: must be an absolute path", root)
	}
	root = filepath.Clean(root)
	return root, root == "/", nil
}

func runInstall(c *cli.Context) error {
	root, host, err := installRoot(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	noStart := c.Bool("no-start")
	switch {
	case !host && !noStart:
		return cli.Exit("--root: fjord.service can only be started on this machine's own root; add --no-start", 2)
	case host && os.Geteuid() != 0:
		return cli.Exit("install must run as root; nothing was written", 1)
	case host && !noStart && !systemd.Booted():
		return cli.Exit("this machine does not run systemd (no /run/systemd/system), so fjord.service cannot be started; nothing was written\n"+
			"(to prepare a root filesystem, e.g. a VM image, use --no-start, with --root DIR when it is not this one)", 1)
	}
	cfg, content, err := installConfig(root, givenServerFlags(c))
	if err != nil {
		return cli.Exit(err.Error()+"\nnothing was written", 1)
	}
	self, err := os.Executable()
	if err != nil {
		return cli.Exit("locating the fjord binary: "+err.Error()+"; nothing was written", 1)
	}
	if !c.Bool("no-snapshot") {
		if err := snapshotBeforeUpgrade(c, root); err != nil {
			return cli.Exit(err.Error()+"\nnothing was written (--no-snapshot upgrades without one)", 1)
		}
	}
	done, err := systemd.Installation{
		Root: root, Binary: self, ConfigFile: appliance.DefaultConfigFile, Config: content, DataDir: cfg.DataDir,
	}.Write()
	for _, d := range done {
		fmt.Println(d)
	}
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if noStart {
		fmt.Println("not started (--no-start); it starts at the next boot, or with: systemctl start " + systemd.UnitName)
		return nil
	}
	if err := startService(c.Context, c.Duration("timeout")); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	fmt.Printf("fjord is ready: fjord kubectl get nodes, or KUBECONFIG=%s\n", adminKubeconfig(cfg.DataDir))
	return nil
}

// snapshotBeforeUpgrade takes a snapshot (trigger pre-upgrade) of an
// existing installation's cluster before anything is replaced, with the
// configuration it runs with now. A fresh machine, or one without a
// datastore yet, needs none; a datastore Fjord cannot snapshot is said.
func snapshotBeforeUpgrade(c *cli.Context, root string) error {
	if _, err := os.Stat(filepath.Join(root, systemd.BinaryPath)); err != nil {
		return nil // not installed yet
	}
	cfg, err := appliance.LoadConfig(filepath.Join(root, appliance.DefaultConfigFile), false, nil)
	if err != nil {
		return fmt.Errorf("reading the installed configuration for a snapshot before the upgrade: %w", err)
	}
	cfg.DataDir = filepath.Join(root, cfg.DataDir)
	if cfg.Snapshot.Dir != "" {
		cfg.Snapshot.Dir = filepath.Join(root, cfg.Snapshot.Dir)
	}
	present, err := datastore.Present(cfg.Datastore, cfg.DataDir)
	if err != nil {
		fmt.Println("no snapshot before the upgrade:", err)
		return nil
	}
	if len(present) == 0 {
		return nil
	}
	kind, _ := cfg.Datastore.Kind()
	if kind == datastore.KindEtcd && appliance.DataDirInUse(cfg.DataDir) == nil {
		fmt.Println("no snapshot before the upgrade: fjord.service is not running (an etcd snapshot is taken from the running server)")
		return nil
	}
	res, err := appliance.SaveSnapshot(c.Context, cfg, appliance.SnapshotOptions{
		Trigger: snapshot.TriggerPreUpgrade, Node: nodeName(cfg), FjordVersion: installedVersion(c.Context, root),
	})
	if err != nil {
		return fmt.Errorf("snapshot before the upgrade: %w", err)
	}
	fmt.Printf("snapshot before the upgrade: %s (%d bytes)\n", res.File, res.Size)
	return nil
}

// installedVersion asks the installed binary for its version, recorded in
// the pre-upgrade snapshot (the binary about to replace it is not the one
// that wrote the data).
func installedVersion(ctx context.Context, root string) string {
	if root != "/" {
		return Version
	}
	out, err := exec.CommandContext(ctx, systemd.BinaryPath, "version").Output()
	if err != nil {
		return Version
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if v, ok := strings.CutPrefix(first, "fjord "); ok {
		return strings.TrimSpace(v)
	}
	return Version
}

// installConfig returns the configuration the service will run with, and
// the content of the configuration file when server flags were given (nil
// keeps the file there is). Drop-ins in config.yaml.d apply over either, as
// they will at start. Every problem is reported before anything is written.
func installConfig(root string, values map[string]string) (appliance.Config, []byte, error) {
	file := filepath.Join(root, appliance.DefaultConfigFile)
	if len(values) == 0 {
		cfg, err := appliance.LoadConfig(file, false, nil)
		if err != nil {
			return cfg, nil, err
		}
		if err := cfg.Validate(); err != nil {
			return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
		return cfg, nil, nil
	}
	cfg := appliance.Default()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if err := cfg.Set(k, values[k]); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", k, err))
		}
	}
	files, err := appliance.ConfigFiles(file, false)
	if err != nil {
		return cfg, nil, err
	}
	for _, f := range files {
		if f == file {
			continue // replaced by the flags
		}
		if err := cfg.ApplyFile(f, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	content, err := bootstrap.ConfigFile(appliance.ConfigVersion,
		"Written by fjord install; keys are `fjord server` flags (fjord server --help).", values)
	return cfg, content, err
}

// startService makes systemd read the unit, enables it and starts it (or
// restarts it when it runs), then waits until it is ready, printing its
// status lines as they change.
func startService(ctx context.Context, timeout time.Duration) error {
	sc := systemd.Systemctl{}
	unit := systemd.UnitName
	if err := sc.Do(ctx, "daemon-reload"); err != nil {
		return err
	}
	if err := sc.Do(ctx, "enable", unit); err != nil {
		return err
	}
	before, err := sc.Show(ctx, unit)
	if err != nil {
		return err
	}
	// A unit that hit its start limit (or failed) may start again; nothing
	// to reset is not an error worth reporting.
	_ = sc.Do(ctx, "reset-failed", unit)
	verb, doing := "start", "starting"
	if before.Running() {
		verb, doing = "restart", "restarting"
	}
	fmt.Println(doing, unit)
	// --no-block: systemctl would otherwise wait for READY=1 silently;
	// WaitReady shows the status lines meanwhile.
	if err := sc.Do(ctx, verb, "--no-block", unit); err != nil {
		return err
	}
	return sc.WaitReady(ctx, os.Stdout, unit, before.InvocationID, timeout)
}

func runUninstall(c *cli.Context) error {
	root, host, err := installRoot(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	switch {
	case host && os.Geteuid() != 0:
		return cli.Exit("uninstall must run as root; nothing was removed", 1)
	case host && !systemd.Booted():
		return cli.Exit("this machine does not run systemd (no /run/systemd/system), so fjord.service cannot be stopped; nothing was removed\n"+
			"(to remove an installation from a root filesystem, use --root DIR)", 1)
	}
	cfg, err := appliance.LoadConfig(filepath.Join(root, appliance.DefaultConfigFile), false, nil)
	if err != nil {
		return cli.Exit(err.Error()+"\nthe data dir is not known: fix or remove the file first; nothing was removed", 1)
	}
	removal := systemd.Removal{
		Root: root, ConfigFile: appliance.DefaultConfigFile, DataDir: cfg.DataDir, Purge: c.Bool("purge"),
	}
	if err := removal.Check(); err != nil {
		return cli.Exit(err.Error()+"; nothing was removed", 1)
	}
	sc := systemd.Systemctl{}
	if host {
		if _, err := os.Stat(systemd.UnitPath); err == nil {
			fmt.Println("stopping and disabling", systemd.UnitName)
			if err := sc.Do(c.Context, "disable", "--now", systemd.UnitName); err != nil {
				return cli.Exit(err.Error()+"\nnothing was removed", 1)
			}
		}
		// KillMode=process leaves the pods running when the service stops;
		// with the server gone nothing would ever stop them.
		if _, err := os.Stat(cfg.DataDir); err == nil {
			fmt.Println("stopping every pod (fjord killall)")
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if err := node.Killall(cfg.DataDir, log); err != nil {
				return cli.Exit("fjord killall: "+err.Error()+"\nnothing was removed", 1)
			}
		}
	}
	done, err := removal.Remove()
	for _, d := range done {
		fmt.Println(d)
	}
	if host {
		_ = sc.Do(c.Context, "daemon-reload")
		_ = sc.Do(c.Context, "reset-failed", systemd.UnitName)
	}
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	return nil
}
