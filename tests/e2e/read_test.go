package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// readWorld is a world with one archived real pg_dump -C of db1 (gzip).
type readWorld struct {
	*world
	pg       *harness.Postgres
	dumpGz   []byte
	idPath   string
	key      string // data object key of the archive
	sqlPlain []byte
}

func newReadWorld(t *testing.T, w *world, rows int) *readWorld {
	t.Helper()
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "db1")
	pg.GenerateData(t, "db1", rows)
	pg.Exec(t, "db1", "COMMENT ON DATABASE db1 IS 'production'")
	gzPath := pg.Dump(t, "db1", "gzip")
	idPath, recip := harness.AgeKeygen(t, false)
	if r := w.pgarchive(t, nil, "--recipient", recip, "archive", "--database", "db1", "--file", gzPath); r.exit != 0 {
		t.Fatalf("archive: %d\n%s", r.exit, r.stderr)
	}
	rw := &readWorld{world: w, pg: pg, dumpGz: mustRead(t, gzPath), idPath: idPath}
	zr, err := gzip.NewReader(bytes.NewReader(rw.dumpGz))
	if err != nil {
		t.Fatal(err)
	}
	rw.sqlPlain, _ = io.ReadAll(zr)
	data, _ := archivesIn(w.upstreams(t)[0].list("db1/"))
	if len(data) != 1 {
		t.Fatalf("want one archive, got %v", data)
	}
	rw.key = data[0]
	return rw
}

type listedArchive struct {
	Key      string `json:"key"`
	Complete int    `json:"complete_copies"`
	Healthy  bool   `json:"healthy"`
	Copies   []struct {
		Upstream string `json:"upstream"`
		State    string `json:"state"`
	} `json:"copies"`
}

func (w *world) listJSON(t *testing.T, args ...string) []listedArchive {
	t.Helper()
	r := w.pgarchive(t, nil, append([]string{"list", "--json"}, args...)...)
	if r.exit != 0 {
		t.Fatalf("list: %d\n%s", r.exit, r.stderr)
	}
	var out []listedArchive
	decodeJSON(t, []byte(r.stdout), &out)
	return out
}

// TestRoundTrip restores a real archive to stdout (byte for byte the dump,
// decompressed and raw) and into databases of other names, in the same
// cluster (the original stays untouched) and in a second cluster, comparing
// every table.
func TestRoundTrip(t *testing.T) {
	w := newWorld(t, nil)
	rw := newReadWorld(t, w, 3000)

	listed := w.listJSON(t)
	if len(listed) != 1 || !listed[0].Healthy || listed[0].Complete != 3 {
		t.Fatalf("list: %+v", listed)
	}
	table := w.pgarchive(t, nil, "list", "--database", "db1")
	if table.exit != 0 || !strings.Contains(table.stdout, "db1_") || strings.Count(table.stdout, " ok") < 3 {
		t.Fatalf("list table:\n%s\n%s", table.stdout, table.stderr)
	}

	out := w.pgarchive(t, nil, "restore", "--database", "db1", "--output", "-", "--identity-file", rw.idPath)
	if out.exit != 0 || out.stdout != string(rw.sqlPlain) {
		t.Fatalf("restore --output - (exit %d) is not the dump (%d vs %d bytes)\n%s", out.exit, len(out.stdout), len(rw.sqlPlain), out.stderr)
	}
	raw := w.pgarchive(t, nil, "restore", "-d", "db1", "--archive", filepath.Base(rw.key), "--raw", "--output", "-", "-i", rw.idPath)
	if raw.exit != 0 || raw.stdout != string(rw.dumpGz) {
		t.Fatalf("restore --raw is not the .sql.gz byte for byte (exit %d)\n%s", raw.exit, raw.stderr)
	}
	file := filepath.Join(w.dir, "restored.sql")
	if r := w.pgarchive(t, nil, "restore", "-d", "db1", "--output", file, "-i", rw.idPath); r.exit != 0 || !bytes.Equal(mustRead(t, file), rw.sqlPlain) {
		t.Fatalf("restore --output FILE: %d\n%s", r.exit, r.stderr)
	}
	if r := w.pgarchive(t, nil, "restore", "-d", "db1", "--output", file, "-i", rw.idPath); r.exit == 0 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("an existing --output file must not be overwritten without --force: %d\n%s", r.exit, r.stderr)
	}

	want := rw.pg.Fingerprint(t, "db1")
	same := connString(rw.pg, "db1_dev")
	if r := w.pgarchive(t, nil, "restore", "-d", "db1", "--into", same, "-i", rw.idPath); r.exit != 0 {
		t.Fatalf("restore --into same cluster: %d\n%s", r.exit, r.stderr)
	}
	if got := rw.pg.Fingerprint(t, "db1_dev"); got != want {
		t.Fatalf("db1_dev differs from db1:\n%s\n%s", got, want)
	}
	if got := rw.pg.Fingerprint(t, "db1"); got != want {
		t.Fatal("restoring under another name changed the original database")
	}
	if c := rw.pg.Query(t, "db1_dev", "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'db1_dev'"); c != "production" {
		t.Errorf("the database comment was not carried over to the new name: %q", c)
	}

	pg2 := harness.StartPostgres(t)
	if r := w.pgarchive(t, nil, "restore", "-d", "db1", "--into", connString(pg2, "db1_copy"), "-i", rw.idPath); r.exit != 0 {
		t.Fatalf("restore --into second cluster: %d\n%s", r.exit, r.stderr)
	}
	if got := pg2.Fingerprint(t, "db1_copy"); got != want {
		t.Fatalf("second cluster differs:\n%s\n%s", got, want)
	}
	if n := pg2.Query(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'db1'"); n != "0" {
		t.Error("restore --into db1_copy also created db1 (the dump's CREATE DATABASE ran)")
	}

	// A non-empty target is refused; --sanitize runs after loading.
	r := w.pgarchive(t, nil, "restore", "-d", "db1", "--into", connString(pg2, "db1_copy"), "-i", rw.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, "not empty") {
		t.Fatalf("restore into a non-empty database must be refused: %d\n%s", r.exit, r.stderr)
	}
	if got := pg2.Fingerprint(t, "db1_copy"); got != want {
		t.Fatal("the refused restore changed the target")
	}
	scrub := filepath.Join(w.dir, "scrub.sql")
	os.WriteFile(scrub, []byte("UPDATE registrations SET email = 'user' || id || '@invalid', full_name = 'anonymous';\n"), 0o644)
	r = w.pgarchive(t, nil, "restore", "-d", "db1", "--into", connString(pg2, "db1_copy"), "--force", "--sanitize", scrub, "-i", rw.idPath)
	if r.exit != 0 {
		t.Fatalf("restore --force --sanitize: %d\n%s", r.exit, r.stderr)
	}
	if n := pg2.Query(t, "db1_copy", "SELECT count(*) FROM registrations WHERE full_name <> 'anonymous' OR email NOT LIKE '%@invalid'"); n != "0" {
		t.Errorf("sanitize left %s rows unscrubbed", n)
	}
	if n := pg2.Query(t, "db1_copy", "SELECT count(*) FROM registrations"); n != "3000" {
		t.Errorf("after --force: %s registrations, want 3000", n)
	}
}

// TestDamagedCopies flips a byte of one MinIO copy and deletes another:
// list shows the deleted one, verify names both, verify --deep catches the
// flip, and restore falls back to a good copy.
func TestDamagedCopies(t *testing.T) {
	w := newWorld(t, nil)
	rw := newReadWorld(t, w, 2000)
	ct := w.minios[0].ReadObject(t, rw.key)
	w.minios[0].FlipByte(t, rw.key, int64(len(ct))/2)
	w.minios[1].DeleteObject(t, rw.key)
	flipped, deleted := harness.MinIORemoteName(0)+":"+w.minios[0].Bucket, harness.MinIORemoteName(1)+":"+w.minios[1].Bucket

	listed := w.listJSON(t)
	if len(listed) != 1 || listed[0].Healthy || listed[0].Complete != 2 {
		t.Fatalf("list after the damage: %+v", listed)
	}
	for _, c := range listed[0].Copies {
		if c.Upstream == deleted && c.State != "no-data" {
			t.Errorf("deleted copy shows as %q", c.State)
		}
	}
	table := w.pgarchive(t, nil, "list")
	if !strings.Contains(table.stdout, "NO-DATA") || !strings.Contains(table.stdout, "1 without a complete copy on every upstream") {
		t.Errorf("list table does not show the damage:\n%s", table.stdout)
	}

	v := w.pgarchive(t, nil, "verify")
	if v.exit == 0 || !strings.Contains(v.stderr, rw.key+" on "+flipped+": md5") || !strings.Contains(v.stderr, rw.key+" on "+deleted+": manifest without data") {
		t.Fatalf("verify must name both damaged copies (exit %d):\n%s", v.exit, v.stderr)
	}
	deep := w.pgarchive(t, nil, "verify", "--deep", "--latest", "--identity-file", rw.idPath)
	if deep.exit == 0 || !strings.Contains(deep.stderr, rw.key+" on "+flipped+": md5") {
		t.Fatalf("verify --deep: %d\n%s", deep.exit, deep.stderr)
	}
	if !strings.Contains(deep.stderr, w.local+" (size, crc32, decrypted)") {
		t.Errorf("verify --deep should decrypt the good local copy:\n%s", deep.stderr)
	}

	r := w.pgarchive(t, nil, "restore", "-d", "db1", "--output", "-", "-i", rw.idPath)
	if r.exit != 0 || r.stdout != string(rw.sqlPlain) {
		t.Fatalf("restore must fall back to the good copy: %d\n%s", r.exit, r.stderr)
	}
	if !strings.Contains(r.stderr, "copy on "+flipped+" failed") || !strings.Contains(r.stderr, "from "+w.local) {
		t.Errorf("restore should say it fell back from %s to %s:\n%s", flipped, w.local, r.stderr)
	}
}

// TestDeepVerifyCatchesFlipWithoutHash: a local upstream's copy is flipped
// in place; keyless verify sees it through CRC-32, and --deep through age.
func TestDeepVerifyLocalFlip(t *testing.T) {
	w := newWorld(t, nil)
	rw := newReadWorld(t, w, 200)
	p := filepath.Join(w.local, rw.key)
	b := mustRead(t, p)
	b[len(b)-10] ^= 0xFF
	os.WriteFile(p, b, 0o600)
	v := w.pgarchive(t, nil, "verify", "--deep", "-i", rw.idPath)
	if v.exit == 0 || !strings.Contains(v.stderr, rw.key+" on "+w.local+": crc32") {
		t.Fatalf("verify: %d\n%s", v.exit, v.stderr)
	}
	if !strings.Contains(v.stderr, "verify: 1 archive, 2 copies ok, 1 problem") {
		t.Errorf("summary:\n%s", v.stderr)
	}
}

func connString(pg *harness.Postgres, db string) string {
	return "host=" + pg.SocketDir + " port=" + strconv.Itoa(pg.Port) + " user=" + pg.Superuser + " dbname=" + db
}
