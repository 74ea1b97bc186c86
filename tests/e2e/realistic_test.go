package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// realisticSQL is what a production database holds beside plain tables:
// contrib extensions, schemas and names that need quoting, large objects,
// non-ASCII text, a million rows.
const realisticSQL = `
CREATE EXTENSION pgcrypto;
CREATE EXTENSION hstore;
CREATE SCHEMA "Sales Dept";
CREATE SCHEMA "odd""schema";
CREATE TABLE "Sales Dept"."Order Lines" ("Line No" int PRIMARY KEY, "select" text, attrs hstore, secret bytea);
INSERT INTO "Sales Dept"."Order Lines"
  SELECT i, 'Grüße ' || i, hstore('k' || i, 'v' || i), pgp_sym_encrypt('s' || i, 'pw')
  FROM generate_series(1, 5000) i;
CREATE TABLE "odd""schema"."T" ("x""y" int);
INSERT INTO "odd""schema"."T" VALUES (1), (2);
CREATE TABLE big (id bigint PRIMARY KEY, v text);
INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, 1000000) i;
CREATE TABLE docs (id int, blob oid);
INSERT INTO docs SELECT i, lo_from_bytea(0, convert_to(repeat('large object ' || i, 1000), 'UTF8')) FROM generate_series(1, 20) i;
CREATE FUNCTION "Sales Dept".total() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM "Sales Dept"."Order Lines" $$;
CREATE VIEW "Sales Dept"."Sum View" AS SELECT count(*) AS n FROM big;
`

// schemaDump is pg_dump without -C (so no database name) of db, with
// pg_dump's random \restrict keys blanked: equal for equal databases.
func schemaDump(t *testing.T, pg *harness.Postgres, db string) string {
	t.Helper()
	cmd := exec.Command(pg.Bin("pg_dump"), "-d", db)
	cmd.Env = append(os.Environ(), pg.Env()...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump %s: %v", db, err)
	}
	return string(harness.NormalizeDump(out))
}

// TestRealisticRoundTrips archives, restores and drills a database with
// contrib extensions (pgcrypto, hstore), quoted schema and object names,
// large objects, a million rows and pgbench -i -s 20 tables, and a LATIN1
// database, as plain SQL (postgresqlBackup's default), custom format
// (pgdumpOptions "-C -Fc") and a pg_dumpall archive (backupAll): each
// restored database's pg_dump equals the source's.
func TestRealisticRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("minutes of data")
	}
	d := newDrillWorld(t)
	src := d.pg
	src.CreateDB(t, "real")
	sql := filepath.Join(d.dir, "real.sql")
	os.WriteFile(sql, []byte(realisticSQL), 0o644)
	src.ExecFile(t, "real", sql)
	bench := exec.Command(src.Bin("pgbench"), "-i", "-s", "20", "-q", "real")
	bench.Env = append(os.Environ(), src.Env()...)
	if out, err := bench.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	src.Exec(t, "postgres", "CREATE DATABASE latin1 WITH TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
	src.Exec(t, "latin1", "CREATE TABLE w (x text); INSERT INTO w SELECT 'Ærø Grüße ' || i FROM generate_series(1, 1000) i")
	want := map[string]string{"real": schemaDump(t, src, "real"), "latin1": schemaDump(t, src, "latin1")}
	_, recip := keyOf(t, d.idPath)
	dst := harness.StartPostgres(t)

	archive := func(db, file string) {
		t.Helper()
		if r := d.pgarchive(t, nil, "-r", recip, "archive", "--database", db, "--file", file); r.exit != 0 {
			t.Fatalf("archive %s: %s", file, r.stderr)
		}
	}
	restore := func(db, into string, args ...string) {
		t.Helper()
		r := d.pgarchive(t, nil, append([]string{"restore", "-d", db, "--into", into, "-i", d.idPath}, args...)...)
		if r.exit != 0 {
			t.Fatalf("restore %s --into %s: %d\n%s", db, into, r.exit, r.stderr)
		}
	}
	same := func(name, restored string) {
		t.Helper()
		if got := schemaDump(t, dst, restored); got != want[name] {
			t.Errorf("%s restored as %s differs from the source", name, restored)
		}
	}
	drill := func(db string) {
		t.Helper()
		code, out := d.run(t, "-d", db, "-i", d.idPath, "--jobs", "2")
		if code != 0 || !strings.Contains(out, db+": drill passed") {
			t.Fatalf("drill %s (exit %d):\n%s", db, code, out)
		}
	}

	t.Run("plain", func(t *testing.T) {
		for _, db := range []string{"real", "latin1"} {
			archive(db, src.Dump(t, db, "gzip"))
			restore(db, connString(dst, db+"_plain"))
			same(db, db+"_plain")
			drill(db)
		}
		if got := dst.Query(t, "postgres", "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'latin1_plain'"); got != "LATIN1" {
			t.Errorf("latin1_plain is %s", got)
		}
	})
	t.Run("custom", func(t *testing.T) {
		for _, db := range []string{"real", "latin1"} {
			cmd := exec.Command(src.Bin("pg_dump"), "-C", "-Fc", "-d", db)
			cmd.Env = append(os.Environ(), src.Env()...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(d.dir, db+"-custom.sql")
			os.WriteFile(file, out, 0o644)
			archive(db, file)
			restore(db, connString(dst, db+"_custom"), "--jobs", "2")
			same(db, db+"_custom")
			drill(db)
		}
	})
	t.Run("pg_dumpall", func(t *testing.T) {
		archive("all", src.Dump(t, "all", "gzip"))
		whole := harness.StartPostgres(t)
		r := d.pgarchive(t, nil, "restore", "-d", "all", "--into", connString(whole, "postgres"), "-i", d.idPath)
		if r.exit != 0 {
			t.Fatalf("restore all: %s", r.stderr)
		}
		for _, db := range []string{"real", "latin1"} {
			if got := schemaDump(t, whole, db); got != want[db] {
				t.Errorf("%s of the whole cluster differs from the source", db)
			}
		}
		restore("all", connString(dst, "real_only"), "--only", "real")
		same("real", "real_only")
		drill("all")
	})
}
