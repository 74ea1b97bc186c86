package pgload

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// rewriteAll runs the rewriter over in, reading it through wrap.
func rewriteAll(in []byte, source, target string, wrap func(io.Reader) io.Reader) (string, bool, error) {
	rw := newRewriter(wrap(bytes.NewReader(in)), source, target)
	out, err := io.ReadAll(rw)
	return string(out), rw.Complete(), err
}

func same(r io.Reader) io.Reader { return r }

// chunky returns reads of 1 to 17 bytes, to prove the output does not depend
// on how the input is split.
type chunky struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c *chunky) Read(p []byte) (int, error) {
	n := 1 + c.rnd.IntN(17)
	if n > len(p) {
		n = len(p)
	}
	return c.r.Read(p[:n])
}

func chunks(seed uint64) func(io.Reader) io.Reader {
	return func(r io.Reader) io.Reader { return &chunky{r, rand.New(rand.NewPCG(seed, 1))} }
}

// TestRewriterDumps uses real `pg_dump -C` output of PostgreSQL 15.18
// (testdata/*.sql): shop.sql has a database comment, settings, grants and a
// per-database role setting, plus a table comment, a function body, a view
// and COPY rows that contain lines looking like the statements rewritten.
func TestRewriterDumps(t *testing.T) {
	shopChanges := func(q string) map[int]string {
		return map[int]string{
			25: "", 28: "", 31: "", 63: "",
			49:  "COMMENT ON DATABASE " + q + " IS 'The shop.",
			57:  "ALTER DATABASE " + q + " SET work_mem TO '8MB';",
			58:  "ALTER DATABASE " + q + " SET search_path TO 'public', '$user';",
			59:  "ALTER ROLE bob IN DATABASE " + q + " SET work_mem TO '4MB';",
			170: "REVOKE CONNECT,TEMPORARY ON DATABASE " + q + " FROM PUBLIC;",
			171: "GRANT CONNECT ON DATABASE " + q + " TO PUBLIC;",
			172: "GRANT CREATE,CONNECT ON DATABASE " + q + " TO bob;",
		}
	}
	for _, c := range []struct {
		file, source, target string
		changes              map[int]string // 1-based line -> new content
	}{
		{"shop.sql", "shop", "shop_copy", shopChanges("shop_copy")},
		{"shop.sql", "shop", "Restored \"Copy\"", shopChanges(`"Restored ""Copy"""`)},
		{"shop.sql", "", "shop_copy", shopChanges("shop_copy")},      // learnt from CREATE DATABASE
		{"shop.sql", "other", "shop_copy", shopChanges("shop_copy")}, // the dump's own name wins
		{"shop.sql", "shop", "shop", map[int]string{25: "", 28: "", 31: "", 63: ""}},
		{"shop.sql", "shop", "user", shopChanges(`"user"`)},
		{"weird.sql", "Weird Name", "w2", map[int]string{
			25: "", 28: "", 32: "", 62: "",
			50: "COMMENT ON DATABASE w2 IS 'w';",
			57: "ALTER DATABASE w2 SET work_mem TO '8MB';",
		}},
		{"upper.sql", "Shop.V2", "select", map[int]string{
			25: "", 28: "", 31: "", 60: "",
			49: `COMMENT ON DATABASE "select" IS 'x';`,
			56: `ALTER DATABASE "select" SET work_mem TO '8MB';`,
		}},
	} {
		in, err := os.ReadFile("testdata/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		for i, wrap := range []func(io.Reader) io.Reader{same, iotest.OneByteReader, chunks(uint64(len(c.target)))} {
			out, complete, err := rewriteAll(in, c.source, c.target, wrap)
			if err != nil || !complete {
				t.Fatalf("%s %q->%q reader %d: complete=%v err=%v", c.file, c.source, c.target, i, complete, err)
			}
			inLines := strings.Split(string(in), "\n")
			outLines := strings.Split(out, "\n")
			if len(inLines) != len(outLines) {
				t.Fatalf("%s: %d lines in, %d out", c.file, len(inLines), len(outLines))
			}
			for j := range inLines {
				want, changed := c.changes[j+1]
				if !changed {
					want = inLines[j]
				}
				if sessionMeta(inLines[j]) {
					want = ""
				}
				if outLines[j] != want {
					t.Errorf("%s %q->%q reader %d line %d:\n got %q\nwant %q", c.file, c.source, c.target, i, j+1, outLines[j], want)
				}
			}
		}
	}
}

func TestRewriterSkipRoles(t *testing.T) {
	in, err := os.ReadFile("testdata/shop.sql")
	if err != nil {
		t.Fatal(err)
	}
	rw := newRewriter(chunks(3)(bytes.NewReader(in)), "shop", "tgt")
	rw.skipRoles = true
	out, err := io.ReadAll(rw)
	if err != nil {
		t.Fatal(err)
	}
	inLines, outLines := strings.Split(string(in), "\n"), strings.Split(string(out), "\n")
	if len(inLines) != len(outLines) {
		t.Fatalf("%d lines in, %d out", len(inLines), len(outLines))
	}
	var blanked []string
	for i, l := range inLines {
		if outLines[i] == "" && l != "" && !sessionMeta(l) {
			blanked = append(blanked, l)
		}
	}
	want := []string{
		"CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';",
		"ALTER DATABASE shop OWNER TO postgres;",
		"\\connect shop",
		"ALTER ROLE bob IN DATABASE shop SET work_mem TO '4MB';",
		"\\connect shop",
		"ALTER FUNCTION public.f() OWNER TO postgres;",
		"ALTER FUNCTION public.g() OWNER TO postgres;",
		"ALTER TABLE public.notes OWNER TO postgres;",
		"ALTER TABLE public.v OWNER TO postgres;",
		"REVOKE CONNECT,TEMPORARY ON DATABASE shop FROM PUBLIC;",
		"GRANT CONNECT ON DATABASE shop TO PUBLIC;",
		"GRANT CREATE,CONNECT ON DATABASE shop TO bob;",
	}
	if strings.Join(blanked, "\n") != strings.Join(want, "\n") {
		t.Errorf("blanked:\n%s\nwant:\n%s", strings.Join(blanked, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range []struct{ in, want string }{
		{"ALTER TABLE t RENAME TO \"OWNER TO x;\";\n", "ALTER TABLE t RENAME TO \"OWNER TO x;\";\n"},
		{"ALTER TABLE t OWNER TO \"Odd \"\"x\"\"\";\nSET SESSION AUTHORIZATION bob;\nRESET SESSION AUTHORIZATION;\n", "\n\n\n"},
		{"ALTER DEFAULT PRIVILEGES FOR ROLE bob GRANT SELECT ON TABLES TO x;\nALTER TABLE t ADD COLUMN c int;\n", "\nALTER TABLE t ADD COLUMN c int;\n"},
		{"ALTER FUNCTION public.f(" + strings.Repeat("integer, ", 5000) + "text) OWNER TO bob;\n", "\n"},
		{"COMMENT ON TABLE t IS '\nGRANT ALL ON t TO bob;';\n", "COMMENT ON TABLE t IS '\nGRANT ALL ON t TO bob;';\n"},
	} {
		rw := newRewriter(strings.NewReader(c.in), "shop", "tgt")
		rw.skipRoles = true
		out, err := io.ReadAll(rw)
		if err != nil || string(out) != c.want {
			t.Errorf("%.80q: got %.80q, %v; want %.80q", c.in, out, err, c.want)
		}
	}
}

func TestRewriterCases(t *testing.T) {
	long := strings.Repeat("x", 3*maxPrefix+5)
	for _, c := range []struct {
		name, in, want, err string
	}{
		{name: "plain \\c", in: "\\c shop\nSELECT 1;\n", want: "\nSELECT 1;\n"},
		{name: "connect without a name", in: "\\connect\n", want: "", err: `line 1: psql meta-command "\\connect"`},
		{name: "connect as another user", in: "\\connect - bob\n", want: "", err: `line 1: psql meta-command "\\connect"`},
		{name: "connect uri", in: "\\connect postgresql://h:5/shop?sslmode=disable\n", want: "", err: "pg_dump writes no such command"},
		{name: "shell", in: "SELECT 1;\n\\! id > /tmp/x\n", want: "SELECT 1;\n", err: `line 2: psql meta-command "\\!"`},
		{name: "shell glued", in: "\\!id\n", want: "", err: `psql meta-command "\\!id"`},
		{name: "mid-line", in: "SELECT 1; \\o /tmp/x\n", want: "", err: `line 1: psql meta-command "\\o"`},
		{name: "after a statement on its line", in: "SELECT 1 \\g /tmp/x\n", want: "", err: `psql meta-command "\\g"`},
		{name: "second command after connect", in: "\\connect shop \\! id\n", want: "", err: "pg_dump writes no such command"},
		{name: "backquote in connect", in: "\\connect `id`\n", want: "", err: "pg_dump writes no such command"},
		{name: "restrict mid-line", in: "SELECT 1; \\restrict abc\n", want: "", err: "pg_dump writes no such command"},
		{name: "restrict blanked", in: "\\restrict Ab1\nSELECT 1;\n\\unrestrict Ab1\n", want: "\nSELECT 1;\n\n"},
		{name: "backslash in strings passes", in: "SELECT '\\! id', E'\\\\o', $$\\i x$$; -- \\! no\n/* \\! no */\n", want: "SELECT '\\! id', E'\\\\o', $$\\i x$$; -- \\! no\n/* \\! no */\n"},
		{name: "copy data passes", in: "COPY t FROM stdin;\n\\! not a command\n\\.\n", want: "COPY t FROM stdin;\n\\! not a command\n\\.\n"},
		{name: "connect kv", in: "\\connect -reuse-previous=on \"host=h dbname='sh\\'op'\"\n", want: "", err: "switches to database \"sh'op\""},
		{name: "connect elsewhere", in: "SELECT 1;\n\\connect other\nSELECT 2;\n", want: "SELECT 1;\n", err: `the dump of "shop" switches to database "other"`},
		{name: "two databases", in: "CREATE DATABASE shop;\nCREATE DATABASE other;\n", want: "\n", err: `creates more than one database ("shop", then "other")`},
		{name: "other meta commands", in: "\\conninfo\n", want: "", err: `psql meta-command "\\conninfo"`},
		{name: "copy meta command", in: "\\copy t from x\n", want: "", err: `psql meta-command "\\copy"`},
		{name: "quoted source", in: "GRANT ALL ON DATABASE \"shop\" TO bob;\n", want: "GRANT ALL ON DATABASE tgt TO bob;\n"},
		{name: "upper-case bare source folds", in: "ALTER DATABASE SHOP SET a = 1;\n", want: "ALTER DATABASE tgt SET a = 1;\n"},
		{name: "quoted upper is another db", in: "ALTER DATABASE \"SHOP\" SET a = 1;\n", want: "ALTER DATABASE \"SHOP\" SET a = 1;\n"},
		{name: "other database untouched", in: "COMMENT ON DATABASE shop2 IS 'x';\nALTER DATABASE other OWNER TO bob;\n", want: "COMMENT ON DATABASE shop2 IS 'x';\nALTER DATABASE other OWNER TO bob;\n"},
		{name: "security label", in: "SECURITY LABEL FOR selinux ON DATABASE shop IS 'system_u:object_r:sepgsql_db_t:s0';\nSECURITY LABEL ON DATABASE shop IS 'x';\n",
			want: "SECURITY LABEL FOR selinux ON DATABASE tgt IS 'system_u:object_r:sepgsql_db_t:s0';\nSECURITY LABEL ON DATABASE tgt IS 'x';\n"},
		{name: "grant on a table named like a database", in: "GRANT SELECT ON TABLE \"ON DATABASE shop\" TO bob;\nREVOKE GRANT OPTION FOR ALL PRIVILEGES ON DATABASE shop FROM bob CASCADE;\n",
			want: "GRANT SELECT ON TABLE \"ON DATABASE shop\" TO bob;\nREVOKE GRANT OPTION FOR ALL PRIVILEGES ON DATABASE tgt FROM bob CASCADE;\n"},
		{name: "multi-line create database", in: "CREATE DATABASE shop\n  WITH ENCODING = 'UTF8'\n  LOCALE = 'C;x';\nSELECT 1;\n", want: "\n\n\nSELECT 1;\n"},
		{name: "statement in progress", in: "SELECT\nCREATE DATABASE shop;\n", want: "SELECT\nCREATE DATABASE shop;\n"},
		{name: "parenthesised semicolon", in: "CREATE RULE r AS ON INSERT TO t DO (SELECT 1;\nALTER DATABASE shop SET a = 1);\n", want: "CREATE RULE r AS ON INSERT TO t DO (SELECT 1;\nALTER DATABASE shop SET a = 1);\n"},
		{name: "block comment", in: "/* a /* nested */\n\\connect other\n*/ SELECT 1;\nALTER DATABASE shop SET a = 1;\n", want: "/* a /* nested */\n\\connect other\n*/ SELECT 1;\nALTER DATABASE tgt SET a = 1;\n"},
		{name: "line comment does not start a statement", in: "-- x\nALTER DATABASE shop SET a = 1; -- y\n", want: "-- x\nALTER DATABASE tgt SET a = 1; -- y\n"},
		{name: "E string with escaped quote", in: "SELECT E'it\\'s\n\\connect other\n';\n", want: "SELECT E'it\\'s\n\\connect other\n';\n"},
		{name: "E string with doubled quote", in: "SELECT E'a''b\\'\n\\connect other\n';\n", want: "SELECT E'a''b\\'\n\\connect other\n';\n"},
		{name: "standard string", in: "SELECT 'a\\';\n\\c shop\n", want: "SELECT 'a\\';\n\n"},
		{name: "word ending in e is no E string", in: "SELECT some'a\\';\n\\c shop\n", want: "SELECT some'a\\';\n\n"},
		{name: "dollar quotes", in: "SELECT $1, a$b, $x$ $$\n\\connect other\n$ $x $x$;\n\\c shop\n", want: "SELECT $1, a$b, $x$ $$\n\\connect other\n$ $x $x$;\n\n"},
		{name: "quoted identifier", in: "SELECT \"a\"\"\n\\connect other\n\";\n", want: "SELECT \"a\"\"\n\\connect other\n\";\n"},
		{name: "copy data", in: "COPY public.t (a) FROM stdin;\nCREATE DATABASE x;\n\\\\connect other\n\\connect other\n\\\\.\n\\.\n\\connect shop\n",
			want: "COPY public.t (a) FROM stdin;\nCREATE DATABASE x;\n\\\\connect other\n\\connect other\n\\\\.\n\\.\n\n"},
		{name: "copy lower case", in: "copy t from STDIN ;\n\\connect other\n\\.\n", want: "copy t from STDIN ;\n\\connect other\n\\.\n"},
		{name: "copy from a file is no data", in: "COPY t FROM '/x';\n\\c shop\n", want: "COPY t FROM '/x';\n\n"},
		{name: "crlf", in: "\\connect shop\r\nALTER DATABASE shop SET a = 1;\r\n", want: "\nALTER DATABASE tgt SET a = 1;\r\n"},
		{name: "no trailing newline", in: "SELECT 1;\n\\connect shop", want: "SELECT 1;\n"},
		{name: "long copy row", in: "COPY t FROM stdin;\n" + long + "\n\\.\n\\c shop\n", want: "COPY t FROM stdin;\n" + long + "\n\\.\n\n"},
		{name: "long comment", in: "COMMENT ON DATABASE shop IS '" + long + "';\n\\c shop\n", want: "COMMENT ON DATABASE tgt IS '" + long + "';\n\n"},
		{name: "long dropped statement", in: "CREATE DATABASE shop " + long + ";\nSELECT 1;\n", want: "\nSELECT 1;\n"},
		{name: "long line does not end copy", in: "COPY t FROM stdin;\n\\." + long + "\n\\c shop\n", want: "COPY t FROM stdin;\n\\." + long + "\n\\c shop\n"},
	} {
		for i, wrap := range []func(io.Reader) io.Reader{same, iotest.OneByteReader, chunks(7)} {
			out, _, err := rewriteAll([]byte(c.in), "shop", "tgt", wrap)
			if out != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Errorf("%s (reader %d):\n got %.300q, %v\nwant %.300q, %q", c.name, i, out, err, c.want, c.err)
			}
		}
	}
}

func TestRewriterComplete(t *testing.T) {
	in, err := os.ReadFile("testdata/shop.sql")
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.Index(in, []byte(completeMarker))
	for _, c := range []struct {
		in   []byte
		want bool
	}{
		{in, true},
		{in[:cut+len(completeMarker)+1], true},
		{in[:cut+5], false},
		{in[:len(in)/2], false},
		{[]byte("COPY t FROM stdin;\n" + completeMarker + "\n"), false}, // data, not the marker
		{[]byte("SELECT '\n" + completeMarker + "\n';\n"), false},
	} {
		_, complete, err := rewriteAll(c.in, "shop", "x", same)
		if err != nil || complete != c.want {
			t.Errorf("%d bytes: complete=%v err=%v, want %v", len(c.in), complete, err, c.want)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"shop": "shop", "shop_2$": "shop_2$", "_x": "_x", "Shop": `"Shop"`, "2shop": `"2shop"`,
		"a b": `"a b"`, `a"b`: `"a""b"`, "user": `"user"`, "table": `"table"`, "name": "name",
		"select": `"select"`, "été": `"été"`, "": `""`, "a-b": `"a-b"`,
	} {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseConnect(t *testing.T) {
	for _, c := range []struct {
		line   string
		isConn bool
		db     string
	}{
		{`\connect shop`, true, "shop"},
		{`  \c shop`, true, "shop"},
		{`\connect "Shop.V2"`, true, "Shop.V2"},
		{`\connect "a""b"`, true, `a"b`},
		{`\connect -reuse-previous=on "dbname='Weird Name'"`, true, "Weird Name"},
		{`\connect -reuse-previous=on "dbname='it\'s' host=x"`, true, "it's"},
		{`\connect 'quoted name'`, true, "quoted name"},
		{`\connect postgres://u@h/my%20db`, true, "my db"},
		{`\connect host=h`, true, ""},
		{`\connect`, true, ""},
		{`\connect - bob`, true, ""},
		{`\copy t from x`, false, ""},
		{`\cd /`, false, ""},
		{`SELECT 1`, false, ""},
	} {
		isConn, db, err := parseConnect([]byte(c.line))
		if err != nil || isConn != c.isConn || db != c.db {
			t.Errorf("parseConnect(%s) = %v %q %v, want %v %q", c.line, isConn, db, err, c.isConn, c.db)
		}
	}
	if _, _, err := parseConnect([]byte(`\connect "dbname='x"`)); err == nil {
		t.Errorf("unterminated conninfo value: no error")
	}
}

// BenchmarkRewriter measures throughput on a dump that is mostly COPY rows
// with some SQL between, as real dumps are.
func BenchmarkRewriter(b *testing.B) {
	var in bytes.Buffer
	for in.Len() < 32<<20 {
		in.WriteString("CREATE TABLE public.t (\n    id integer NOT NULL,\n    body text\n);\n\nALTER TABLE public.t OWNER TO postgres;\n\n")
		in.WriteString("COPY public.t (id, body) FROM stdin;\n")
		for i := 0; i < 2000; i++ {
			in.WriteString("12345\tsome text of a row that is neither short nor long, with a tab\\tand 'quotes'\n")
		}
		in.WriteString("\\.\n\n")
	}
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, newRewriter(bytes.NewReader(in.Bytes()), "shop", "tgt")); err != nil {
			b.Fatal(err)
		}
	}
}

// sessionMeta tells the lines every load blanks: the dump's own \restrict,
// \unrestrict and \encoding (the loader restricts psql itself).
func sessionMeta(line string) bool {
	for _, p := range []string{"\\restrict ", "\\unrestrict ", "\\encoding "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}
