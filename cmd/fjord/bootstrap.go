package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fjord-dev/fjord/appliance"
	"github.com/fjord-dev/fjord/appliance/gitops/source"
	"github.com/fjord-dev/fjord/appliance/sealing"
	"github.com/fjord-dev/fjord/appliance/snapshot"
	"github.com/fjord-dev/fjord/bootstrap"
)

func bootstrapCommand() *cli.Command {
	return &cli.Command{
		Name:        "bootstrap",
		Usage:       "prepare a machine's first boot",
		Subcommands: []*cli.Command{bootstrapCloudInitCommand()},
	}
}

// repeated is a flag that may be given many times; unlike cli.StringSlice
// it does not split values at commas (list values in --config-set have them).
type repeated []string

func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }
func (r *repeated) String() string     { return strings.Join(*r, " ") }

func bootstrapCloudInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "cloud-init",
		Usage: "print a cloud-init user-data that turns a fresh VM into a cluster synced from Git",
		UsageText: "fjord bootstrap cloud-init --repo URL [--revision REV] [--path PATH]\n" +
			"   [--ssh-key FILE --known-hosts FILE | --https-token-file FILE [--https-username NAME]]\n" +
			"   [--sealing-keys FILE] [--restore-snapshot FILE] [--app-name NAME] [--namespace NS] [--image-archive FILE…] [--config-set KEY=VALUE…] > user-data.yaml",
		Description: "The VM image must have fjord at " + bootstrap.InstalledBinary + " (and systemd, cloud-init). The user-data writes " +
			appliance.DefaultConfigFile + ", the Application and its repository's credentials (Argo CD's format) into " +
			bootstrap.DefaultApplicationsDir + ", the sealing keys and the image archives, then runs `fjord install`. " +
			"It holds those credentials and keys: keep it as secret as they are.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the Git repository's `URL` (git@host:org/repo.git, ssh://…, https://…)"},
			&cli.StringFlag{Name: "revision", Value: "HEAD", Usage: "branch, tag or commit to sync (the Application's targetRevision)"},
			&cli.StringFlag{Name: "path", Value: ".", Usage: "directory in the repository (a kustomization or plain manifests)"},
			&cli.StringFlag{Name: "ssh-key", Usage: "unencrypted ssh private key `FILE` to fetch with (a deploy key)"},
			&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` with the Git host's keys (ssh-keyscan HOST > FILE); required with --ssh-key"},
			&cli.StringFlag{Name: "https-token-file", Usage: "`FILE` holding an access token for an https repository"},
			&cli.StringFlag{Name: "https-username", Value: "git", Usage: "user name sent with the token (GitHub and GitLab take any; Bitbucket wants x-token-auth)"},
			&cli.StringFlag{Name: "sealing-keys", Usage: "sealing key backup `FILE` (fjord sealing-keys export) so the VM decrypts the repository's SealedSecrets"},
			&cli.StringFlag{Name: "app-name", Usage: "the Application's `NAME` (default: the repository's name)"},
			&cli.StringFlag{Name: "namespace", Value: "default", Usage: "the Application's destination namespace (created when missing)"},
			&cli.GenericFlag{Name: "image-archive", Value: &repeated{}, Usage: "image archive `FILE` for the node (fjord images build, docker save); repeat for more"},
			&cli.StringFlag{Name: "restore-snapshot", Usage: "snapshot `FILE` (fjord snapshot save) the VM's first start restores: a replacement VM boots into the old state"},
			&cli.GenericFlag{Name: "config-set", Value: &repeated{}, Usage: "`KEY=VALUE` for " + appliance.DefaultConfigFile + " (keys are fjord server's flags); repeat for more"},
		},
		Action: runBootstrapCloudInit,
	}
}

// runBootstrapCloudInit checks every input, and prints the user-data only
// when all of them are good: a redirect to a file never gets half of one.
func runBootstrapCloudInit(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("unexpected argument %q (flags only; see --help)", c.Args().First()), 2)
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	repo := strings.TrimSpace(c.String("repo"))
	if repo == "" {
		return cli.Exit("--repo: the Git repository's URL is required", 2)
	}
	if _, err := source.NormalizeURL(repo); err != nil {
		fail(fmt.Errorf("--repo: %w", err))
	}

	// The configuration: defaults, then --config-set, checked as the server will.
	cfg := appliance.Default()
	values := map[string]string{}
	for _, kv := range *c.Generic("config-set").(*repeated) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fail(fmt.Errorf("--config-set %q: want KEY=VALUE", kv))
			continue
		}
		if err := cfg.Set(k, v); err != nil {
			fail(fmt.Errorf("--config-set %s: %w", kv, err))
			continue
		}
		values[k] = v
	}
	if cfg.GitOps.ApplicationsDir == "" {
		cfg.GitOps.ApplicationsDir = bootstrap.DefaultApplicationsDir
	}
	ci := bootstrap.CloudInit{
		RepoURL:         repo,
		Revision:        c.String("revision"),
		Path:            c.String("path"),
		AppName:         c.String("app-name"),
		Namespace:       c.String("namespace"),
		GitOpsNamespace: cfg.GitOps.Namespace,
		HTTPSUsername:   c.String("https-username"),
		ConfigVersion:   appliance.ConfigVersion,
		Config:          values,
		ConfigFile:      appliance.DefaultConfigFile,
		DataDir:         cfg.DataDir,
		ApplicationsDir: cfg.GitOps.ApplicationsDir,
	}
	if ci.AppName == "" {
		ci.AppName = bootstrap.DefaultAppName(repo)
	}
	var err error
	if f := c.String("ssh-key"); f != "" {
		ci.SSHPrivateKey, err = bootstrap.ReadSSHPrivateKey(f)
		fail(err)
	}
	if f := c.String("known-hosts"); f != "" {
		ci.KnownHosts, err = bootstrap.ReadKnownHosts(f)
		fail(err)
	}
	if f := c.String("https-token-file"); f != "" {
		ci.HTTPSToken, err = bootstrap.ReadToken(f)
		fail(err)
	}
	if f := c.String("sealing-keys"); f != "" {
		if cfg.Sealing.ImportKeys == "" {
			cfg.Sealing.ImportKeys = bootstrap.DefaultSealingKeysFile
		}
		ci.SealingKeysFile = cfg.Sealing.ImportKeys
		if _, err := sealing.ReadKeyFile(f); err != nil {
			fail(fmt.Errorf("--sealing-keys: %w", err))
		} else if ci.SealingKeys, err = os.ReadFile(f); err != nil {
			fail(fmt.Errorf("--sealing-keys: %w", err))
		}
	} else {
		ci.SealingKeysFile = bootstrap.DefaultSealingKeysFile // unused
	}
	if f := c.String("restore-snapshot"); f != "" {
		if cfg.Snapshot.RestoreFrom == "" {
			cfg.Snapshot.RestoreFrom = bootstrap.DefaultRestoreSnapshotFile
		}
		ci.SnapshotFile = cfg.Snapshot.RestoreFrom
		m, err := snapshot.Verify(f)
		switch {
		case err != nil:
			fail(fmt.Errorf("--restore-snapshot: %w", err))
		default:
			if err := m.CheckCompatible(appliance.BuildInfo(Version)); err != nil {
				fail(fmt.Errorf("--restore-snapshot %s: %w", f, err))
			} else if kind, _ := cfg.Datastore.Kind(); string(kind) != m.Datastore {
				fail(fmt.Errorf("--restore-snapshot %s: a snapshot of the %s datastore, and the VM is configured for %s (--config-set datastore-endpoint=…)", f, m.Datastore, kind))
			} else if ci.Snapshot, err = os.ReadFile(f); err != nil {
				fail(fmt.Errorf("--restore-snapshot: %w", err))
			}
		}
	}
	for _, f := range *c.Generic("image-archive").(*repeated) {
		data, err := readImageArchive(f)
		if err != nil {
			fail(err)
			continue
		}
		ci.Images = append(ci.Images, bootstrap.ImageArchive{Name: filepath.Base(f), Data: data})
	}
	fail(cfg.Validate())
	if len(errs) == 0 {
		fail(ci.Validate())
	}
	if len(errs) > 0 {
		return cli.Exit("nothing was rendered:\n"+errors.Join(errs...).Error(), 1)
	}
	out, err := ci.Render()
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	_, err = os.Stdout.Write(out)
	return err
}

// readImageArchive reads an archive the node can import: a tar (OCI layout
// or docker save), maybe gzipped.
func readImageArchive(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--image-archive: %w", err)
	}
	gz := bytes.HasPrefix(data, []byte{0x1f, 0x8b})
	tar := len(data) > 262 && bytes.Equal(data[257:262], []byte("ustar"))
	if !gz && !tar {
		return nil, fmt.Errorf("--image-archive %s: not a tar or tar.gz image archive (fjord images build, docker save)", file)
	}
	return data, nil
}
