package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	kubecli "k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"

	"github.com/fjord-dev/fjord/appliance"
)

func adminKubeconfig(dataDir string) string { return filepath.Join(dataDir, "kubeconfig.yaml") }

// kubectlCommand is `fjord kubectl …`: the kubectl of the embedded Kubernetes
// version, using the admin kubeconfig unless KUBECONFIG or --kubeconfig say
// otherwise (as `k3s kubectl` does).
func kubectlCommand() *cli.Command {
	return &cli.Command{
		Name:            "kubectl",
		Usage:           "run kubectl against this cluster",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			hasFlag := slices.ContainsFunc(args, func(a string) bool { return a == "--kubeconfig" || strings.HasPrefix(a, "--kubeconfig=") })
			if os.Getenv("KUBECONFIG") == "" && !hasFlag {
				// No flags of its own here: the config files and FJORD_DATA_DIR
				// locate the data dir, through the server's loader.
				dataDir := func(key string) (string, bool) {
					if key != "data-dir" {
						return "", false
					}
					v := os.Getenv(appliance.EnvName(key))
					return v, v != ""
				}
				cfg, err := appliance.LoadConfig(envOr("FJORD_CONFIG", appliance.DefaultConfigFile), false, dataDir)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				os.Setenv("KUBECONFIG", adminKubeconfig(cfg.DataDir))
			}
			cmd := kubectlcmd.NewDefaultKubectlCommand()
			cmd.SetArgs(args)
			if code := kubecli.Run(cmd); code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
