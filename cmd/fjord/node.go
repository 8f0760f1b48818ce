package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/node"
	"github.com/fjord-dev/fjord/images"
)

func imagesCommand() *cli.Command {
	dataDir := &cli.StringFlag{Name: "data-dir", EnvVars: []string{appliance.EnvName("data-dir")}, Value: appliance.Default().DataDir, Usage: "the server's data dir"}
	return &cli.Command{
		Name:  "images",
		Usage: "images the node runs (no registry: they come from archives)",
		Subcommands: []*cli.Command{
			imagesBuildCommand(),
			{
				Name:      "import",
				Usage:     "import image archives (OCI layout or docker save tars, .gz too) into the running node",
				ArgsUsage: "FILE…",
				Flags:     []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return cli.Exit("images import: name at least one archive", 2)
					}
					im, err := node.DialImporter(c.Context, c.String("data-dir"), slog.New(slog.NewTextHandler(io.Discard, nil)))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					defer im.Close()
					failed := 0
					for i, f := range c.Args().Slice() {
						fmt.Fprintf(os.Stderr, "[%d/%d] importing %s…\n", i+1, c.NArg(), f)
						t0 := time.Now()
						refs, err := im.ImportFile(c.Context, f)
						if err != nil {
							failed++
							fmt.Fprintf(os.Stderr, "[%d/%d] %v\n", i+1, c.NArg(), err)
							continue
						}
						fmt.Printf("%s: %s (%s)\n", f, strings.Join(refs, ", "), time.Since(t0).Round(time.Millisecond))
					}
					if failed > 0 {
						return cli.Exit(fmt.Sprintf("%d of %d archives not imported", failed, c.NArg()), 1)
					}
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list the images the kubelet can run",
				Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					im, err := node.DialImporter(c.Context, c.String("data-dir"), slog.New(slog.NewTextHandler(io.Discard, nil)))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					defer im.Close()
					imgs, err := im.List(c.Context)
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE")
					for _, img := range imgs {
						if strings.HasPrefix(img.Name, "sha256:") {
							continue // the digest aliases CRI keeps
						}
						fmt.Fprintf(w, "%s\t%s\t%.1f MB\n", img.Name, img.Digest, float64(img.Size)/1e6)
					}
					return w.Flush()
				},
			},
		},
	}
}

func killallCommand() *cli.Command {
	return &cli.Command{
		Name:  "killall",
		Usage: "stop every pod and the runtime and remove the node's interfaces, iptables rules and mounts (stop fjord server first)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{appliance.EnvName("data-dir")}, Value: appliance.Default().DataDir, Usage: "the server's data dir"},
		},
		Action: func(c *cli.Context) error {
			if os.Geteuid() != 0 {
				return cli.Exit("killall must run as root", 1)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if err := node.Killall(c.String("data-dir"), log); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			return nil
		},
	}
}

func imagesBuildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "turn a root filesystem (or a static busybox) into an OCI image archive, for hosts without a registry",
		ArgsUsage: "[CMD ARG…]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem `DIR` of the image"},
			&cli.StringFlag{Name: "busybox", Usage: "build a busybox image around this static busybox `BINARY` instead of --rootfs"},
			&cli.StringFlag{Name: "name", Required: true, Usage: "image `REFERENCE` (short names are normalised: busybox:1.35 → docker.io/library/busybox:1.35)"},
			&cli.StringSliceFlag{Name: "entrypoint", Usage: "entrypoint `ARG` (repeat for more)"},
			&cli.StringSliceFlag{Name: "env", Usage: "`KEY=value` of the image's environment (repeat for more)"},
			&cli.StringFlag{Name: "workdir", Usage: "working `DIR` of the image's process"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "archive `FILE` to write (import it with fjord images import, or drop it in <data-dir>/agent/images)"},
		},
		Action: func(c *cli.Context) error {
			rootfs, bb := c.String("rootfs"), c.String("busybox")
			if (rootfs == "") == (bb == "") {
				return cli.Exit("images build: give exactly one of --rootfs and --busybox", 2)
			}
			spec := images.Spec{Name: c.String("name"), Entrypoint: c.StringSlice("entrypoint"), Env: c.StringSlice("env"),
				WorkingDir: c.String("workdir"), Cmd: c.Args().Slice()}
			if bb != "" {
				tmp, err := os.MkdirTemp("", "fjord-busybox-")
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				defer os.RemoveAll(tmp)
				rootfs = filepath.Join(tmp, "rootfs")
				if err := images.BusyboxRootfs(c.Context, bb, rootfs); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				if len(spec.Cmd) == 0 && len(spec.Entrypoint) == 0 {
					spec.Cmd, spec.Env = images.BusyboxSpec.Cmd, append(images.BusyboxSpec.Env, spec.Env...)
				}
			}
			img, err := images.Build(c.Context, rootfs, c.String("output"), spec)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Printf("%s: %s %s %s\n", c.String("output"), img.Name, img.Platform, img.Digest)
			return nil
		},
	}
}
