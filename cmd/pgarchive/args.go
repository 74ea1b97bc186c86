package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags moves global flags that follow the command name in
// front of it, so `pgarchive archive --database db1 --recipient age1...`
// means what `pgarchive --recipient age1... archive --database db1` does, as
// restic and rclone accept. urfave/cli parses global flags only before the
// command, and its Before hook (logging) runs before the command's flags
// are parsed, so moving them is simpler and more faithful than defining
// every global flag twice.
//
// A name the command defines itself stays with the command: restore's own
// --identity-file decrypts, and overrides the global one. Parsing follows
// Go's flag package: a non-bool flag without "=" takes the next argument
// as its value, and "--" or the first positional argument ends the flags.
// Unknown flags stay where they are, for urfave to report.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagTable(app.Flags)
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" || !isFlag(a) {
			break
		}
		i += flagWidth(global, args, i)
	}
	if i >= len(args) || args[i] == "--" {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	local := flagTable(cmd.Flags)
	local["help"], local["h"] = false, false
	var moved, kept []string
	j := i + 1
	for j < len(args) {
		a := args[j]
		if a == "--" || !isFlag(a) {
			break
		}
		name := flagName(a)
		if _, ok := local[name]; ok {
			w := flagWidth(local, args, j)
			kept = append(kept, args[j:j+w]...)
			j += w
			continue
		}
		if _, ok := global[name]; ok {
			w := flagWidth(global, args, j)
			moved = append(moved, args[j:j+w]...)
			j += w
			continue
		}
		kept = append(kept, a)
		j++
	}
	if len(moved) == 0 {
		return args
	}
	out := make([]string, 0, len(args))
	out = append(out, args[:i]...)
	out = append(out, moved...)
	out = append(out, args[i])
	out = append(out, kept...)
	return append(out, args[j:]...)
}

// flagTable maps every name and alias of flags to whether it takes a value.
func flagTable(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

func flagName(a string) string {
	n := strings.TrimLeft(a, "-")
	if k := strings.IndexByte(n, '='); k >= 0 {
		n = n[:k]
	}
	return n
}

// flagWidth is how many arguments the flag at args[i] spans: 2 for a flag
// of table that takes a value given as the next argument, else 1.
func flagWidth(table map[string]bool, args []string, i int) int {
	if table[flagName(args[i])] && !strings.Contains(args[i], "=") && i+1 < len(args) {
		return 2
	}
	return 1
}
