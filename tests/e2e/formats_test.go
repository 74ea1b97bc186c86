package e2e

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestCustomFormatArchive: a pg_dump -Fc dump (gzip'd, as postgresqlBackup
// with pgdumpOptions "-C -Fc" leaves it) of a LATIN1 database owned by
// app_owner is archived (list shows its format), restored --into a new
// database with --jobs 2 (same encoding, locale, owner and data), and a
// forced restore with a wrong key leaves the target as it was.
func TestCustomFormatArchive(t *testing.T) {
	w := newWorld(t, nil)
	pg := harness.StartPostgres(t)
	pg.Exec(t, "postgres", "CREATE ROLE app_owner")
	pg.Exec(t, "postgres", "CREATE DATABASE shop WITH TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C' OWNER app_owner")
	pg.GenerateData(t, "shop", 2000)
	pg.Exec(t, "shop", "CREATE TABLE words (w text); INSERT INTO words VALUES ('Grüße æøå')")
	want := pg.Fingerprint(t, "shop")

	cmd := exec.Command(pg.Bin("pg_dump"), "-C", "-Fc", "-d", "shop")
	cmd.Env = append(os.Environ(), pg.Env()...)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(dump)
	zw.Close()
	path := filepath.Join(w.dir, "shop.sql.gz")
	os.WriteFile(path, gz.Bytes(), 0o600)
	idPath, recip := harness.AgeKeygen(t, false)
	if r := w.pgarchive(t, nil, "-r", recip, "archive", "--database", "shop", "--file", path); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	list := w.pgarchive(t, nil, "list", "--database", "shop")
	if !strings.Contains(list.stdout, "FORMAT") || !strings.Contains(list.stdout, " custom ") {
		t.Fatalf("list does not show the format:\n%s", list.stdout)
	}

	tmp := t.TempDir()
	r := w.pgarchive(t, nil, "restore", "-d", "shop", "--into", connString(pg, "shop_copy"), "--jobs", "2", "--temp-dir", tmp, "-i", idPath)
	if r.exit != 0 || !strings.Contains(r.stderr, "loaded (custom format) into database shop_copy") {
		t.Fatalf("restore --into: %d\n%s", r.exit, r.stderr)
	}
	if got := pg.Fingerprint(t, "shop_copy"); got != want {
		t.Errorf("restored data differs:\n%s\n%s", got, want)
	}
	props := pg.Query(t, "postgres", "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop_copy'")
	if props != "LATIN1 C app_owner" {
		t.Errorf("shop_copy created with %q, want the dump's LATIN1 C app_owner", props)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the spool was left in %s: %v", tmp, ents)
	}

	// --force with a key that does not open the archive: nothing is
	// dropped, the target keeps its data.
	wrong, _ := harness.AgeKeygen(t, false)
	pg.Exec(t, "shop_copy", "CREATE TABLE marker (x int)")
	r = w.pgarchive(t, nil, "restore", "-d", "shop", "--into", connString(pg, "shop_copy"), "--force", "-i", wrong)
	if r.exit == 0 || !strings.Contains(r.stderr, "does not decrypt it") {
		t.Fatalf("forced restore with a wrong key: %d\n%s", r.exit, r.stderr)
	}
	if n := pg.Query(t, "shop_copy", "SELECT count(*) FROM pg_class WHERE relname = 'marker'"); n != "1" {
		t.Error("the forced restore with a wrong key changed the target")
	}
	// With the right key --force replaces it.
	r = w.pgarchive(t, nil, "restore", "-d", "shop", "--into", connString(pg, "shop_copy"), "--force", "-i", idPath)
	if r.exit != 0 || !strings.Contains(r.stderr, "replacing the one that was there") {
		t.Fatalf("forced restore: %d\n%s", r.exit, r.stderr)
	}
	if got := pg.Fingerprint(t, "shop_copy"); got != want {
		t.Errorf("after --force the data differs")
	}
}

// TestDrillCustomFormat: the drill restores a custom-format archive with
// pg_restore (--jobs 2) into its scratch cluster and runs its checks.
func TestDrillCustomFormat(t *testing.T) {
	d := newDrillWorld(t)
	cmd := exec.Command(d.pg.Bin("pg_dump"), "-C", "-Fc", "-d", "db1")
	cmd.Env = append(os.Environ(), d.pg.Env()...)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.dir, "db1-custom.sql")
	os.WriteFile(path, dump, 0o644)
	_, recip := keyOf(t, d.idPath)
	if r := d.pgarchive(t, nil, "-r", recip, "archive", "--database", "db1", "--file", path); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	code, out := d.run(t, "-d", "db1", "-i", d.idPath, "--jobs", "2",
		"--check", "select count(*) from registrations", "--expect", ">= 1500")
	if code != 0 || !strings.Contains(out, "db1: drill passed") || !strings.Contains(out, "(custom) with pg_restore") {
		t.Fatalf("drill of a custom-format archive (exit %d):\n%s", code, out)
	}
}

// TestClusterArchive: NixOS' backupAll default, a pg_dumpall archive
// ("all"), restores whole into another server (roles, every database with
// its owner and encoding; an existing role kept; refused over a non-empty
// database without --force), one database of it with --only, and drills
// whole with checks on two databases.
func TestClusterArchive(t *testing.T) {
	d := newDrillWorld(t)
	pg := d.pg
	pg.Exec(t, "postgres", "CREATE ROLE app_owner")
	pg.Exec(t, "postgres", "CREATE DATABASE shop OWNER app_owner")
	pg.Exec(t, "postgres", "CREATE DATABASE latin WITH TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
	pg.GenerateData(t, "shop", 700)
	pg.Exec(t, "latin", "CREATE TABLE w (x text); INSERT INTO w VALUES ('Grüße')")
	wantShop, wantDB1 := pg.Fingerprint(t, "shop"), pg.Fingerprint(t, "db1")
	gz := pg.Dump(t, "all", "gzip")
	_, recip := keyOf(t, d.idPath)
	if r := d.pgarchive(t, nil, "-r", recip, "archive", "--database", "all", "--file", gz); r.exit != 0 {
		t.Fatalf("archive all: %s", r.stderr)
	}
	if l := d.pgarchive(t, nil, "list", "-d", "all"); !strings.Contains(l.stdout, " dumpall ") {
		t.Fatalf("list does not show the dumpall format:\n%s", l.stdout)
	}

	other := harness.StartPostgres(t)
	other.Exec(t, "postgres", "CREATE DATABASE shop")
	other.Exec(t, "shop", "CREATE TABLE mine (x int)")
	r := d.pgarchive(t, nil, "restore", "-d", "all", "--into", connString(other, "postgres"), "-i", d.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, "would replace databases that are not empty: shop (1 relation)") {
		t.Fatalf("restore all over a non-empty shop: %d\n%s", r.exit, r.stderr)
	}
	r = d.pgarchive(t, nil, "restore", "-d", "all", "--into", connString(other, "postgres"), "--force", "-i", d.idPath)
	if r.exit != 0 || !strings.Contains(r.stderr, "loaded as a whole cluster") || !strings.Contains(r.stderr, "skipped template1") {
		t.Fatalf("restore all --force: %d\n%s", r.exit, r.stderr)
	}
	if other.Fingerprint(t, "shop") != wantShop || other.Fingerprint(t, "db1") != wantDB1 {
		t.Error("restored databases differ")
	}
	if got := other.Query(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'"); got != "app_owner" {
		t.Errorf("shop owned by %s", got)
	}
	if got := other.Query(t, "postgres", "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'latin'"); got != "LATIN1" {
		t.Errorf("latin is %s", got)
	}

	r = d.pgarchive(t, nil, "restore", "-d", "all", "--only", "shop", "--into", connString(other, "shop_only"), "-i", d.idPath)
	if r.exit != 0 || other.Fingerprint(t, "shop_only") != wantShop {
		t.Fatalf("restore --only shop: %d\n%s", r.exit, r.stderr)
	}

	checks := filepath.Join(d.dir, "checks-all.json")
	os.WriteFile(checks, []byte(`{"shop": [{"query": "select count(*) from registrations", "expect": "700"}], "latin": [{"query": "select x from w", "expect": "Grüße"}]}`), 0o644)
	code, out := d.run(t, "-d", "all", "-i", d.idPath, "--checks-file", checks)
	if code != 0 || !strings.Contains(out, "all: drill passed") || !strings.Contains(out, "2 checks passed") {
		t.Fatalf("drill all (exit %d):\n%s", code, out)
	}
}

// TestSIGTERMMidRestoreInto stops restore --into of a custom-format archive
// while pg_restore loads: exit 143 with a line saying so, the database it
// was creating dropped, and its private spool removed.
func TestSIGTERMMidRestoreInto(t *testing.T) {
	w := newWorld(t, nil)
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "big")
	pg.Exec(t, "big", "CREATE TABLE t AS SELECT i, md5(i::text) AS v FROM generate_series(1, 3000000) i")
	cmd := exec.Command(pg.Bin("pg_dump"), "-C", "-Fc", "-Z", "0", "-d", "big")
	cmd.Env = append(os.Environ(), pg.Env()...)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.dir, "big.dump")
	os.WriteFile(path, dump, 0o600)
	idPath, recip := harness.AgeKeygen(t, false)
	if r := w.pgarchive(t, nil, "-r", recip, "archive", "--database", "big", "--file", path); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	tmp := t.TempDir()
	run := exec.Command(w.bin, "--rclone-config", w.conf, "--log-target", "stderr", "restore", "-d", "big",
		"--into", connString(pg, "big_copy"), "--temp-dir", tmp, "-i", idPath)
	run.Env = append(os.Environ(), "RCLONE_CONFIG=")
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until pg_restore is loading rows into the new database.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if pg.Query(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'big_copy' AND query LIKE 'COPY%'") != "0" {
			break
		}
		if time.Now().After(deadline) {
			run.Process.Kill()
			t.Fatalf("pg_restore never started loading:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	run.Process.Signal(syscall.SIGTERM)
	err = run.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 || !strings.Contains(out.String(), "big: restore interrupted by a signal") {
		t.Fatalf("want exit 143 and a line saying so, got %v:\n%s", err, out.String())
	}
	if pg.Query(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'big_copy%'") != "0" {
		t.Error("the interrupted restore left its database")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the spool was left: %v", ents)
	}
}
