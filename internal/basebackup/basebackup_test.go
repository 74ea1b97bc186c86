package basebackup

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/walname"
)

type entry struct {
	name, body, link string
	typ              byte
}

func makeTar(t *testing.T, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.body)), Typeflag: e.typ, Linkname: e.link}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func control(id uint64) string {
	b := make([]byte, 296)
	binary.NativeEndian.PutUint64(b, id)
	return string(b)
}

const label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n"
const backupManifest = `{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Path": "x", "Size": 1}],
"WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }], "Manifest-Checksum": "00"}`

func goodEntries() []entry {
	return []entry{{name: "backup_label", body: label}, {name: "global/", typ: tar.TypeDir}, {name: "global/pg_control", body: control(42)},
		{name: "PG_VERSION", body: "15\n"}, {name: "postgresql.conf", typ: tar.TypeSymlink, link: "/nix/store/x-postgresql.conf"},
		{name: "backup_manifest", body: backupManifest}}
}

func TestInspect(t *testing.T) {
	info, err := Inspect(bytes.NewReader(makeTar(t, goodEntries()...)), "none")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Cluster: walname.Cluster{SystemID: 42, Major: 15}, Timeline: 1, StartLSN: 0x2000028, StopLSN: 0x2000100}
	if info != want {
		t.Errorf("Inspect = %+v, want %+v", info, want)
	}
	all := goodEntries()
	for i, e := range all {
		cut := append(append([]entry{}, all[:i]...), all[i+1:]...)
		if e.typ != 0 {
			continue
		}
		if _, err := Inspect(bytes.NewReader(makeTar(t, cut...)), "none"); err == nil {
			t.Errorf("a tar without %s passed", e.name)
		}
	}
	tarBytes := makeTar(t, all...)
	if _, err := Inspect(bytes.NewReader(tarBytes[:len(tarBytes)/2]), "none"); err == nil {
		t.Error("a truncated tar passed")
	}
}

func TestUnpackConfines(t *testing.T) {
	dir := t.TempDir()
	n, err := Unpack(bytes.NewReader(makeTar(t, goodEntries()...)), dir)
	if err != nil || n != 4 {
		t.Fatalf("Unpack = %d, %v", n, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "postgresql.conf")); err != nil || l != "/nix/store/x-postgresql.conf" {
		t.Errorf("link: %q, %v", l, err)
	}
	outside := t.TempDir()
	for name, es := range map[string][]entry{
		"dotdot":        {{name: "../escape", body: "x"}},
		"absolute":      {{name: filepath.Join(outside, "abs"), body: "x"}},
		"through link":  {{name: "out", typ: tar.TypeSymlink, link: outside}, {name: "out/owned", body: "x"}},
		"replace link":  {{name: "f", typ: tar.TypeSymlink, link: filepath.Join(outside, "target")}, {name: "f", body: "x"}},
		"device":        {{name: "dev", typ: tar.TypeChar}},
		"hard link out": {{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}},
	} {
		d := t.TempDir()
		if _, err := Unpack(bytes.NewReader(makeTar(t, es...)), d); err == nil {
			t.Errorf("%s: unpacked", name)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("a hostile tar wrote outside the directory: %v", ents)
	}
}

func TestRecoverySettings(t *testing.T) {
	at := time.Date(2026, 12, 4, 20, 15, 0, 123000000, time.FixedZone("x", 3600))
	lines := strings.Join(RecoverySettings(Target{Time: at}, "/bin/pgarchive --prefix 'it''s' wal-fetch %f %p", "promote"), "\n")
	for _, want := range []string{"restore_command = '/bin/pgarchive --prefix ''it''''s'' wal-fetch %f %p'",
		"recovery_target_time = '2026-12-04 19:15:00.123+00'", "recovery_target_action = 'promote'", "recovery_target_timeline = 'latest'"} {
		if !strings.Contains(lines, want) {
			t.Errorf("missing %q in:\n%s", want, lines)
		}
	}
	if l := strings.Join(RecoverySettings(Target{Latest: true}, "x", "promote"), "\n"); strings.Contains(l, "recovery_target_action") {
		t.Errorf("--latest has a target action:\n%s", l)
	}
	dir := t.TempDir()
	os.Symlink("/etc/hostname", filepath.Join(dir, "postgresql.auto.conf"))
	if err := writeRecovery(dir, []string{"x = 1"}); err == nil {
		t.Error("wrote through a linked postgresql.auto.conf")
	}
}

func TestTargets(t *testing.T) {
	for _, s := range []string{"2026-12-04T20:15:00Z", "2026-12-04 20:15:00+01", "2026-12-04 20:15:00.5+01:00", "2026-12-04 20:15:00"} {
		if _, err := ParseTime(s); err != nil {
			t.Errorf("ParseTime(%q): %v", s, err)
		}
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Error("ParseTime took yesterday")
	}
	b := &manifest.Base{StartLSN: "0/2000028", StopLSN: "0/2000100", Stopped: time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)}
	if !(Target{Time: b.Stopped}).Covers(b) || (Target{Time: b.Stopped.Add(-time.Second)}).Covers(b) {
		t.Error("time coverage")
	}
	if !(Target{LSN: 0x2000100}).Covers(b) || (Target{LSN: 0x20000ff}).Covers(b) {
		t.Error("LSN coverage")
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte(label), []byte(backupManifest))
	f.Fuzz(func(t *testing.T, lbl, man []byte) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range []entry{{name: "backup_label", body: string(lbl)}, {name: "global/pg_control", body: control(7)},
			{name: "PG_VERSION", body: "15"}, {name: "backup_manifest", body: string(man)}} {
			tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.body)), Typeflag: tar.TypeReg})
			tw.Write([]byte(e.body))
		}
		tw.Close()
		info, err := Inspect(&buf, "none")
		if err == nil && (info.StopLSN < info.StartLSN || info.Timeline == 0) {
			t.Fatalf("Inspect accepted %+v", info)
		}
	})
}
