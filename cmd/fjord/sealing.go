package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fjord-dev/fjord/appliance/sealing"
)

// kubeClient connects to the server found by clientFlags.
func kubeClient(c *cli.Context) (kubernetes.Interface, error) {
	_, kubeconfig, err := serverKubeconfig(c)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(rc)
}

func certCommand() *cli.Command {
	return &cli.Command{
		Name:  "cert",
		Usage: "print the active sealing certificate (what kubeseal --fetch-cert prints)",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			kube, err := kubeClient(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			pem, err := sealing.FetchCert(c.Context, kube)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			_, err = os.Stdout.Write(pem)
			return err
		},
	}
}

func sealCommand() *cli.Command {
	return &cli.Command{
		Name:      "seal",
		Usage:     "seal a Secret (read from stdin) into a SealedSecret, as kubeseal does",
		ArgsUsage: "< secret.yaml",
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "cert", Usage: "seal offline with this certificate (PEM) instead of fetching the cluster's"},
			&cli.StringFlag{Name: "scope", Value: "strict", Usage: "strict, namespace-wide or cluster-wide"},
			&cli.StringFlag{Name: "name", Usage: "override the Secret's name"},
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "override the Secret's namespace"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "yaml", Usage: "yaml or json"},
			&cli.BoolFlag{Name: "raw", Usage: "seal one value from stdin and print its ciphertext (needs --namespace and --name per scope)"},
			&cli.StringFlag{Name: "merge-into", Usage: "add the sealed values to this SealedSecret file, in place"},
		),
		Action: func(c *cli.Context) error {
			if err := runSeal(c, os.Stdin, os.Stdout); err != nil {
				return cli.Exit("seal: "+err.Error(), 1)
			}
			return nil
		},
	}
}

func runSeal(c *cli.Context, in io.Reader, out io.Writer) error {
	scope, err := sealing.ParseScope(c.String("scope"))
	if err != nil {
		return err
	}
	var pemBytes []byte
	if path := c.String("cert"); path != "" {
		if pemBytes, err = os.ReadFile(path); err != nil {
			return err
		}
	} else {
		kube, err := kubeClient(c)
		if err != nil {
			return err
		}
		if pemBytes, err = sealing.FetchCert(c.Context, kube); err != nil {
			return err
		}
	}
	pub, err := sealing.ParseCertPEM(pemBytes)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	input, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	if c.Bool("raw") {
		s, err := sealing.SealValue(rand.Reader, pub, input, scope, c.String("namespace"), c.String("name"))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, s)
		return err
	}
	secrets, err := sealing.ReadSecrets(bytes.NewReader(input))
	if err != nil {
		return err
	}
	opts := sealing.SealOptions{Scope: scope, Name: c.String("name"), Namespace: c.String("namespace")}
	if path := c.String("merge-into"); path != "" {
		return mergeInto(path, pub, secrets, opts)
	}
	sealed, err := sealing.SealSecrets(pub, secrets, opts)
	if err != nil {
		return err
	}
	for i, ss := range sealed {
		if i > 0 && c.String("output") != "json" {
			fmt.Fprintln(out, "---")
		}
		if err := sealing.Encode(out, ss, c.String("output")); err != nil {
			return err
		}
	}
	return nil
}

// mergeInto seals secrets under the name and namespace of the SealedSecret
// in path and merges them into it; the file is rewritten only on success.
func mergeInto(path string, pub *rsa.PublicKey, secrets []*corev1.Secret, opts sealing.SealOptions) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	orig, err := sealing.ReadSealedSecret(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	opts.Name, opts.Namespace = orig.Name, orig.Namespace
	if opts.Scope == sealing.Strict {
		opts.Scope = orig.Scope()
	}
	sealed, err := sealing.SealSecrets(pub, secrets, opts)
	if err != nil {
		return err
	}
	for _, ss := range sealed {
		sealing.Merge(orig, ss)
	}
	format := "yaml"
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		format = "json"
	}
	var buf bytes.Buffer
	if err := sealing.Encode(&buf, orig, format); err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), info.Mode().Perm())
}

func sealingKeysCommand() *cli.Command {
	return &cli.Command{
		Name:  "sealing-keys",
		Usage: "back up and restore the sealing keys",
		Subcommands: []*cli.Command{{
			Name:      "export",
			Usage:     "write every sealing key to a new file (0600), for backup",
			ArgsUsage: "FILE",
			Flags:     clientFlags(),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("sealing-keys export: give the FILE to write", 2)
				}
				kube, err := kubeClient(c)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				n, err := sealing.ExportKeys(c.Context, kube, c.Args().First())
				if err != nil {
					return cli.Exit("sealing-keys export: "+err.Error(), 1)
				}
				fmt.Fprintf(os.Stderr, "wrote %d keys to %s; keep it as safe as the cluster's secrets\n", n, c.Args().First())
				return nil
			},
		}, {
			Name:      "import",
			Usage:     "restore sealing keys from a backup (fjord's or upstream's); the controller uses them at once",
			ArgsUsage: "FILE",
			Flags:     clientFlags(),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("sealing-keys import: give the FILE to read", 2)
				}
				secrets, err := sealing.ReadKeyFile(c.Args().First())
				if err != nil {
					return cli.Exit("sealing-keys import: "+err.Error(), 1)
				}
				kube, err := kubeClient(c)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				n, err := sealing.ImportKeys(c.Context, kube, secrets)
				if err != nil {
					return cli.Exit("sealing-keys import: "+err.Error(), 1)
				}
				fmt.Fprintf(os.Stderr, "imported %d new keys (%d in the file)\n", n, len(secrets))
				return nil
			},
		}},
	}
}
