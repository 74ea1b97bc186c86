package backlog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	for key, want := range map[string]bool{
		"db1/db1_20261121T142407Z.sql.gz.age":               true,
		"db1/db1_20261121T142407Z-2.sql.age":                true,
		"hosts/pg1/db1/db1_20261121T142407Z.sql.gz.age":     true,
		"db1_20261121T142407Z.sql.gz.age":                   false, // no database folder
		"db2/db1_20261121T142407Z.sql.gz.age":               false, // wrong folder
		"db1/db1_20261121T142407Z.sql.gz.age.manifest.json": false,
		"./db1/db1_20261121T142407Z.sql.gz.age":             false,
		"a//db1/db1_20261121T142407Z.sql.gz.age":            false,
		"../db1/db1_20261121T142407Z.sql.gz.age":            false,
		"/db1/db1_20261121T142407Z.sql.gz.age":              false,
		"db1/db1_20261121T142407Z-0.sql.gz.age":             false,
		"db1":                                               false,
		"":                                                  false,
	} {
		n, ok := ParseKey(key)
		if ok != want {
			t.Errorf("ParseKey(%q) ok = %v, want %v", key, ok, want)
		}
		if ok && n.Database != "db1" {
			t.Errorf("ParseKey(%q) database = %q", key, n.Database)
		}
	}
}

// writeEntry lays an entry out by hand, as Commit leaves it.
func writeEntry(t *testing.T, stateDir, key string, size int) {
	t.Helper()
	dir := filepath.Join(entriesDir(stateDir), filepath.FromSlash(key))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, dataFile), make([]byte, size), 0o600)
	os.WriteFile(filepath.Join(dir, manifestFile), []byte("{}"), 0o600)
	b, _ := json.Marshal(Meta{Key: key, Pending: []string{"b"}, Held: []string{"a"}})
	os.WriteFile(filepath.Join(dir, entryFile), b, 0o600)
}

func TestUsage(t *testing.T) {
	if u, err := Usage(""); err != nil || u.Archives != 0 {
		t.Fatalf("Usage(\"\") = %+v, %v", u, err)
	}
	dir := t.TempDir()
	if u, err := Usage(dir); err != nil || u.Archives != 0 || u.Bytes != 0 {
		t.Fatalf("empty: %+v, %v", u, err)
	}
	writeEntry(t, dir, "db1/db1_20261121T142407Z.sql.gz.age", 100)
	writeEntry(t, dir, "db1/db1_20261120T142407Z.sql.gz.age", 50)
	writeEntry(t, dir, "p/db2/db2_20261122T000000Z.sql.age", 7)
	os.MkdirAll(filepath.Join(tmpDir(dir), "x"), 0o700) // spooling: not counted
	u, err := Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Archives != 3 || u.Bytes != 157 || !u.Oldest.Equal(time.Date(2026, 11, 20, 14, 24, 7, 0, time.UTC)) {
		t.Fatalf("usage = %+v", u)
	}
	if d := u.Databases["db1"]; d.Archives != 2 || d.Bytes != 150 {
		t.Fatalf("db1 = %+v", d)
	}
	if d := u.Databases["db2"]; d.Archives != 1 || d.Bytes != 7 {
		t.Fatalf("db2 = %+v", d)
	}
	es, err := List(dir, "db1")
	if err != nil || len(es) != 2 || es[0].Key != "db1/db1_20261120T142407Z.sql.gz.age" {
		t.Fatalf("List(db1) = %v, %v", es, err)
	}
}
