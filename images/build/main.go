// Command build makes an OCI image archive from a root filesystem, for
// containerd to import on a Fjord node:
//
//	go run ./images/build --rootfs DIR --name REF [--entrypoint ARG]... [--env K=V]... -o out.tar [CMD ARG...]
//	go run ./images/build --busybox /bin/busybox [--name REF] -o busybox.tar
//	go run ./images/build --pause --rootfs DIR -o images/embedded/pause.tar
//
// --busybox lays out a rootfs around a static busybox (images.BusyboxRootfs);
// --pause names the image images.PauseImage and runs /pause, so the archive
// `make` embeds always carries the name the node configures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fjord-dev/fjord/images"
)

// options are the command line, bound locally (no package globals).
type options struct {
	rootfs     string
	busybox    string
	pause      bool
	name       string
	entrypoint []string
	env        []string
	workdir    string
	arch       string
	out        string
	cmd        []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: build (--rootfs DIR | --busybox BIN) [flags] -o OUT.tar [CMD ARG...]")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.rootfs, "rootfs", "", "root filesystem `dir` of the image")
	fs.StringVar(&o.busybox, "busybox", "", "build a busybox image around this static busybox `binary` instead of --rootfs")
	fs.BoolVar(&o.pause, "pause", false, "the rootfs holds /pause: name the image "+images.PauseImage+" and run /pause")
	fs.StringVar(&o.name, "name", "", "image `reference`; short names are normalised (busybox → docker.io/library/busybox:latest)")
	fs.Func("entrypoint", "entrypoint `arg` (repeat for more)", func(s string) error { o.entrypoint = append(o.entrypoint, s); return nil })
	fs.Func("env", "`KEY=value` of the image's environment (repeat for more)", func(s string) error { o.env = append(o.env, s); return nil })
	fs.StringVar(&o.workdir, "workdir", "", "working `dir` of the image's process")
	fs.StringVar(&o.arch, "arch", "", "image architecture (default: this machine's GOARCH)")
	fs.StringVar(&o.out, "o", "", "output archive `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		o.cmd = fs.Args()
	}
	return build(ctx, o)
}

func build(ctx context.Context, o options) error {
	if o.out == "" {
		return errors.New("-o is required")
	}
	if (o.rootfs == "") == (o.busybox == "") {
		return errors.New("give exactly one of --rootfs and --busybox")
	}
	spec := images.Spec{Name: o.name, Entrypoint: o.entrypoint, Env: o.env, WorkingDir: o.workdir, Architecture: o.arch, Cmd: o.cmd}
	rootfs := o.rootfs
	switch {
	case o.pause:
		if o.busybox != "" {
			return errors.New("--pause needs --rootfs, not --busybox")
		}
		if o.name != "" && o.name != images.PauseImage {
			return fmt.Errorf("--pause names the image %s; drop --name", images.PauseImage)
		}
		if fi, err := os.Stat(filepath.Join(rootfs, "pause")); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("--pause: %s has no /pause program", rootfs)
		}
		spec.Name = images.PauseImage
		if len(spec.Entrypoint) == 0 {
			spec.Entrypoint = []string{"/pause"}
		}
	case o.busybox != "":
		tmp, err := os.MkdirTemp("", "fjord-busybox-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		rootfs = filepath.Join(tmp, "rootfs")
		if err := images.BusyboxRootfs(ctx, o.busybox, rootfs); err != nil {
			return err
		}
		if spec.Name == "" {
			spec.Name = "busybox"
		}
		if len(spec.Entrypoint) == 0 && len(spec.Cmd) == 0 {
			spec.Cmd = images.BusyboxSpec.Cmd
		}
		if len(spec.Env) == 0 {
			spec.Env = images.BusyboxSpec.Env
		}
	}
	img, err := images.Build(ctx, rootfs, o.out, spec)
	if err != nil {
		return err
	}
	fi, err := os.Stat(o.out)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s %s %s (%d bytes)\n", o.out, img.Name, img.Platform, img.Digest, fi.Size())
	return nil
}
