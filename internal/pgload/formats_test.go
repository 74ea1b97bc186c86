package pgload

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// pgDump runs the cluster's pg_dump -C with more flags (-Fc, -Ft) and
// returns the dump.
func (c cluster) pgDump(db string, flags ...string) []byte {
	c.t.Helper()
	cmd := exec.Command(c.Bin("pg_dump"), append(append([]string{"-C"}, flags...), "-d", c.conn(db))...)
	cmd.Env = append(os.Environ(), c.Env()...)
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("pg_dump %s %v: %v", db, flags, err)
	}
	return out
}

// Every format pg_dump writes loads into a new database created like the
// dump's: its encoding (LATIN1 here, with non-ASCII text), locale and owner.
// Custom dumps load with pg_restore, in parallel with Jobs; --force
// replaces a database only once the new one loaded; a broken custom dump
// names pg_restore's first error and leaves nothing.
func TestLoadFormats(t *testing.T) {
	pg := cluster{harness.StartPostgres(t), t}
	ctx := context.Background()
	pg.Exec(t, "postgres", "CREATE ROLE app_owner")
	pg.Exec(t, "postgres", "CREATE DATABASE latin WITH TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C' OWNER app_owner")
	pg.Exec(t, "latin", "CREATE TABLE words (id int PRIMARY KEY, w text); INSERT INTO words SELECT i, 'Grüße ' || i || ' æøå' FROM generate_series(1, 2000) i")
	pg.Exec(t, "latin", "CREATE TABLE \"Mixed Case\" (\"Odd col\" int); INSERT INTO \"Mixed Case\" VALUES (7)")
	want := pg.dump("latin")
	props := func(db string) string {
		lit := "'" + strings.ReplaceAll(db, "'", "''") + "'"
		return pg.Query(t, "postgres", "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || datctype || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = "+lit)
	}
	wantProps := props("latin")
	if wantProps != "LATIN1 C C app_owner" {
		t.Fatalf("source props %q", wantProps)
	}

	for _, f := range []struct {
		name, format string
		flags        []string
		jobs         int
	}{
		{"plain", dumpcheck.FormatPlain, nil, 0},
		{"custom", dumpcheck.FormatCustom, []string{"-Fc"}, 0},
		{"custom --jobs 2", dumpcheck.FormatCustom, []string{"-Fc"}, 2},
		{"tar", dumpcheck.FormatTar, []string{"-Ft"}, 0},
	} {
		t.Run(f.name, func(t *testing.T) {
			dump := pg.pgDump("latin", f.flags...)
			target := "copy_" + strings.ReplaceAll(f.name, " ", "_")
			tmp := t.TempDir()
			res, err := Load(ctx, pg.conn(target), bytes.NewReader(dump), Options{SourceDB: "latin", Jobs: f.jobs, TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != f.format || !res.Created {
				t.Errorf("result %+v", res)
			}
			if got := props(target); got != wantProps {
				t.Errorf("created with %q, want %q", got, wantProps)
			}
			if got := pg.dump(target); got != strings.ReplaceAll(want, "latin", target) && got != want {
				t.Errorf("%s differs from the source", target)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("spool left behind: %v", ents)
			}
		})
	}

	custom := pg.pgDump("latin", "-Fc")
	t.Run("--force replaces a database once the load succeeded", func(t *testing.T) {
		pg.CreateDB(t, "occupied")
		pg.Exec(t, "occupied", "CREATE TABLE old_stuff (x int)")
		if _, err := Load(ctx, pg.conn("occupied"), bytes.NewReader(custom), Options{}); err == nil || !strings.Contains(err.Error(), "pass --force to replace it") {
			t.Fatalf("without --force: %v", err)
		}
		res, err := Load(ctx, pg.conn("occupied"), bytes.NewReader(custom), Options{Force: true, Jobs: 2})
		if err != nil || !res.Replaced {
			t.Fatalf("%+v %v", res, err)
		}
		if got := pg.Query(t, "occupied", "SELECT count(*) FROM words"); got != "2000" {
			t.Errorf("words: %s", got)
		}
		if got := pg.Query(t, "occupied", "SELECT count(*) FROM pg_class WHERE relname = 'old_stuff'"); got != "0" {
			t.Errorf("the old database's table is still there")
		}
		if got := props("occupied"); got != wantProps {
			t.Errorf("replacement created with %q", got)
		}
	})

	t.Run("a broken custom dump names pg_restore's error and leaves nothing", func(t *testing.T) {
		pg.CreateDB(t, "keep")
		pg.Exec(t, "keep", "CREATE TABLE precious (x int); INSERT INTO precious VALUES (1)")
		cut := custom[:len(custom)*2/3]
		for _, db := range []string{"broken", "keep"} {
			_, err := Load(ctx, pg.conn(db), bytes.NewReader(cut), Options{Archive: "latin_x.sql.age", Force: true})
			wantErr(t, err, `loading latin_x.sql.age (custom format, with pg_restore) into database "`+db+`"`, "pg_restore: ")
		}
		if pg.exists("broken") {
			t.Error("database broken exists after a failed load")
		}
		if got := pg.Query(t, "keep", "SELECT x FROM precious"); got != "1" {
			t.Errorf("keep lost its data: %q", got)
		}
	})

	t.Run("an owner role that does not exist here", func(t *testing.T) {
		pg.Exec(t, "postgres", "CREATE ROLE gone")
		pg.Exec(t, "postgres", "CREATE DATABASE orphan OWNER gone")
		pg.Exec(t, "orphan", "CREATE TABLE t (x int)")
		dump := pg.pgDump("orphan", "-Fc", "--no-owner")
		pg.Exec(t, "postgres", "DROP DATABASE orphan")
		pg.Exec(t, "postgres", "DROP ROLE gone")
		if _, err := Load(ctx, pg.conn("orphan"), bytes.NewReader(dump), Options{}); err != nil {
			t.Fatal(err)
		}
		if got := pg.Query(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'orphan'"); got != pg.Superuser {
			t.Errorf("owner %s, want the loader", got)
		}
	})

	t.Run("pg_dumpall output is named as such", func(t *testing.T) {
		all := []byte("--\n-- PostgreSQL database cluster dump\n--\n\nSET x = 1;\n")
		_, err := Load(ctx, pg.conn("cluster"), bytes.NewReader(all), Options{Archive: "all_x.sql.age"})
		wantErr(t, err, "all_x.sql.age is a pg_dumpall dump of a whole cluster")
	})
}
