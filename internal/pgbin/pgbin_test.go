package pgbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	old := DebianRoot
	DebianRoot = root
	t.Cleanup(func() { DebianRoot = old })
	// 9.6 sorts after 17 as a string; 17 lacks the program; 16's is not executable.
	touch(t, filepath.Join(root, "9.6/bin/psql"), 0o755)
	touch(t, filepath.Join(root, "15/bin/psql"), 0o755)
	touch(t, filepath.Join(root, "16/bin/psql"), 0o644)
	touch(t, filepath.Join(root, "17/bin/initdb"), 0o755)
	touch(t, filepath.Join(root, "notaversion/bin/psql"), 0o755)
	pathDir := t.TempDir()
	t.Setenv("PATH", pathDir)

	if got, err := Find("", "psql"); err != nil || got != filepath.Join(root, "15/bin/psql") {
		t.Errorf("Find(psql) = %q, %v; want the 15 one", got, err)
	}
	if got, err := Find("", "initdb"); err != nil || got != filepath.Join(root, "17/bin/initdb") {
		t.Errorf("Find(initdb) = %q, %v", got, err)
	}

	// PATH wins over the versioned directories.
	touch(t, filepath.Join(pathDir, "psql"), 0o755)
	if got, err := Find("", "psql"); err != nil || got != filepath.Join(pathDir, "psql") {
		t.Errorf("Find(psql) with PATH = %q, %v", got, err)
	}

	_, err := Find("", "pg_ctl")
	if err == nil || err.Error() != "pg_ctl not found: install PostgreSQL or point --pg-bin (env PGARCHIVE_PG_BIN) at its bin directory" {
		t.Errorf("missing program: %v", err)
	}

	// An explicit directory is the only place looked at.
	dir := filepath.Join(root, "9.6/bin")
	if got, err := Find(dir, "psql"); err != nil || got != filepath.Join(dir, "psql") {
		t.Errorf("Find(dir, psql) = %q, %v", got, err)
	}
	for _, name := range []string{"initdb", "."} {
		_, err = Find(dir, name)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "--pg-bin") {
			t.Errorf("Find(dir, %s): %v", name, err)
		}
	}
	if _, err := Find(filepath.Join(root, "16/bin"), "psql"); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("non-executable: %v", err)
	}
}

func TestRestrictVersion(t *testing.T) {
	for s, want := range map[string]bool{
		"psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": true,
		"psql (PostgreSQL) 15.13\n":                          false,
		"psql (PostgreSQL) 17.6\n":                           true,
		"psql (PostgreSQL) 16.9\n":                           false,
		"psql (PostgreSQL) 18.1\n":                           true,
		"psql (PostgreSQL) 12.22\n":                          false,
		"psql (PostgreSQL) 19devel\n":                        false,
		"garbage":                                            false,
	} {
		if got := restrictVersion(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
