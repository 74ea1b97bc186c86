package pgload

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// The sections of a pg_dumpall dump: header lines inside COPY data or in
// another shape do not split it.
func TestScanCluster(t *testing.T) {
	dump := "--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE a;\n\n" +
		"--\n-- Database \"template1\" dump\n--\n\n\\connect template1\nSET x = 1;\n\n" +
		"--\n-- Database \"db 1\" dump\n--\n\nCOPY public.t (v) FROM stdin;\n--\n-- Database \"fake\" dump\n--\n\\.\n" +
		"-- Database \"fake2\" dump\n--\n\n" +
		"--\n-- Database \"postgres\" dump\n--\n\\connect postgres\n\n--\n-- PostgreSQL database cluster dump complete\n--\n"
	lay, err := ScanCluster(strings.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range lay.Sections {
		names = append(names, s.Database)
		part := dump[s.Offset : s.Offset+s.Length]
		if !strings.HasPrefix(part, "--\n-- Database \""+s.Database+"\" dump\n--\n") {
			t.Errorf("section %s starts with %q", s.Database, part[:20])
		}
	}
	if strings.Join(names, ",") != "template1,db 1,postgres" {
		t.Fatalf("sections %v", names)
	}
	if !strings.HasSuffix(dump[:lay.Globals], "CREATE ROLE a;\n\n") {
		t.Errorf("globals end %q", dump[:lay.Globals])
	}
	last := lay.Sections[2]
	if last.Offset+last.Length != int64(len(dump)) {
		t.Error("the last section does not run to the end")
	}
	if _, err := ScanCluster(strings.NewReader("SELECT 1;\n")); err == nil {
		t.Error("a plain dump scanned as a cluster")
	}
}

// FuzzScanCluster: sections never overlap, lie within the dump, and start
// after the globals.
func FuzzScanCluster(f *testing.F) {
	f.Add("--\n-- Database \"a\" dump\n--\nx\n--\n-- Database \"b\" dump\n--\n")
	f.Fuzz(func(t *testing.T, dump string) {
		lay, err := ScanCluster(strings.NewReader(dump))
		if err != nil {
			return
		}
		end := lay.Globals
		for _, s := range lay.Sections {
			if s.Offset != end || s.Length <= 0 || s.Offset+s.Length > int64(len(dump)) {
				t.Fatalf("%+v after %d in %q", s, end, dump)
			}
			end = s.Offset + s.Length
		}
		if end != int64(len(dump)) {
			t.Fatalf("sections end at %d of %d", end, len(dump))
		}
	})
}

// A whole cluster: roles (an existing one kept), every database but
// template1 with its encoding and owner, refused over a non-empty database
// without Force; and one database out of it with LoadOne.
func TestLoadCluster(t *testing.T) {
	src := cluster{harness.StartPostgres(t), t}
	src.Exec(t, "postgres", "CREATE ROLE app_owner")
	src.Exec(t, "postgres", "CREATE ROLE reader LOGIN")
	src.Exec(t, "postgres", "CREATE DATABASE shop OWNER app_owner")
	src.Exec(t, "postgres", "CREATE DATABASE latin WITH TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
	src.GenerateData(t, "shop", 500)
	src.Exec(t, "shop", "GRANT SELECT ON registrations TO reader")
	src.Exec(t, "latin", "CREATE TABLE w (x text); INSERT INTO w VALUES ('æøå')")
	src.Exec(t, "postgres", "CREATE TABLE in_postgres (x int); INSERT INTO in_postgres VALUES (5)")
	cmd := exec.Command(src.Bin("pg_dumpall"))
	cmd.Env = append(os.Environ(), src.Env()...)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	wantShop := src.dump("shop")

	dst := cluster{harness.StartPostgres(t), t}
	dst.Exec(t, "postgres", "CREATE ROLE reader NOLOGIN") // exists: kept as it is
	dst.Exec(t, "postgres", "CREATE DATABASE shop")
	dst.Exec(t, "shop", "CREATE TABLE keep_me (x int)")
	ctx := context.Background()
	load := func(opt ClusterOptions) (ClusterResult, error) {
		return LoadCluster(ctx, dst.conn("postgres"), strings.NewReader(string(dump)), opt)
	}
	if _, err := load(ClusterOptions{Archive: "all_x"}); err == nil || !strings.Contains(err.Error(), "shop (1 relation)") {
		t.Fatalf("over a non-empty database: %v", err)
	}
	if dst.Query(t, "shop", "SELECT count(*) FROM keep_me") != "0" || dst.exists("latin") {
		t.Fatal("the refused load changed something")
	}
	res, err := load(ClusterOptions{Force: true, Archive: "all_x", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(res.Databases); strings.Join(res.Databases, ",") != "latin,postgres,shop" {
		t.Errorf("loaded %v, want every database but template1", res.Databases)
	}
	if !slices.Contains(res.RolesKept, "reader") || !slices.Contains(res.RolesCreated, "app_owner") {
		t.Errorf("roles: created %v kept %v", res.RolesCreated, res.RolesKept)
	}
	if dst.Query(t, "postgres", "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'reader'") != "f" {
		t.Error("an existing role was changed")
	}
	if got := dst.dump("shop"); got != wantShop {
		t.Error("shop differs")
	}
	if dst.Query(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'") != "app_owner" {
		t.Error("shop's owner")
	}
	if dst.Query(t, "postgres", "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'latin'") != "LATIN1" {
		t.Error("latin's encoding")
	}
	if dst.Query(t, "postgres", "SELECT x FROM in_postgres") != "5" {
		t.Error("postgres' contents")
	}

	// One database out of the cluster dump, under another name.
	r, err := LoadOne(ctx, dst.conn("shop_only"), strings.NewReader(string(dump)), "shop", Options{})
	if err != nil || r.Database != "shop_only" {
		t.Fatalf("%+v %v", r, err)
	}
	if got := dst.dump("shop_only"); got != wantShop {
		t.Error("shop_only differs")
	}
	if _, err := LoadOne(ctx, dst.conn("x"), strings.NewReader(string(dump)), "nope", Options{}); err == nil || !strings.Contains(err.Error(), `no database "nope" (it has latin, postgres, shop, template1)`) {
		t.Errorf("unknown database: %v", err)
	}
}

// A forged pg_dumpall dump whose global part holds a psql meta-command that
// runs things is refused before psql sees it; nothing of it is created.
func TestLoadClusterRefusesMetaCommands(t *testing.T) {
	pg := cluster{harness.StartPostgres(t), t}
	dir := t.TempDir()
	forged := "--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE evil;\n\\! touch " + dir + "/ran\n\n" +
		"--\n-- Database \"evil_db\" dump\n--\n\nCREATE DATABASE evil_db;\n\\connect evil_db\nCREATE TABLE t (x int);\n" +
		"--\n-- PostgreSQL database dump complete\n--\n"
	_, err := LoadCluster(context.Background(), pg.conn("postgres"), strings.NewReader(forged), ClusterOptions{Archive: "all_x"})
	if !errors.Is(err, ErrMetaCommand) {
		t.Fatalf("err = %v, want ErrMetaCommand", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "ran")); serr == nil {
		t.Fatal("the meta-command ran")
	}
	if pg.exists("evil_db") || pg.Query(t, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'evil'") != "0" {
		t.Fatal("the refused dump created something")
	}
}
