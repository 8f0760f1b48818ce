package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fjord-dev/fjord/appliance/verify"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "sync a repository's working tree into a throwaway control plane and report every object (exit 1 when one fails)",
		Description: "DIR (default .) is the repository or a directory inside it; the repository root is the top of its Git\n" +
			"work tree. Files are read from disk, uncommitted changes included. Without --path or --app, DIR itself\n" +
			"is rendered. Phases go to stderr, the table (or JSON) to stdout.",
		ArgsUsage: "[DIR]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "path", Usage: "path to render, relative to the repository root (as an Application's source.path)"},
			&cli.StringSliceFlag{Name: "app", Usage: "file of Argo CD Applications to verify, each with its own path and options, its repoURL read as the repository root (repeatable)"},
			&cli.StringFlag{Name: "sealing-keys", Usage: "key backup (fjord sealing-keys export) every SealedSecret must unseal with; without it unsealing is skipped"},
			&cli.BoolFlag{Name: "with-node", Usage: "also run the node, so workloads must turn Healthy with their pods Running (as root; one node per machine)"},
			&cli.StringSliceFlag{Name: "image-archive", Usage: "with --with-node: image archive `FILE` (docker save or OCI) the node imports at start; no registry is pulled from (repeatable)"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "bound on dry run, apply and health (the throwaway server's start has its own, 3m)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
			&cli.StringFlag{Name: "junit", Usage: "also write a JUnit XML report to `FILE`, one test case per object"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cli.Exit("usage: fjord verify [DIR] [--path P | --app FILE…]", 2)
			}
			output := c.String("output")
			if output != "text" && output != "json" {
				return cli.Exit(fmt.Sprintf("--output: %q is not one of text, json", output), 2)
			}
			self, err := os.Executable()
			if err != nil {
				return cli.Exit(fmt.Sprintf("locating the fjord executable: %v", err), 1)
			}
			dir := "."
			if c.NArg() == 1 {
				dir = c.Args().First()
			}
			// client-go and controller-runtime would log to stderr on their
			// own (throttling, a missing logger); the report says what matters.
			klog.SetLogger(logr.Discard())
			ctrllog.SetLogger(logr.Discard())
			progress := verify.NewProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
			report, err := verify.Run(c.Context, verify.Options{
				Dir: dir, Path: c.String("path"), AppFiles: c.StringSlice("app"), SealingKeys: c.String("sealing-keys"),
				Timeout: c.Duration("timeout"), Self: self, Progress: progress,
				WithNode: c.Bool("with-node"), ImageArchives: c.StringSlice("image-archive"),
			})
			progress.Close()
			var usage *verify.UsageError
			if errors.As(err, &usage) {
				return cli.Exit(err.Error(), 2)
			}
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if output == "json" {
				err = report.WriteJSON(os.Stdout)
			} else {
				err = report.WriteText(os.Stdout)
			}
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if f := c.String("junit"); f != "" {
				if err := report.WriteJUnit(f); err != nil {
					return cli.Exit(err.Error(), 1)
				}
			}
			if !report.Passed {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
