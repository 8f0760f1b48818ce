package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed rewrites args (os.Args) so that flags given after a
// command's arguments are parsed as kubectl parses them: urfave/cli v2 stops
// at the first argument, so `fjord sync APP --kubeconfig F` would otherwise
// see `--kubeconfig` and `F` as two more arguments. For the command (and
// subcommand) named in args, every flag it defines, with its value when it
// takes one, is moved in front of its arguments; the arguments keep their
// order. `--` still ends the flags: what follows it stays as it is. A token
// that looks like a flag the command does not define also ends the
// reordering (it and what follows stay arguments), so a command line such
// as `images build … sh -c CMD` is not changed. Commands with
// SkipFlagParsing (kubectl) are left alone.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// The app's own flags (--help) come before the command name.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		i++
	}
	if i == len(args) {
		return out
	}
	cmd := findCommand(app.Commands, args[i])
	if cmd == nil {
		return args
	}
	out = append(out, args[i])
	return append(out, reorder(cmd, args[i+1:])...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// reorder returns a command's arguments with its flags first.
func reorder(cmd *cli.Command, args []string) []string {
	if cmd.SkipFlagParsing {
		return args
	}
	takesValue := flagArity(cmd.Flags)
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			// Flags first, then everything else after the terminator, so
			// nothing after it is read as a flag.
			return concat(flags, []string{"--"}, positional, args[i+1:])
		}
		if len(a) < 2 || a[0] != '-' {
			if len(positional) == 0 && len(cmd.Subcommands) > 0 {
				if sub := findCommand(cmd.Subcommands, a); sub != nil {
					return concat(flags, []string{a}, reorder(sub, args[i+1:]))
				}
			}
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		value, known := takesValue[name]
		if !known {
			// Not ours: leave it and the rest as arguments, in order.
			return concat(flags, positional, args[i:])
		}
		flags = append(flags, a)
		if value && !hasValue && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return concat(flags, positional)
}

// flagArity maps every name and alias of flags (and of the help flag) to
// whether the flag takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{"help": false, "h": false}
	for _, f := range flags {
		value := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			value = d.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = value
		}
	}
	return m
}

func concat(parts ...[]string) []string {
	out := []string{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
