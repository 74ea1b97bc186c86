package pgload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/pgbin"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// sourceSQL adds to harness.GenerateData's tables what the rewriter must
// leave alone: COPY rows, a multi-line comment and a function body holding
// lines that look like the database-level statements it rewrites.
const sourceSQL = `
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'CREATE DATABASE shop_src;'), (2, E'x\n\\connect shop_src\nGRANT ALL ON DATABASE shop_src TO bob;'),
  (3, '\.'), (4, 'ALTER DATABASE shop_src OWNER TO bob;');
COMMENT ON TABLE notes IS E'Notes.\nCOMMENT ON DATABASE shop_src IS ''no'';\n\\connect other';
CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
GRANT CONNECT ON DATABASE shop_src TO bob;
RETURN 'ALTER DATABASE shop_src SET work_mem = 1;';
END
$body$;
`

type cluster struct {
	*harness.Postgres
	t *testing.T
}

func (c cluster) conn(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname='%s'", c.SocketDir, c.Port, c.Superuser, strings.ReplaceAll(db, "'", `\'`))
}

// dump is pg_dump without -C: the objects and data of db, comparable
// across databases of different names.
func (c cluster) dump(db string) string {
	c.t.Helper()
	cmd := exec.Command(c.Bin("pg_dump"), "-d", c.conn(db))
	cmd.Env = append(os.Environ(), c.Env()...)
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("pg_dump %s: %v", db, err)
	}
	return string(harness.NormalizeDump(out))
}

// dbLevel is what pg_dump -C carries about the database itself.
func (c cluster) dbLevel(db string) string {
	c.t.Helper()
	lit := "'" + strings.ReplaceAll(db, "'", "''") + "'"
	return c.Query(c.t, "postgres", `SELECT coalesce(shobj_description(d.oid, 'pg_database'), '<none>') || ' | ' ||
  coalesce((SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY r.rolname)
            FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid), '') || ' | ' ||
  coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(d.datacl) a WHERE a::text LIKE 'bob=%'), '')
FROM pg_database d WHERE datname = `+lit)
}

func (c cluster) exists(db string) bool {
	lit := "'" + strings.ReplaceAll(db, "'", "''") + "'"
	return c.Query(c.t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = "+lit) == "1"
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestLoad(t *testing.T) {
	pg := cluster{harness.StartPostgres(t), t}
	ctx := context.Background()
	pg.Exec(t, "postgres", "CREATE ROLE bob")
	pg.CreateDB(t, "shop_src")
	pg.GenerateData(t, "shop_src", 300)
	pg.ExecFile(t, "shop_src", writeTemp(t, "src.sql", sourceSQL))
	for _, s := range []string{
		"COMMENT ON DATABASE shop_src IS E'The shop.\\nALTER DATABASE shop_src OWNER TO bob;'",
		"ALTER DATABASE shop_src SET work_mem = '8MB'",
		"ALTER ROLE bob IN DATABASE shop_src SET work_mem = '4MB'",
		"GRANT CREATE ON DATABASE shop_src TO bob",
	} {
		pg.Exec(t, "postgres", s)
	}
	dumpFile := pg.Dump(t, "shop_src", "none") // pg_dump -C, as nixpkgs runs it
	dump, err := os.ReadFile(dumpFile)
	if err != nil {
		t.Fatal(err)
	}
	wantDB := pg.dbLevel("shop_src")
	wantObjects := pg.dump("shop_src")
	// Changed after the dump: a database-level statement that still named
	// the source would now show up as a change to it.
	pg.Exec(t, "postgres", "COMMENT ON DATABASE shop_src IS 'changed after the dump'")
	pg.Exec(t, "postgres", "ALTER DATABASE shop_src SET work_mem = '1MB'")
	srcDB := pg.dbLevel("shop_src")

	const target = `Shop "Copy"`
	check := func() {
		t.Helper()
		if got := pg.dump(target); got != wantObjects {
			t.Errorf("objects of %s differ from the source's", target)
		}
		if got := pg.dbLevel(target); got != wantDB {
			t.Errorf("database-level settings of %s:\n got %s\nwant %s", target, got, wantDB)
		}
		if got := pg.dbLevel("shop_src"); got != srcDB {
			t.Errorf("the source database changed:\n got %s\nwant %s", got, srcDB)
		}
		if got := pg.dump("shop_src"); got != wantObjects {
			t.Errorf("the source's objects changed")
		}
	}

	t.Run("round trip into a new database", func(t *testing.T) {
		res, err := Load(ctx, pg.conn(target), bytes.NewReader(dump), Options{SourceDB: "shop_src"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Database != target || !res.Created || res.Replaced || res.Format != dumpcheck.FormatPlain || res.Bytes != int64(len(dump)) ||
			res.Props.Encoding != "UTF8" || res.Props.Owner != "postgres" {
			t.Errorf("result %+v", res)
		}
		check()
	})

	t.Run("refuses a database that is not empty", func(t *testing.T) {
		_, err := Load(ctx, pg.conn(target), bytes.NewReader(dump), Options{SourceDB: "shop_src"})
		wantErr(t, err, `database "Shop \"Copy\"" is not empty (`, " relations, ", "1 function", "pass --force to replace it")
		check()
	})

	t.Run("--force recreates it", func(t *testing.T) {
		pg.Exec(t, target, "CREATE TABLE extra (x int)")
		res, err := Load(ctx, pg.conn(target), bytes.NewReader(dump), Options{SourceDB: "shop_src", Force: true})
		if err != nil || res.Created {
			t.Fatalf("%+v, %v", res, err)
		}
		check()
	})

	t.Run("an empty existing database is used as it is", func(t *testing.T) {
		pg.CreateDB(t, "empty_target")
		res, err := Load(ctx, pg.conn("empty_target"), bytes.NewReader(dump), Options{})
		if err != nil || res.Created {
			t.Fatalf("%+v, %v", res, err)
		}
		if got := pg.Query(t, "empty_target", "SELECT count(*) FROM registrations"); got != "300" {
			t.Errorf("registrations: %s", got)
		}
	})

	t.Run("a truncated dump leaves nothing", func(t *testing.T) {
		cut := bytes.Index(dump, []byte("COPY public.registrations")) + 3000
		_, err := Load(ctx, pg.conn("cut"), bytes.NewReader(dump[:cut]), Options{SourceDB: "shop_src"})
		wantErr(t, err, `loading the dump (plain format, with psql) into database "cut"`, "the dump ends early", "created for this load and has been dropped again")
		if pg.exists("cut") {
			t.Errorf("database cut still exists")
		}
	})

	t.Run("meta-commands that run things are refused before psql sees them", func(t *testing.T) {
		dir := t.TempDir()
		for i, evil := range []string{
			"\\! touch %s/shell\n",
			"SELECT 1; \\o %s/out\n",
			"\\connect shop_src \\! touch %s/second\n",
			"\\copy (SELECT 1) TO '%s/copy'\n",
		} {
			line := fmt.Sprintf(evil, dir)
			at := bytes.Index(dump, []byte("SET statement_timeout"))
			forged := append(append(append([]byte{}, dump[:at]...), line...), dump[at:]...)
			db := fmt.Sprintf("evil%d", i)
			_, err := Load(ctx, pg.conn(db), bytes.NewReader(forged), Options{SourceDB: "shop_src", Archive: "shop_src_x.sql.age"})
			wantErr(t, err, `loading shop_src_x.sql.age (plain format, with psql) into database "`+db+`"`, "psql meta-command", "created for this load and has been dropped again")
			if !errors.Is(err, ErrMetaCommand) {
				t.Errorf("%q: %v does not wrap ErrMetaCommand", line, err)
			}
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Fatalf("a refused dump still ran a command: %v", left)
		}
	})

	t.Run("psql itself is restricted", func(t *testing.T) {
		psql := pg.Bin("psql")
		if !pgbin.SupportsRestrict(psql) {
			if os.Getenv("CI") != "" {
				t.Fatalf("psql %s predates \\restrict: CI installs Debian's PostgreSQL 15, which has it", psql)
			}
			t.Skipf("psql %s predates \\restrict", psql)
		}
		// The rewriter's first line: with it, psql refuses a meta-command
		// even if one slipped past the rewriter.
		rw := newRewriter(strings.NewReader("--\nSELECT 1;\n"), "", "t")
		rw.restrict = "K3Y"
		out, _ := io.ReadAll(rw)
		cmd := exec.Command(psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", pg.conn("postgres"))
		cmd.Env = append(os.Environ(), pg.Env()...)
		cmd.Stdin = strings.NewReader(string(out) + "\\! echo ran\n")
		got, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(got), "ran") || !strings.HasPrefix(string(out), "\\restrict K3Y\nSELECT 1;") {
			t.Fatalf("psql after %q: %v, %s", out, err, got)
		}
	})

	t.Run("a dump read error leaves nothing", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(dump[:len(dump)/2]), iotestErr("disk on fire"))
		_, err := Load(ctx, pg.conn("readerr"), r, Options{})
		// It fails while the dump's first statements are read, before any
		// database is created.
		wantErr(t, err, "reading the dump: disk on fire")
		if pg.exists("readerr") {
			t.Errorf("database readerr still exists")
		}
	})

	bad := bytes.Replace(dump, []byte("ALTER TABLE public.events OWNER TO postgres;"), []byte("ALTER TABLE public.events OWNER TO ghost;"), 1)
	if bytes.Equal(bad, dump) {
		t.Fatal("no ALTER TABLE public.events OWNER TO postgres in the dump")
	}
	t.Run("a failing statement leaves nothing", func(t *testing.T) {
		_, err := Load(ctx, pg.conn("failed"), bytes.NewReader(bad), Options{})
		wantErr(t, err, `database "failed": psql: psql:<stdin>:`, `role "ghost" does not exist`, "dropped again")
		if pg.exists("failed") {
			t.Errorf("database failed still exists")
		}
	})

	t.Run("a failing --force load leaves the old database as it was", func(t *testing.T) {
		pg.CreateDB(t, "forced")
		pg.Exec(t, "forced", "CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)")
		_, err := Load(ctx, pg.conn("forced"), bytes.NewReader(bad), Options{Force: true})
		wantErr(t, err, `role "ghost" does not exist`, `database forced is unchanged (the load went into a new database, forced_pgarchive_`, "now dropped again")
		if got := pg.Query(t, "forced", "SELECT x FROM precious"); got != "42" {
			t.Errorf("forced lost its data: %s", got)
		}
		if got := pg.Query(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'forced_pgarchive_%'"); got != "0" {
			t.Errorf("%s work databases left", got)
		}
	})

	t.Run("SkipRoles loads a dump whose roles are missing", func(t *testing.T) {
		ghosts := bytes.ReplaceAll(bytes.ReplaceAll(dump, []byte(" TO postgres;"), []byte(" TO ghost;")), []byte("bob"), []byte("ghost"))
		if _, err := Load(ctx, pg.conn("roleless"), bytes.NewReader(ghosts), Options{}); err == nil {
			t.Fatal("loading a dump naming missing roles worked without SkipRoles")
		}
		if _, err := Load(ctx, pg.conn("roleless"), bytes.NewReader(ghosts), Options{SkipRoles: true}); err != nil {
			t.Fatal(err)
		}
		if got := pg.Query(t, "roleless", "SELECT count(*) FROM events"); got != "600" {
			t.Errorf("events: %s", got)
		}
		if got := pg.dbLevel("roleless"); got != "The shop.\nALTER DATABASE shop_src OWNER TO ghost; | *:work_mem=8MB |" {
			t.Errorf("database-level settings: %q", got)
		}
	})

	t.Run("pg_dumpall output is refused", func(t *testing.T) {
		all := append(append([]byte{}, dump...), "\\connect postgres\nCREATE TABLE x (y int);\n"...)
		_, err := Load(ctx, pg.conn("all_in_one"), bytes.NewReader(all), Options{})
		wantErr(t, err, `switches to database "postgres"`, "dropped again")
		if pg.exists("all_in_one") {
			t.Errorf("database all_in_one still exists")
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		stop := make(chan struct{})
		defer close(stop)
		start := time.Now()
		_, err := Load(cctx, pg.conn("cancelled"), &slowReader{data: dump, stop: stop}, Options{})
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Load returned %v after the cancel", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if pg.exists("cancelled") {
			t.Errorf("database cancelled still exists")
		}
	})

	t.Run("sanitize", func(t *testing.T) {
		script := writeTemp(t, "sanitize.sql", "UPDATE registrations SET email = 'user' || id || '@example.invalid';\n")
		if _, err := Load(ctx, pg.conn("sanitized"), bytes.NewReader(dump), Options{Sanitize: script}); err != nil {
			t.Fatal(err)
		}
		if got := pg.Query(t, "sanitized", "SELECT count(*) FROM registrations WHERE email NOT LIKE '%@example.invalid'"); got != "0" {
			t.Errorf("%s rows not sanitized", got)
		}
	})

	t.Run("a failing sanitize script", func(t *testing.T) {
		script := writeTemp(t, "broken.sql", "UPDATE registrations SET full_name = 'x';\nUPDATE nosuchtable SET x = 1;\n")
		_, err := Load(ctx, pg.conn("unsanitized"), bytes.NewReader(dump), Options{Sanitize: script})
		wantErr(t, err, "sanitize script "+script+` failed on database "unsanitized"`, `relation "nosuchtable" does not exist`, "NOT sanitized")
		// One transaction: the first UPDATE was rolled back with the second.
		if got := pg.Query(t, "unsanitized", "SELECT count(*) FROM registrations WHERE full_name <> 'x'"); got != "300" {
			t.Errorf("%s rows with their name", got)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		_, err := Load(ctx, pg.conn("x"), bytes.NewReader(dump), Options{Sanitize: "/nonexistent.sql"})
		wantErr(t, err, "sanitize script", "/nonexistent.sql")
		_, err = Load(ctx, pg.conn("template1"), bytes.NewReader(dump), Options{})
		wantErr(t, err, "refusing to load a dump into template1")
		_, err = Load(ctx, pg.conn("x"), bytes.NewReader(dump), Options{PgBin: t.TempDir()})
		wantErr(t, err, "psql", "--pg-bin")
		if pg.exists("x") {
			t.Errorf("a refused load created its database")
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func iotestErr(msg string) io.Reader { return errReader{errors.New(msg)} }

// slowReader hands out its data a line every few milliseconds and then
// blocks, like a stalled download, until stop is closed.
type slowReader struct {
	data []byte
	stop chan struct{}
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	i := bytes.IndexByte(s.data, '\n')
	if i < 0 || len(s.data) < 2000 { // never reach the end
		<-s.stop
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, s.data[:i+1])
	s.data = s.data[n:]
	return n, nil
}
