package nix_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// serviceText renders a unit as NixOS does: the [Unit] lists on one line
// each, space-separated; [Service] from serviceConfig (see directives).
func serviceText(u unit) string {
	var b strings.Builder
	b.WriteString("[Unit]\n")
	b.WriteString(directive("Description", u.Description))
	for _, l := range []struct {
		key  string
		list []string
	}{{"Documentation", u.Documentation}, {"Wants", u.Wants}, {"After", u.After}, {"Requires", u.Requires}, {"OnFailure", u.OnFailure}, {"OnSuccess", u.OnSuccess}} {
		if len(l.list) > 0 {
			b.WriteString(l.key + "=" + strings.Join(l.list, " ") + "\n")
		}
	}
	b.WriteString("\n[Service]\n")
	b.WriteString(directives(u.ServiceConfig))
	return b.String()
}

func timerText(tm timer) string {
	return "[Unit]\n" + directive("Description", tm.Description) + "\n[Timer]\n" + directives(tm.TimerConfig) +
		"\n[Install]\n" + directive("WantedBy", toAny(tm.WantedBy))
}

// withProgram replaces the store path of pgarchive in ExecStart and
// ExecStartPost lines, which systemd-analyze checks for an executable.
func withProgram(u unit, pkgPath, bin string) unit {
	sc := map[string]any{}
	for k, v := range u.ServiceConfig {
		switch x := v.(type) {
		case string:
			v = strings.ReplaceAll(x, pkgPath+"/bin/pgarchive", bin)
		case []any:
			list := make([]any, len(x))
			for i, e := range x {
				if s, ok := e.(string); ok {
					list[i] = strings.ReplaceAll(s, pkgPath+"/bin/pgarchive", bin)
				} else {
					list[i] = e
				}
			}
			v = list
		}
		sc[k] = v
	}
	u.ServiceConfig = sc
	return u
}

// analyzeVerify writes unit files (name -> text) and runs systemd-analyze
// verify on them, which knows every directive name and value syntax; as
// tests/nspawn notes, it exits 0 on most mistakes, so any output is a
// failure. Timers' OnCalendar= values go through systemd-analyze calendar.
func analyzeVerify(t *testing.T, files map[string]string) {
	t.Helper()
	analyze := nixeval.Need(t, "systemd-analyze", "apt-get install -y systemd")
	dir := t.TempDir()
	var paths, names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		var all strings.Builder
		for _, name := range names {
			fmt.Fprintf(&all, "--- %s\n%s", name, files[name])
		}
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, all.String())
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".timer") {
			continue
		}
		for _, line := range strings.Split(files[name], "\n") {
			if cal, ok := strings.CutPrefix(line, "OnCalendar="); ok {
				if out, err := exec.Command(analyze, "calendar", cal).CombinedOutput(); err != nil {
					t.Errorf("%s: systemd-analyze calendar %q: %v\n%s", name, cal, err, out)
				}
			}
		}
	}
}

// directives renders attributes as NixOS' attrsToSection does: a list is one
// line per element, booleans are true/false.
func directives(attrs map[string]any) string {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(directive(k, attrs[k]))
	}
	return b.String()
}

func directive(k string, v any) string {
	if list, ok := v.([]any); ok {
		var b strings.Builder
		for _, x := range list {
			b.WriteString(directive(k, x))
		}
		return b.String()
	}
	switch x := v.(type) {
	case bool:
		if x {
			return k + "=true\n"
		}
		return k + "=false\n"
	case float64:
		return fmt.Sprintf("%s=%d\n", k, int64(x))
	}
	return fmt.Sprintf("%s=%v\n", k, v)
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}
