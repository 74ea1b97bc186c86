package walname

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]File{
		"000000010000000000000002":                 {Kind: Segment, Timeline: 1, Log: 0, Seg: 2},
		"0000000200000001000000FF.partial":         {Kind: Partial, Timeline: 2, Log: 1, Seg: 0xFF},
		"00000003.history":                         {Kind: History, Timeline: 3},
		"000000010000000000000002.00000028.backup": {Kind: Backup, Timeline: 1, Seg: 2, Offset: 0x28},
	}
	for name, want := range good {
		f, err := Parse(name)
		want.Name = name
		if err != nil || f != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", name, f, err, want)
		}
	}
	for _, bad := range []string{"", "00000001000000000000000", "000000010000000000000002x", "00000000.history",
		"000000000000000000000002", "00000001000000000000000a", "../00000001.history", "0000000100000000000000020",
		"000000010000000000000002.0000002.backup", "000000010000000000000002.backup", "0000001.history",
		"000000010000000000000002.partial.age", strings.Repeat("0", 100)} {
		if f, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, f)
		}
	}
}

func TestSegNo(t *testing.T) {
	const size = 16 << 20
	f, _ := Parse("0000000100000002000000FE")
	n, err := f.SegNo(size)
	if err != nil || n != 2*256+0xFE {
		t.Fatalf("SegNo = %d, %v", n, err)
	}
	if got := SegmentName(1, n, size); got != f.Name {
		t.Errorf("SegmentName = %s, want %s", got, f.Name)
	}
	big, _ := Parse("000000010000000000000100")
	if _, err := big.SegNo(size); err == nil {
		t.Error("segment 0x100 passed for 16 MiB segments")
	}
	lsn, err := ParseLSN("2/FE000028")
	if err != nil || lsn.SegNo(size) != n || lsn.String() != "2/FE000028" {
		t.Errorf("ParseLSN = %v, %v (segno %d)", lsn, err, lsn.SegNo(size))
	}
	for _, bad := range []string{"", "1", "/1", "1/", "g/1", "123456789/0", "1/2/3"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) passed", bad)
		}
	}
}

func TestKeysAndBaseDatabase(t *testing.T) {
	c := Cluster{SystemID: 7312345678901234567, Major: 15}
	key := c.Key("hosts/pg1", "000000010000000000000002")
	if key != "hosts/pg1/wal/7312345678901234567/15/000000010000000000000002.age" {
		t.Fatal(key)
	}
	if f, ok := ParseKey(c, "hosts/pg1", key); !ok || f.Name != "000000010000000000000002" {
		t.Errorf("ParseKey(%q) = %+v, %v", key, f, ok)
	}
	for _, bad := range []string{key + ".manifest.json", "hosts/pg1/wal/7312345678901234567/16/000000010000000000000002.age",
		"hosts/pg1/wal/7312345678901234567/15/x/000000010000000000000002.age"} {
		if _, ok := ParseKey(c, "hosts/pg1", bad); ok {
			t.Errorf("ParseKey(%q) passed", bad)
		}
	}
	db := c.BaseDatabase()
	if back, ok := ParseBaseDatabase(db); !ok || back != c {
		t.Errorf("ParseBaseDatabase(%q) = %v, %v", db, back, ok)
	}
	for _, bad := range []string{"db1", "base-0-pg15", "base-01-pg15", "base-1-pg9", "base-1-pg015", "base-x-pg15"} {
		if _, ok := ParseBaseDatabase(bad); ok {
			t.Errorf("ParseBaseDatabase(%q) passed", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"000000010000000000000002", "00000003.history", "000000010000000000000002.00000028.backup", "0000000200000001000000FF.partial"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := Parse(name)
		if err != nil {
			return
		}
		if p.Name != name || strings.ContainsAny(name, "/.\\") && p.Kind == Segment || p.Timeline == 0 {
			t.Fatalf("Parse(%q) = %+v", name, p)
		}
		if p.Kind == Segment {
			if n, err := p.SegNo(16 << 20); err == nil && SegmentName(p.Timeline, n, 16<<20) != name {
				t.Fatalf("%q does not round-trip", name)
			}
		}
	})
}

func TestRanges(t *testing.T) {
	const size = 16 << 20
	var files []File
	for _, n := range []string{"000000010000000000000003", "000000010000000000000001", "000000010000000000000002",
		"000000010000000000000006", "00000002.history", "000000020000000000000006", "000000020000000000000007", "000000010000000000000002"} {
		f, err := Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	runs, gaps := Ranges(files, size)
	if len(runs) != 3 || runs[0].Format(size) != "000000010000000000000001..000000010000000000000003 (3)" ||
		runs[1].Format(size) != "000000010000000000000006" || runs[2].Count() != 2 || runs[2].Timeline != 2 {
		t.Errorf("runs = %+v", runs)
	}
	if len(gaps) != 1 || gaps[0].Format(size) != "000000010000000000000004..000000010000000000000005 (2)" {
		t.Errorf("gaps = %+v", gaps)
	}
}
