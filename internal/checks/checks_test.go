package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "checks.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	p := writeFile(t, `{
  "db1": [{"query": "SELECT count(*) FROM orders", "expect": ">= 1000"}, {"query": "SELECT 'ok'", "expect": "ok"}],
  "*": [{"query": "SELECT 1", "expect": "= 1"}]
}`)
	m, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := For(m, "db1")
	want := []Check{{"SELECT 1", "= 1"}, {"SELECT count(*) FROM orders", ">= 1000"}, {"SELECT 'ok'", "ok"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("For(db1) = %v, want %v", got, want)
	}
	if got := For(m, "db2"); fmt.Sprint(got) != fmt.Sprint(want[:1]) {
		t.Errorf("For(db2) = %v", got)
	}
	if got := For(map[string][]Check{}, "db2"); len(got) != 0 {
		t.Errorf("For(empty) = %v", got)
	}

	for _, c := range []struct{ json, err string }{
		{`{"db1": [{"query": "SELECT 1", "expect": ">= x"}]}`, `database "db1": check 1: expectation ">= x": >= needs a number`},
		{`{"db1": [{"query": "SELECT 1", "expect": "1", "timeout": 5}]}`, `database "db1": json: unknown field "timeout"`},
		{`{"db1": [{"query": " ", "expect": "1"}]}`, `database "db1": check 1 has no query`},
		{`{"db1": [{"query": "SELECT 1"}]}`, `database "db1": check 1: empty expectation`},
		{`{"db1": [], "db1": []}`, `database "db1" appears twice`},
		{`{"db1": {"query": "SELECT 1"}}`, `database "db1": json: cannot unmarshal object`},
		{`[]`, `want a JSON object`},
		{`{"db1": []} {}`, `unexpected data after the JSON object`},
		{`{"db1": [`, `database "db1": unexpected EOF`},
		{`{"": []}`, `empty database name`},
	} {
		p := writeFile(t, c.json)
		_, err := LoadFile(p)
		if err == nil || !strings.HasPrefix(err.Error(), "checks file "+p+": ") || !strings.Contains(err.Error(), c.err) {
			t.Errorf("LoadFile(%s) = %v, want error containing %q", c.json, err, c.err)
		}
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRun(t *testing.T) {
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE orders AS SELECT g AS id, g * 1.5 AS amount FROM generate_series(1, 1200) g")
	conn := fmt.Sprintf("host=%s port=%d user=%s dbname=shop", pg.SocketDir, pg.Port, pg.Superuser)
	cs := []Check{
		{"SELECT count(*) FROM orders", ">= 1000"},
		{"SELECT count(*) FROM orders", "> 5000"},
		{"SELECT no_such_column FROM orders", "1"},
		{"SELECT sum(amount) FROM orders", "= 1080900"},
		{"SELECT 1.50::numeric, 'ignored'", "= 1.50"},
		{"SELECT 0.1::float8 + 0.2::float8", "= 0.30000000000000004"},
		{"SELECT true", "t"},
		{"SELECT NULL::int", "= NULL"},
		{"SELECT 1 WHERE false", "1"},
		{"DELETE FROM orders RETURNING id", ">= 1"},
		{"SELECT 1; SELECT 2", "1"},
		{"SELECT 'last one still runs'", "last one still runs"},
	}
	res := Run(context.Background(), conn, cs)
	want := []string{
		"pass 1200",
		"fail got 1200, want > 5000",
		"fail column \"no_such_column\" does not exist",
		"pass 1080900.0",
		"pass 1.50",
		"pass 0.30000000000000004",
		"pass t",
		"pass NULL",
		"fail query returned no rows",
		"fail read-only transaction",
		"fail multiple commands",
		"pass last one still runs",
	}
	for i, r := range res {
		got := "pass " + r.Got
		if r.Err != nil {
			got = "fail " + r.Err.Error()
		}
		if !strings.HasPrefix(got, want[i]) && !(strings.HasPrefix(want[i], "fail ") && strings.HasPrefix(got, "fail ") && strings.Contains(got, want[i][5:])) {
			t.Errorf("check %d %q: %s; want %s", i, r.Query, got, want[i])
		}
		if r.Check != cs[i] {
			t.Errorf("check %d: result carries %v", i, r.Check)
		}
	}
	if n := pg.Query(t, "shop", "SELECT count(*) FROM orders"); n != strconv.Itoa(1200) {
		t.Errorf("a check changed the data: %s rows left", n)
	}

	bad := fmt.Sprintf("host=%s port=%d user=%s dbname=nosuchdb", pg.SocketDir, pg.Port, pg.Superuser)
	for _, r := range Run(context.Background(), bad, cs[:2]) {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "nosuchdb") {
			t.Errorf("unreachable database: %v", r.Err)
		}
	}
}
