package harness_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pg := harness.StartPostgres(t)
	t.Logf("cluster up in %s (socket %s, port %d)", time.Since(start).Round(time.Millisecond), pg.SocketDir, pg.Port)

	pg.CreateDB(t, "appdb")
	pg.GenerateData(t, "appdb", 500)
	if got := pg.Query(t, "appdb", "SELECT count(*) FROM registrations"); got != "500" {
		t.Fatalf("registrations rows = %q", got)
	}
	if got := pg.Query(t, "appdb", "SELECT count(*) FROM events"); got != "1000" {
		t.Fatalf("events rows = %q", got)
	}
	pg.Exec(t, "appdb", "CREATE TABLE extra (v text)")
	pg.Exec(t, "appdb", "INSERT INTO extra VALUES ('x')")

	plainPath := pg.Dump(t, "appdb", "none")
	plain := readFile(t, plainPath)
	if !bytes.HasPrefix(plain, []byte("--\n-- PostgreSQL database dump")) ||
		!bytes.Contains(plain, []byte("CREATE DATABASE appdb")) || !bytes.Contains(plain, []byte("Zoë")) {
		t.Fatalf("plain dump %s does not look like pg_dump -C output:\n%.300s", plainPath, plain)
	}
	if filepath.Base(plainPath) != "appdb.sql" {
		t.Fatalf("plain dump name %s", plainPath)
	}
	st, err := os.Stat(plainPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("dump mode %v, want 0600 (nixpkgs umask 0077)", st.Mode().Perm())
	}
	if os.Geteuid() == 0 && st.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Errorf("dump owned by root; nixpkgs runs pg_dump as the postgres account")
	}

	gzPath := pg.Dump(t, "appdb", "gzip")
	gz := readFile(t, gzPath)
	if !bytes.HasPrefix(gz, gzipMagic) || !strings.HasSuffix(gzPath, "/appdb.sql.gz") {
		t.Fatalf("gzip dump %s starts % x", gzPath, gz[:4])
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// Each pg_dump (15.14+) writes a random \restrict key, hence NormalizeDump.
	if !bytes.Equal(harness.NormalizeDump(unzipped), harness.NormalizeDump(plain)) {
		t.Fatalf("gunzipped dump differs from plain dump (%d vs %d bytes): data must be deterministic", len(unzipped), len(plain))
	}

	zstPath := pg.Dump(t, "appdb", "zstd")
	zst := readFile(t, zstPath)
	if !bytes.HasPrefix(zst, zstdMagic) || !strings.HasSuffix(zstPath, "/appdb.sql.zstd") {
		t.Fatalf("zstd dump %s starts % x", zstPath, zst[:4])
	}

	// A second dump rotates the first to .prev, as nixpkgs does.
	pg.Dump(t, "appdb", "gzip")
	if _, err := os.Stat(filepath.Join(pg.DumpDir, "appdb.prev.sql.gz")); err != nil {
		t.Fatalf("no .prev after second dump: %v", err)
	}

	// A second cluster at the same time, restored from the dump, has the same data.
	other := harness.StartPostgres(t)
	if other.SocketDir == pg.SocketDir || other.DataDir == pg.DataDir {
		t.Fatal("clusters share directories")
	}
	other.Restore(t, plain)
	if a, b := pg.Fingerprint(t, "appdb"), other.Fingerprint(t, "appdb"); a != b || !strings.Contains(a, "registrations=500:") {
		t.Fatalf("restored fingerprint differs:\n%s\n%s", a, b)
	}
	other.Stop()
	other.Stop() // idempotent

	pg.Restart(t)
	if got := pg.Query(t, "appdb", "SELECT v FROM extra"); got != "x" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestMinIO(t *testing.T) {
	t.Parallel()
	start := time.Now()
	a := harness.StartMinIO(t)
	b := harness.StartMinIO(t)
	t.Logf("two MinIOs up in %s: %s %s", time.Since(start).Round(time.Millisecond), a.Endpoint(), b.Endpoint())
	if a.Port == b.Port || a.AccessKey == b.AccessKey || a.Bucket != "pgarchive" {
		t.Fatalf("servers not independent: %+v %+v", a, b)
	}

	data := harness.RandomBytes(1, 300_000)
	a.PutObject(t, "db/appdb.sql.gz.age", data)
	a.PutObject(t, "db/other: name.age", []byte("x"))
	a.PutObject(t, "top.txt", []byte("hello"))
	if got := a.ReadObject(t, "db/appdb.sql.gz.age"); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	if got := strings.Join(a.ListObjects(t, "db/"), ","); got != "db/appdb.sql.gz.age,db/other: name.age" {
		t.Fatalf("ListObjects = %s", got)
	}
	if got := a.ObjectPaths(t); len(got) != 3 {
		t.Fatalf("ObjectPaths = %v", got)
	}
	objs := a.Objects(t, "db/appdb")
	if len(objs) != 1 || objs[0].Size != int64(len(data)) || objs[0].ETag == "" {
		t.Fatalf("Objects = %+v", objs)
	}
	if h := a.HeadObject(t, "top.txt"); h == nil || h.Get("Content-Length") != "5" {
		t.Fatalf("HeadObject = %v", h)
	}
	if h := a.HeadObject(t, "missing"); h != nil {
		t.Fatalf("HeadObject(missing) = %v", h)
	}
	if len(b.ObjectPaths(t)) != 0 {
		t.Fatal("second server sees first server's objects")
	}

	a.FlipByte(t, "db/appdb.sql.gz.age", 1000)
	flipped := a.ReadObject(t, "db/appdb.sql.gz.age")
	if len(flipped) != len(data) || flipped[1000] != data[1000]^0xff || !bytes.Equal(flipped[1001:], data[1001:]) {
		t.Fatal("FlipByte did not flip exactly byte 1000")
	}
	a.FlipByte(t, "top.txt", -1)
	if got := a.ReadObject(t, "top.txt"); got[4] != 'o'^0xff {
		t.Fatalf("FlipByte(-1) = %q", got)
	}
	a.DeleteObject(t, "db/other: name.age")
	if got := a.ListObjects(t, "db/"); len(got) != 1 {
		t.Fatalf("after delete: %v", got)
	}

	// Kill (fault injection), then restart on the same data and port.
	b.PutObject(t, "survivor", []byte("still here"))
	b.Kill()
	if resp, err := http.Get(b.Endpoint() + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("killed server still answers")
	}
	b.Start(t)
	if got := string(b.ReadObject(t, "survivor")); got != "still here" {
		t.Fatalf("after restart: %q", got)
	}
	b.Stop()
	b.Stop()
	b.Start(t)
	if got := b.ListObjects(t, ""); len(got) != 1 {
		t.Fatalf("after graceful restart: %v", got)
	}

	dir := t.TempDir()
	local := filepath.Join(dir, "local-copies")
	conf := harness.WriteSeedRcloneConf(t, dir, local, map[string]string{"max_upload_parts": "3"}, a, b)
	text := string(readFile(t, conf))
	wantUnion := "[archive-target-database]\ntype = union\nupstreams = minio-a:pgarchive minio-b:pgarchive " + local +
		"\ncreate_policy = all\naction_policy = all\nsearch_policy = ff\n"
	for _, want := range []string{
		"[minio-a]\ntype = s3\nprovider = Minio\nendpoint = " + a.Endpoint() + "\naccess_key_id = " + a.AccessKey +
			"\nsecret_access_key = " + a.SecretKey + "\nregion = us-east-1\nmax_upload_parts = 3\n",
		"[minio-b]\n", "endpoint = " + b.Endpoint() + "\n", wantUnion,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("rclone.conf lacks %q:\n%s", want, text)
		}
	}
	if st, err := os.Stat(conf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("rclone.conf mode: %v %v", st, err)
	}
	if st, err := os.Stat(local); err != nil || !st.IsDir() {
		t.Fatalf("local upstream dir not created: %v", err)
	}
	plain := harness.WriteRcloneConf(t, t.TempDir(), a.RcloneSection("x", map[string]string{"region": "eu"}), "[y]\ntype = local")
	if got := string(readFile(t, plain)); !strings.Contains(got, "region = eu\n") || strings.Contains(got, "us-east-1") ||
		!strings.HasSuffix(got, "\n\n[y]\ntype = local\n") {
		t.Fatalf("WriteRcloneConf:\n%s", got)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
