package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/gitops"
)

// clientFlags locate a running server: its config (for data-dir and
// gitops.namespace) or an explicit kubeconfig.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: appliance.DefaultConfigFile, EnvVars: []string{"FJORD_CONFIG"}, Usage: "configuration file"},
		&cli.StringFlag{Name: "data-dir", EnvVars: []string{appliance.EnvName("data-dir")}, Value: appliance.Default().DataDir, Usage: "the server's data dir (its kubeconfig.yaml is used)"},
		&cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "kubeconfig to use instead of the data dir's"},
	}
}

// serverKubeconfig returns the server's configuration and the kubeconfig
// to reach it: --kubeconfig, or the admin kubeconfig in its data dir.
func serverKubeconfig(c *cli.Context) (appliance.Config, string, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return cfg, "", err
	}
	kubeconfig := c.String("kubeconfig")
	if kubeconfig == "" {
		kubeconfig = adminKubeconfig(cfg.DataDir)
	}
	return cfg, kubeconfig, nil
}

func gitopsClient(c *cli.Context) (*gitops.Client, error) {
	cfg, kubeconfig, err := serverKubeconfig(c)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return gitops.NewClient(cfg.GitOps, gitops.Runtime{DataDir: cfg.DataDir, Kubeconfig: kubeconfig, Log: log})
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show every Application: revision, sync, health, last sync, message",
		Flags: append(clientFlags(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}),
		Action: func(c *cli.Context) error {
			client, err := gitopsClient(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			apps, err := client.Status(c.Context)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if c.String("output") == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(apps)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tREVISION\tSYNC\tHEALTH\tLAST SYNC\tMESSAGE")
			for _, a := range apps {
				rev := a.Revision
				if len(rev) > 10 {
					rev = rev[:10]
				}
				last := "-"
				if !a.LastSync.IsZero() {
					last = time.Since(a.LastSync).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, rev, a.Sync, a.Health, last, oneLine(a.Message, 100))
			}
			return tw.Flush()
		},
	}
}

func oneLine(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "sync an Application now (also one without an automated policy) and print the result",
		ArgsUsage: "APP",
		Flags:     append(clientFlags(), &cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long to wait for the result"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("usage: fjord sync APP", 2)
			}
			client, err := gitopsClient(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			st, err := client.Sync(ctx, c.Args().First())
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Printf("%s: %s at %s, %s, %s: %s\n", st.Name, st.Phase, st.Revision, st.Sync, st.Health, st.Message)
			if st.Phase != "Succeeded" {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what a sync of an Application would change (exit 1 when something would)",
		ArgsUsage: "APP",
		Flags:     clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("usage: fjord diff APP", 2)
			}
			client, err := gitopsClient(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			changed, err := client.Diff(c.Context, c.Args().First(), os.Stdout)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if changed {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
