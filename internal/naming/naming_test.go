package naming

import (
	"strings"
	"testing"
	"time"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestBaseAndKey(t *testing.T) {
	n, err := New("db1", mustTime("2026-11-21T15:24:07.9+01:00"), ".gz")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.Base(), "db1_20261121T142407Z.sql.gz.age"; got != want {
		t.Errorf("Base = %q, want %q", got, want)
	}
	if got, want := n.Key("hosts/pg1"), "hosts/pg1/db1/db1_20261121T142407Z.sql.gz.age"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if got, want := n.Key(""), "db1/db1_20261121T142407Z.sql.gz.age"; got != want {
		t.Errorf("Key without prefix = %q, want %q", got, want)
	}
	n.Seq = 2
	if got, want := n.ManifestKey(""), "db1/db1_20261121T142407Z-2.sql.gz.age.manifest.json"; got != want {
		t.Errorf("ManifestKey = %q, want %q", got, want)
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, base := range []string{
		"db1_20261121T142407Z.sql.gz.age",
		"my_db_20261121T142407Z-3.sql.zstd.age",
		"all_20000101T000000Z.sql.age",
		"x.y-z_20261121T142407Z.sql.xz.age",
	} {
		n, err := Parse(base)
		if err != nil {
			t.Errorf("Parse(%q): %v", base, err)
			continue
		}
		if n.Base() != base {
			t.Errorf("Parse(%q).Base() = %q", base, n.Base())
		}
	}
	n, _ := Parse("my_db_20261121T142407Z-3.sql.zstd.age")
	if n.Database != "my_db" || n.Seq != 3 || n.Suffix != ".zstd" || !n.Created.Equal(mustTime("2026-11-21T14:24:07Z")) {
		t.Errorf("parsed fields wrong: %+v", n)
	}
}

func TestParseRejects(t *testing.T) {
	for _, base := range []string{
		"", ".age", "db1_20261121T142407Z.sql.gz", "db1_20261121T142407Z.sql.gz.age.manifest.json",
		"db1-20261121T142407Z.sql.age", "db1_2026112T142407Z.sql.age", "db1_20261121T142407Z-0.sql.age",
		"db1_20261121T142407Z-01.sql.age", "db1_20261121T142407Zx.sql.age", "_20261121T142407Z.sql.age",
		"db1_20261321T142407Z.sql.age", "db1_20261121T142407Z.sql.GZ.age", "db/1_20261121T142407Z.sql.age",
	} {
		if n, err := Parse(base); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", base, n)
		}
	}
}

func TestValidateDatabase(t *testing.T) {
	for _, ok := range []string{"db1", "all", "My_DB-2.x", strings.Repeat("a", 63)} {
		if err := ValidateDatabase(ok); err != nil {
			t.Errorf("ValidateDatabase(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "a b", "ü", strings.Repeat("a", 64), "a\x00"} {
		if err := ValidateDatabase(bad); err == nil {
			t.Errorf("ValidateDatabase(%q) accepted", bad)
		}
	}
}

func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a": "a", "/a/b/": "a/b"} {
		if got, err := CleanPrefix(in); err != nil || got != want {
			t.Errorf("CleanPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a//b", "../x", "a/./b"} {
		if _, err := CleanPrefix(bad); err == nil {
			t.Errorf("CleanPrefix(%q) accepted", bad)
		}
	}
}

func TestOrdering(t *testing.T) {
	a, _ := Parse("db_20261121T142407Z.sql.age")
	b, _ := Parse("db_20261121T142407Z-1.sql.age")
	c, _ := Parse("db_20261121T142408Z.sql.age")
	if !Less(a, b) || !Less(b, c) || Less(c, a) || Less(a, a) {
		t.Error("Less does not order by time then sequence")
	}
}

func TestCompression(t *testing.T) {
	for p, want := range map[string]string{
		"/var/backup/postgresql/db1.sql.gz": "gzip", "db1.sql.zstd": "zstd", "db1.sql.zst": "zstd",
		"all.sql": "none", "x.prev.sql.xz": "xz",
	} {
		c, ok := CompressionFromPath(p)
		if !ok || c.Name != want {
			t.Errorf("CompressionFromPath(%q) = %v, %v; want %s", p, c.Name, ok, want)
		}
	}
	if _, ok := CompressionFromPath("db1.dump"); ok {
		t.Error("CompressionFromPath accepted db1.dump")
	}
	for head, want := range map[string]string{
		"\x1f\x8b\x08": "gzip", "\x28\xb5\x2f\xfd\x00": "zstd", "--\n-- PostgreSQL": "none", "": "none",
	} {
		if got := SniffCompression([]byte(head)).Name; got != want {
			t.Errorf("SniffCompression(%q) = %s, want %s", head, got, want)
		}
	}
	if got := DumpPath("/var/backup/postgresql", "db1", mustCompression("zstd")); got != "/var/backup/postgresql/db1.sql.zstd" {
		t.Errorf("DumpPath = %q", got)
	}
	if _, err := CompressionByName("brotli"); err == nil {
		t.Error("CompressionByName accepted brotli")
	}
}

func mustCompression(name string) Compression {
	c, err := CompressionByName(name)
	if err != nil {
		panic(err)
	}
	return c
}

// FuzzParse checks that anything Parse accepts renders back to itself, so two
// different keys can never stand for the same archive.
func FuzzParse(f *testing.F) {
	f.Add("db1_20261121T142407Z.sql.gz.age")
	f.Add("my_db_20261121T142407Z-3.sql.zstd.age")
	f.Add("db1_20261121T142407Z-.sql.age")
	f.Add("db1_20261121T142407Z-hc5mbdrt.sql.age")
	f.Add("db1_20261121T142407Z-Hc5mbdrt.sql.age")
	f.Fuzz(func(t *testing.T, base string) {
		n, err := Parse(base)
		if err != nil {
			return
		}
		if got := n.Base(); got != base {
			t.Fatalf("Parse(%q).Base() = %q", base, got)
		}
		again, err := Parse(n.Base())
		if err != nil || again != n {
			t.Fatalf("reparse of %q: %+v, %v", base, again, err)
		}
	})
}

func TestRunID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID(time.Date(2026, 11, 21, 14, 24, 7, 123456789, time.UTC))
		if !validID(id) || seen[id] {
			t.Fatalf("NewID() = %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
		n := Name{Database: "db1", Created: time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC), ID: id, Suffix: ".gz"}
		if back, err := Parse(n.Base()); err != nil || back != n {
			t.Fatalf("%s: %+v, %v", n.Base(), back, err)
		}
	}
	for _, bad := range []string{"db1_20261121T142407Z-1abcdefg.sql.age", "db1_20261121T142407Z-abcdefgh1.sql.age", "db1_20261121T142407Z-abcdefg8.sql.age", "db1_20261121T142407Z-ABCDEFGH.sql.age"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
	old := Name{Database: "db1", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Seq: 2}
	a, b := old, old
	a.Seq, a.ID = 0, "aaaaaaaa"
	b.Seq, b.ID = 0, "bbbbbbbb"
	if !Less(a, b) || Less(b, a) || !SameSlot(a, a) || SameSlot(a, b) || !Less(a, old) {
		t.Error("Less/SameSlot within one second")
	}
}

func TestRunIDSortsByMillisecond(t *testing.T) {
	base := time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC)
	prev := ""
	for ms := 0; ms < 1000; ms += 7 {
		id := NewID(base.Add(time.Duration(ms) * time.Millisecond))
		if !validID(id) || id[:3] <= prev {
			t.Fatalf("ms %d: %s after %s", ms, id, prev)
		}
		prev = id[:3]
	}
}
