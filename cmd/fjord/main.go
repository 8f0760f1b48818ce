// Command fjord is a single-node Kubernetes cluster with GitOps built in.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/urfave/cli/v2"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/systemd"
)

// Version is Fjord's version, set at link time.
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, interspersed(app, os.Args)); err != nil {
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			if msg := exit.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "fjord:", msg)
			}
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "fjord:", err)
		os.Exit(1)
	}
}

// newApp returns the command line: every command, none of them run yet.
func newApp() *cli.App {
	return &cli.App{
		Name:  "fjord",
		Usage: "a single-node Kubernetes cluster whose state is what is in Git",
		Commands: []*cli.Command{
			serverCommand(),
			kubeconfigCommand(),
			kubectlCommand(),
			statusCommand(),
			syncCommand(),
			diffCommand(),
			certCommand(),
			sealCommand(),
			sealingKeysCommand(),
			preflightCommand(),
			imagesCommand(),
			killallCommand(),
			installCommand(),
			uninstallCommand(),
			bootstrapCommand(),
			snapshotCommand(),
			verifyCommand(),
			upCommand(),
			downCommand(),
			listCommand(),
			versionCommand(),
		},
		HideHelpCommand: true,
	}
}

// usage explains the server's configuration keys; every key is also a flag
// and an environment variable (FJORD_<KEY>).
var usage = map[string]string{
	"data-dir":                     "directory for the datastore, PKI, kubeconfigs and caches",
	"https-listen-port":            "kube-apiserver's HTTPS port",
	"bind-address":                 "address kube-apiserver listens on",
	"node-ip":                      "address kube-apiserver advertises (detected when empty)",
	"node-name":                    "this node's name (the hostname when empty)",
	"disable-agent":                "run the control plane only, without the node agent",
	"log-format":                   "log format: text or json (text goes to the systemd journal with a field per attribute when run by systemd)",
	"log-level":                    "log level: debug, info, warn or error",
	"component-ready-timeout":      "longest wait for each component (etcd, API server, node...) to become ready at start before giving up",
	"disable-memory-trim":          "keep what fjord server holds after a spell of work instead of handing free heap pages and its binary's pages back once quiet (lower latency for the next operation, more memory)",
	"debug-listen":                 "address (host:port, loopback) of a net/http/pprof listener for profiling; empty: off",
	"datastore-endpoint":           "empty for embedded etcd, or sqlite://PATH, postgres://…, mysql://…, https://ETCD[,…]",
	"datastore-cafile":             "CA certificate for the datastore's TLS",
	"datastore-certfile":           "client certificate for the datastore",
	"datastore-keyfile":            "client key for the datastore",
	"etcd-client-port":             "embedded etcd's client port (loopback only)",
	"etcd-peer-port":               "embedded etcd's peer port (loopback only)",
	"fsync-gate":                   "fsync gate before the datastore starts: enforce, warn (unsafe: runs on a disk too slow for etcd) or off",
	"fsync-p99-max":                "largest acceptable p99 fdatasync latency of the datastore's disk",
	"fsync-gate-cache-ttl":         "reuse a passed fsync measurement this long (same device, filesystem and boot; 0 never)",
	"fsync-gate-rerun":             "measure again even when a passed measurement is cached",
	"fsync-gate-size":              "bytes the fsync measurement writes at most (fio's --size)",
	"fsync-gate-block-size":        "bytes per write of the fsync measurement (fio's --bs)",
	"fsync-gate-max-duration":      "time cap of the fsync measurement",
	"fsync-gate-full-run":          "write all of fsync-gate-size even when the verdict is clear earlier",
	"service-cidr":                 "range of Service ClusterIPs",
	"cluster-cidr":                 "range of pod CIDRs",
	"cluster-domain":               "DNS domain of Services",
	"kube-controller-manager-port": "kube-controller-manager's loopback HTTPS port (0: off)",
	"kube-scheduler-port":          "kube-scheduler's loopback HTTPS port (0: off)",
	"gitops.disable":               "turn the GitOps engine off",
	"gitops.poll-interval":         "how often each Application's remote is checked for a new revision",
	"gitops.namespace":             "namespace of Applications and repository Secrets",
	"gitops.applications-dir":      "directory of Application manifests applied at start",
	"gitops.wave-timeout":          "how long a sync waits for a sync wave to become healthy",
	"gitops.prune-protect-ratio":   "refuse to prune more than this fraction of an Application's objects at once",
	"gitops.webhook-listen":        "address (host:port) of the push webhook, POST /api/webhook (GitHub, GitLab); empty: off",
	"gitops.webhook-secret":        "shared secret of the webhook (GitHub's HMAC secret, GitLab's token)",
	"sealing.disable":              "turn the sealed-secrets controller off",
	"sealing.key-rotation-period":  "make a new sealing key this often; old keys still decrypt (0: never)",
	"sealing.key-bits":             "RSA size of new sealing keys",
	"sealing.key-ttl":              "validity of a new sealing key's certificate",
	"sealing.import-keys":          "key backup (fjord sealing-keys export, or upstream's key Secrets) imported at start",
	"sealing.port":                 "port of the sealed-secrets HTTP API (cert.pem, verify, rotate) on the node IP, for kubeseal via the API server",
	"sealing.accept-v1-data":       "accept SealedSecrets in the deprecated spec.data form",
	"container-runtime-endpoint":   "CRI socket of your own container runtime (unix:///path); empty runs the built-in containerd",
	"cni-bin-dir":                  "directory of the CNI plugins bridge, host-local and portmap",
	"runc":                         "OCI runtime binary the built-in containerd runs containers with",
	"kubelet-port":                 "kubelet's HTTPS port on the node IP (logs, exec, port-forward, metrics)",
	"kubelet-healthz-port":         "kubelet's loopback health port (0: off)",
	"kube-proxy-healthz-port":      "kube-proxy's loopback health port (0: off)",
	"kube-proxy-metrics-port":      "kube-proxy's loopback metrics port (0: off)",
	"max-pods":                     "most pods the node runs",
	"cluster-dns":                  "ClusterIP of the kube-dns Service pods resolve names with (in service-cidr)",
	"cluster-dns-port":             "port CoreDNS (in-process) listens on at the node IP; the Service's port 53 maps to it",
	"disable-dns":                  "turn the in-process cluster DNS off",
	"local-storage-path":           "directory of the local-path StorageClass's volumes (default <data-dir>/storage)",
	"disable-local-storage":        "turn the local-path StorageClass and its provisioner off",
	"disable-metrics-server":       "turn the built-in metrics-server (kubectl top) off",
	"metrics-server-port":          "port of metrics.k8s.io on the node IP, for the API server's aggregation layer",
	"snapshot.schedule":            "when to take snapshots, cron syntax (\"0 */12 * * *\", \"@every 6h\"); empty: never",
	"snapshot.retention":           "scheduled snapshots kept; the oldest are removed first",
	"snapshot.dir":                 "directory of snapshots (default <data-dir>/snapshots)",
	"snapshot.restore-from":        "snapshot file restored at the first start, when the data dir holds no datastore (a replacement VM)",
}

// configFlags returns --config and one flag per configuration key, bound to
// nothing: values reach the Config through loadConfig, in order of precedence.
func configFlags() []cli.Flag {
	defaults := appliance.Default()
	flags := []cli.Flag{&cli.StringFlag{
		Name:    "config",
		Aliases: []string{"c"},
		Value:   appliance.DefaultConfigFile,
		Usage:   "configuration file; drop-ins in `FILE`.d/*.yaml apply after it, alphabetically",
		EnvVars: []string{"FJORD_CONFIG"},
	}}
	for _, k := range defaults.KeyInfos() {
		env := []string{appliance.EnvName(k.Name)}
		if k.Bool {
			flags = append(flags, &cli.BoolFlag{Name: k.Name, Usage: usage[k.Name], EnvVars: env})
			continue
		}
		flags = append(flags, &cli.StringFlag{Name: k.Name, Usage: usage[k.Name], Value: k.Default, EnvVars: env})
	}
	return flags
}

// loadConfig merges defaults, the configuration file and its drop-ins, the
// environment and the flags, in that order of precedence (lowest first).
func loadConfig(c *cli.Context) (appliance.Config, error) {
	bools := map[string]bool{}
	defaults := appliance.Default()
	for _, k := range defaults.KeyInfos() {
		bools[k.Name] = k.Bool
	}
	lookup := func(key string) (string, bool) {
		if !c.IsSet(key) {
			return "", false
		}
		if bools[key] {
			return strconv.FormatBool(c.Bool(key)), true
		}
		return c.String(key), true
	}
	return appliance.LoadConfig(c.String("config"), c.IsSet("config"), lookup)
}

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run the cluster (what the systemd unit runs)",
		Flags: configFlags(),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := cfg.Validate(); err != nil {
				return cli.Exit("invalid configuration:\n"+err.Error(), 1)
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			// The control plane's heap is mostly long-lived caches; collecting
			// at 25 % growth keeps ~40 MiB less resident than at 50 % (and 50 %
			// ~20 MiB less than 100 %) on an idle node with 20 pods; fjord's
			// CPU per 30 pods started stayed within the bench's noise
			// (docs/benchmarks.md, session 7). GOGC in the environment still wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(25)
			}
			notify := systemd.NewNotifier(log)
			hooks := appliance.Hooks{Status: notify.Status, Serving: func(alive func() bool) {
				// Pinged from here on: READY=1 waits for the node and the
				// first syncs, and a server that hangs meanwhile is as dead.
				go notify.Watchdog(c.Context, alive)
			}, Ready: notify.Ready, ExtendStart: notify.ExtendTimeout, Version: Version, Snapshot: func(line string, failing bool) {
				notify.Application(snapshotStatusKey, line, failing)
			}, Sync: func(s gitops.SyncSummary) {
				line := s.String()
				if s.Deleted {
					line = ""
				}
				notify.Application(s.Application, line, s.Failing())
			}}
			err = appliance.Run(c.Context, cfg, log, hooks)
			notify.Stopping()
			if err != nil {
				// systemctl status keeps the last status after the exit.
				notify.Status("failed: " + err.Error())
				log.Error("fjord server failed", "err", err)
				return cli.Exit(err.Error(), 1)
			}
			return nil
		},
	}
}

// snapshotStatusKey keeps the scheduled snapshots' line among the
// Applications' in the status; no Application can be named so.
const snapshotStatusKey = "fjord/snapshot"

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	case "text", "":
		h = slog.NewTextHandler(os.Stderr, opts)
		if systemd.StderrIsJournal() {
			// Under systemd: the same lines, plus a field per attribute
			// (journalctl -u fjord APPLICATION=NAME).
			h = systemd.NewJournalHandler(opts)
		}
	default:
		return nil, fmt.Errorf("log-format: %q is not one of text, json", format)
	}
	log := slog.New(h)
	// The embedded Kubernetes components log through klog; route it into the
	// same handler once. Their info lines are many, so they show from warn
	// up unless the level is debug.
	kubeLevel := max(lvl, slog.LevelWarn)
	if lvl <= slog.LevelDebug {
		kubeLevel = lvl
	}
	klog.SetSlogLogger(slog.New(levelFloor{Handler: h, min: kubeLevel}).With("component", "kubernetes"))
	ctrllog.SetLogger(logr.FromSlogHandler(levelFloor{Handler: h, min: kubeLevel}.WithAttrs([]slog.Attr{slog.String("component", "controller-runtime")})))
	return log, nil
}

// levelFloor drops records below min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.min && l.Handler.Enabled(ctx, level)
}

func (l levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{Handler: l.Handler.WithAttrs(attrs), min: l.min}
}

func (l levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: l.Handler.WithGroup(name), min: l.min}
}

func kubeconfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "kubeconfig",
		Usage: "print the admin kubeconfig",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: appliance.DefaultConfigFile, EnvVars: []string{"FJORD_CONFIG"}, Usage: "configuration file"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{appliance.EnvName("data-dir")}, Value: appliance.Default().DataDir, Usage: "the server's data dir"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			data, err := os.ReadFile(adminKubeconfig(cfg.DataDir))
			if err != nil {
				return cli.Exit(fmt.Sprintf("reading the admin kubeconfig: %v (has `fjord server` run with --data-dir %s?)", err, cfg.DataDir), 1)
			}
			_, err = os.Stdout.Write(data)
			return err
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the versions of Fjord and what it embeds",
		Action: func(c *cli.Context) error {
			fmt.Printf("fjord %s\nkubernetes %s\n%s %s/%s\n", Version, version.Get().GitVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
