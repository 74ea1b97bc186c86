// Package pgbin finds the PostgreSQL client and server programs that restore
// and drill run. Debian and Ubuntu keep them in a versioned directory that is
// not on PATH (only postgresql-common's wrappers are), so after PATH we look
// there too, newest major version first.
package pgbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DebianRoot is where Debian's postgresql-N packages install <N>/bin.
// A variable so tests can point it elsewhere.
var DebianRoot = "/usr/lib/postgresql"

// Find returns the path of the program name. With dir set (--pg-bin) only
// dir/name counts, so an explicit choice is never silently replaced by
// another version; otherwise PATH, then the newest DebianRoot/<N>/bin.
func Find(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s: %w; point --pg-bin (env PGARCHIVE_PG_BIN) at the bin directory of a PostgreSQL installation", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range versionDirs() {
		p := filepath.Join(d, "bin", name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install PostgreSQL or point --pg-bin (env PGARCHIVE_PG_BIN) at its bin directory", name)
}

// versionDirs lists DebianRoot/<N> newest first. Sorting numerically matters:
// as strings "9.6" > "17".
func versionDirs() []string {
	ents, err := os.ReadDir(DebianRoot)
	if err != nil {
		return nil
	}
	type ver struct {
		dir string
		n   float64
	}
	var vs []ver
	for _, e := range ents {
		n, err := strconv.ParseFloat(e.Name(), 64)
		if err != nil || !e.IsDir() {
			continue
		}
		vs = append(vs, ver{filepath.Join(DebianRoot, e.Name()), n})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].n > vs[j].n })
	dirs := make([]string, len(vs))
	for i, v := range vs {
		dirs[i] = v.dir
	}
	return dirs
}

func executable(p string) error {
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("no such file")
	case err != nil:
		return err
	case st.IsDir():
		return errors.New("is a directory")
	case st.Mode()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// SupportsRestrict reports whether the psql at path knows \restrict, which
// PostgreSQL added in 17.6, 16.10, 15.14, 14.19 and 13.22 (and 18): a
// key-guarded mode in which psql runs no other meta-command.
func SupportsRestrict(psql string) bool {
	out, err := exec.Command(psql, "--version").Output()
	return err == nil && restrictVersion(string(out))
}

// restrictVersion judges `psql --version` output such as
// "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
func restrictVersion(s string) bool {
	var major, minor int
	i := strings.Index(s, ") ")
	if i < 0 {
		return false
	}
	if _, err := fmt.Sscanf(s[i+2:], "%d.%d", &major, &minor); err != nil {
		return false
	}
	first := map[int]int{17: 6, 16: 10, 15: 14, 14: 19, 13: 22}
	if major >= 18 {
		return true
	}
	m, ok := first[major]
	return ok && minor >= m
}

// Tail keeps the last Max bytes written to it: enough of a PostgreSQL
// tool's stderr to show its error, however much it printed before.
type Tail struct {
	Max int
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.Max:]...)
	}
	return len(p), nil
}

// String is what was kept, trimmed, invalid UTF-8 replaced.
func (t *Tail) String() string { return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?")) }
