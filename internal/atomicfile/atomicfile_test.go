package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.prom")
	if err := WriteBytes(p, []byte("old"), Options{Perm: 0o644}); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(p, []byte("new"), Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %q mode %v", b, fi.Mode())
	}
	if m, _ := filepath.Glob(TempPattern(p, "")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestFailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.sql")
	if err := WriteBytes(p, []byte("old"), Options{}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var seen string
	err := Write(p, Options{TempTag: "partial"}, func(w io.Writer) error {
		w.Write([]byte("half"))
		m, _ := filepath.Glob(TempPattern(p, "partial"))
		if len(m) == 1 {
			seen = m[0]
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
	if seen == "" {
		t.Fatal("the temporary file did not match TempPattern")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("target changed: %q", b)
	}
	if _, err := os.Stat(seen); !os.IsNotExist(err) {
		t.Fatalf("temporary file %s left: %v", seen, err)
	}
}

func TestPrepareRunsFirst(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	err := WriteBytes(p, []byte("x"), Options{Prepare: func(f *os.File) error { return errors.New("no chown") }})
	if err == nil || !strings.Contains(err.Error(), "no chown") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("target created despite the failure")
	}
}

// A leftover of a killed write is removed; a fresh one (a write in
// progress) and other files are not.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "db1.sql")
	old := filepath.Join(dir, ".db1.sql.partial-123")
	fresh := filepath.Join(dir, ".db1.sql.partial-456")
	other := filepath.Join(dir, ".db1.sql.tmp-789")
	for _, f := range []string{old, fresh, other} {
		os.WriteFile(f, []byte("x"), 0o600)
	}
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	os.Chtimes(other, past, past)
	removed, err := RemoveStale(p, "partial", time.Minute)
	if err != nil || len(removed) != 1 || removed[0] != old {
		t.Fatalf("removed %v, %v", removed, err)
	}
	for _, f := range []string{fresh, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s removed", f)
		}
	}
}
