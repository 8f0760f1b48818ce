package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/snapshot"
)

func snapshotCommand() *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "snapshot `DIR` (default: snapshot.dir, <data-dir>/snapshots)"}
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save, list and restore snapshots of the cluster (datastore, encryption key, CAs)",
		Description: "A snapshot file holds the datastore and the keys to every Secret (the encryption-at-rest key, the CAs, " +
			"the service-account key): it is written 0600; keep it as secret as those keys. The commands take fjord server's " +
			"flags and configuration file, to find the data dir and the datastore.",
		Subcommands: []*cli.Command{
			{
				Name:      "save",
				Usage:     "take a snapshot of the running server",
				UsageText: "fjord snapshot save [--dir DIR] [--name NAME] [server flags…]",
				Flags:     append([]cli.Flag{dirFlag, &cli.StringFlag{Name: "name", Usage: "file `NAME` (default fjord-<node>-<time>)"}}, configFlags()...),
				Action:    runSnapshotSave,
			},
			{
				Name:      "ls",
				Aliases:   []string{"list"},
				Usage:     "list the snapshots in the snapshot dir, oldest first",
				UsageText: "fjord snapshot ls [--dir DIR] [server flags…]",
				Flags:     append([]cli.Flag{dirFlag}, configFlags()...),
				Action:    runSnapshotList,
			},
			{
				Name:      "restore",
				Usage:     "restore a snapshot into the data dir (with the server stopped)",
				UsageText: "fjord snapshot restore FILE [--force] [--data-dir DIR] [server flags…]",
				Flags: append([]cli.Flag{&cli.BoolFlag{Name: "force",
					Usage: "restore over a data dir that holds a datastore; what it held is moved to <data-dir>/before-restore-<time>, not deleted"}},
					configFlags()...),
				Action: runSnapshotRestore,
			},
		},
	}
}

func nodeName(cfg appliance.Config) string {
	if cfg.NodeName != "" {
		return cfg.NodeName
	}
	h, _ := os.Hostname()
	return h
}

func runSnapshotSave(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("unexpected argument %q (see --help)", c.Args().First()), 2)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if err := cfg.Validate(); err != nil {
		return cli.Exit("invalid configuration:\n"+err.Error(), 1)
	}
	res, err := appliance.SaveSnapshot(c.Context, cfg, appliance.SnapshotOptions{
		Dir: c.String("dir"), Name: c.String("name"), Trigger: snapshot.TriggerManual, Node: nodeName(cfg), FjordVersion: Version,
	})
	if err != nil {
		return cli.Exit("snapshot not taken: "+err.Error(), 1)
	}
	fmt.Printf("snapshot %s: %s datastore, %d bytes (%d uncompressed), %s\n", res.File, res.Manifest.Datastore, res.Size,
		res.Manifest.Size(), res.Took.Round(time.Millisecond))
	fmt.Println("it holds the keys to every Secret: keep it as secret as they are (mode 0600)")
	return nil
}

func runSnapshotList(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	dir := c.String("dir")
	if dir == "" {
		dir = cfg.Snapshot.DirFor(cfg.DataDir)
	}
	entries, err := snapshot.List(dir)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED\tDATASTORE\tTRIGGER\tSIZE\tFJORD\tFILE")
	for _, e := range entries {
		if e.Err != nil {
			fmt.Fprintf(tw, "?\t%s\t?\t?\t%d\t?\t%s (unreadable: %v)\n", e.Created().UTC().Format(time.RFC3339), e.Size, e.Path, e.Err)
			continue
		}
		m := e.Manifest
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, m.Created.UTC().Format(time.RFC3339), m.Datastore, m.Trigger, e.Size, m.FjordVersion, e.Path)
	}
	return tw.Flush()
}

func runSnapshotRestore(c *cli.Context) error {
	if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
		// urfave/cli stops parsing flags at FILE; `restore FILE --force`
		// is how the command reads best, so the flags after it are moved
		// before it and the command is run again.
		args := append([]string{c.App.Name, "snapshot", "restore"}, c.Args().Tail()...)
		return c.App.RunContext(c.Context, append(args, c.Args().First()))
	}
	if c.NArg() != 1 {
		return cli.Exit("want one snapshot FILE (see --help)", 2)
	}
	file := c.Args().First()
	cfg, err := loadConfig(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if err := cfg.Validate(); err != nil {
		return cli.Exit("invalid configuration:\n"+err.Error(), 1)
	}
	res, err := appliance.RestoreSnapshot(c.Context, cfg, file, appliance.RestoreOptions{
		Force: c.Bool("force"), Build: appliance.BuildInfo(Version),
	})
	if err != nil {
		var inUse *appliance.InUseError
		if errors.As(err, &inUse) {
			return cli.Exit("restore refused: "+err.Error()+"; nothing was written", 1)
		}
		if res.Aside == "" {
			return cli.Exit("restore refused: "+err.Error()+"\nnothing was written", 1)
		}
		return cli.Exit("restore failed: "+err.Error(), 1)
	}
	m := res.Manifest
	fmt.Printf("restored %s (%s, taken %s by fjord %s, %s datastore) into %s\n", file, m.Name, m.Created.UTC().Format(time.RFC3339),
		m.FjordVersion, m.Datastore, cfg.DataDir)
	if res.Aside != "" {
		fmt.Println("what the data dir held is in", res.Aside)
	}
	fmt.Println("start fjord server: it comes up with the snapshot's objects, Secrets and sealing keys, and GitOps resyncs")
	return nil
}
