package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/fjord-dev/fjord/appliance/verify"
)

// localClusters returns the named local clusters of this user.
func localClusters() (*verify.Clusters, error) {
	dir, err := verify.DefaultStateDir()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the fjord executable: %w", err)
	}
	return &verify.Clusters{StateDir: dir, Self: self}, nil
}

func clusterName(c *cli.Context, usage string) (string, error) {
	switch c.NArg() {
	case 0:
		return "default", nil
	case 1:
		return c.Args().First(), nil
	}
	return "", cli.Exit("usage: "+usage, 2)
}

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "start a named local cluster in the background (control plane only, or with a node as root) and add context fjord-NAME to your kubeconfig",
		Description: "Its data and log are in $XDG_STATE_HOME/fjord/NAME (~/.local/state/fjord/NAME); the context goes where\n" +
			"kubectl config would write it (KUBECONFIG, else ~/.kube/config). No root needed without --with-node. `fjord down NAME` removes it all.",
		ArgsUsage: "[NAME]",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "wait", Value: 2 * time.Minute, Usage: "how long to wait for the cluster to be ready"},
			&cli.BoolFlag{Name: "with-node", Usage: "also run the node, so pods run (as root; one node per machine)"},
			&cli.StringSliceFlag{Name: "image-archive", Usage: "with --with-node: image archive `FILE` the node imports at start; more can be dropped in DATA/agent/images later (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			name, err := clusterName(c, "fjord up [NAME]")
			if err != nil {
				return err
			}
			clusters, err := localClusters()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			opts := verify.UpOptions{WithNode: c.Bool("with-node"), ImageArchives: c.StringSlice("image-archive")}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("wait"))
			defer cancel()
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			status := func(s string) {
				switch {
				case s == "starting":
					what := "control plane only"
					if opts.WithNode {
						what = "control plane and node"
					}
					fmt.Fprintf(os.Stderr, "Starting cluster %q (%s)…\n", name, what)
				case tty:
					fmt.Fprintf(os.Stderr, "\r\x1b[K  %s", s)
				}
			}
			res, err := clusters.Up(ctx, name, opts, status)
			if tty {
				fmt.Fprint(os.Stderr, "\r\x1b[K")
			}
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			ctxName := verify.ContextName(name)
			if res.AlreadyRunning {
				fmt.Printf("Cluster %q is already running at %s (pid %d); nothing to do. Context %q is in %s.\n",
					name, res.Cluster.Server, res.Cluster.PID, ctxName, res.Kubeconfig)
				return nil
			}
			fmt.Printf("Cluster %q is ready at %s after %.1fs (pid %d, state in %s).\n",
				name, res.Cluster.Server, res.Took.Seconds(), res.Cluster.PID, res.Cluster.Dir)
			fmt.Printf("Context %q set in %s. Try: kubectl --context %s get ns\n", ctxName, res.Kubeconfig, ctxName)
			return nil
		},
	}
}

func downCommand() *cli.Command {
	return &cli.Command{
		Name:      "down",
		Usage:     "stop a local cluster, remove its kubeconfig context and delete its data",
		ArgsUsage: "[NAME]",
		Action: func(c *cli.Context) error {
			name, err := clusterName(c, "fjord down [NAME]")
			if err != nil {
				return err
			}
			clusters, err := localClusters()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			existed, err := clusters.Down(name)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if !existed {
				fmt.Printf("No cluster %q; nothing to stop (context %q removed if it was there).\n", name, verify.ContextName(name))
				return nil
			}
			fmt.Printf("Cluster %q stopped and deleted; context %q removed.\n", name, verify.ContextName(name))
			return nil
		},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the local clusters of `fjord up`",
		Action: func(c *cli.Context) error {
			clusters, err := localClusters()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			list, err := clusters.List()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tAPI SERVER\tAGE")
			for _, cl := range list {
				st := "stopped"
				if cl.Running {
					st = "running"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cl.Name, st, cl.Server, duration.HumanDuration(time.Since(cl.Created)))
			}
			return tw.Flush()
		},
	}
}
