package main

import (
	"slices"
	"strings"
	"testing"
)

func TestHoistGlobalFlags(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want string }{
		// global flags after the command move in front of it
		{"pgarchive archive --database db1 --recipient age1x", "pgarchive --recipient age1x archive --database db1"},
		{"pgarchive archive -d db1 -r age1x --verbose --rclone-config=F", "pgarchive -r age1x --verbose --rclone-config=F archive -d db1"},
		{"pgarchive --config C restore --rclone-config F --database db1", "pgarchive --config C --rclone-config F restore --database db1"},
		// a name the command defines stays with the command
		{"pgarchive restore -i key.txt --database db1", "pgarchive restore -i key.txt --database db1"},
		{"pgarchive archive -i key.txt --database db1", "pgarchive -i key.txt archive --database db1"},
		// a value that looks like a flag is a value
		{"pgarchive drill --check --verbose --expect 1", "pgarchive drill --check --verbose --expect 1"},
		// global flags before the command keep their values
		{"pgarchive --remote archive list --prefix p", "pgarchive --remote archive --prefix p list"},
		// "--", positional arguments and unknown flags end or stay
		{"pgarchive list -- --verbose", "pgarchive list -- --verbose"},
		{"pgarchive list extra --verbose", "pgarchive list extra --verbose"},
		{"pgarchive list --bogus --verbose", "pgarchive --verbose list --bogus"},
		{"pgarchive nosuchcommand --verbose", "pgarchive nosuchcommand --verbose"},
		{"pgarchive list --help", "pgarchive list --help"},
		{"pgarchive", "pgarchive"},
	} {
		got := strings.Join(hoistGlobalFlags(app, strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// Every command's own flag that shares a global flag's name must be one the
// help explains as overriding it; a new clash should be a decision.
func TestFlagClashesAreKnown(t *testing.T) {
	app := newApp()
	global := flagTable(app.Flags)
	known := []string{"identity-file", "i", "passphrase-file"}
	for _, cmd := range app.Commands {
		for name := range flagTable(cmd.Flags) {
			if _, ok := global[name]; ok && !slices.Contains(known, name) {
				t.Errorf("%s --%s shadows the global flag of that name", cmd.Name, name)
			}
		}
	}
}

// FuzzHoistGlobalFlags: never panics, keeps every argument (a permutation),
// keeps the program name first, and is idempotent.
func FuzzHoistGlobalFlags(f *testing.F) {
	f.Add("archive --database db1 --recipient age1x --verbose")
	f.Add("--config c restore -i k --rclone-config=r -- --verbose")
	f.Add("drill --check --verbose --expect 1 extra --remote r")
	app := newApp()
	f.Fuzz(func(t *testing.T, line string) {
		in := append([]string{"pgarchive"}, strings.Fields(line)...)
		out := hoistGlobalFlags(app, in)
		if len(out) != len(in) || out[0] != "pgarchive" {
			t.Fatalf("%q -> %q", in, out)
		}
		a, b := slices.Clone(in), slices.Clone(out)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("%q -> %q: not a permutation", in, out)
		}
		if again := hoistGlobalFlags(app, out); !slices.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}
