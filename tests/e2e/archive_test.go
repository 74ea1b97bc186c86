package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestArchiveKeyKinds archives real pg_dump output (gzip and zstd) with every
// kind of key and decrypts each copy with the stock age CLI.
func TestArchiveKeyKinds(t *testing.T) {
	harness.Need(t, "ssh-keygen")
	w := newWorld(t, nil)
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "db1")
	pg.GenerateData(t, "db1", 5000)
	gz := mustRead(t, pg.Dump(t, "db1", "gzip"))
	zst := mustRead(t, pg.Dump(t, "db1", "zstd"))
	gzPath := filepath.Join(w.dir, "db1.sql.gz")
	zstPath := filepath.Join(w.dir, "db1.sql.zstd")
	os.WriteFile(gzPath, gz, 0o600)
	os.WriteFile(zstPath, zst, 0o600)

	xID, xRecip := harness.AgeKeygen(t, false)
	pqID, pqRecip := harness.AgeKeygen(t, true)
	edKey, _ := harness.SSHKeygen(t, "ed25519")
	rsaKey, rsaPub := harness.SSHKeygen(t, "rsa")
	recipFile := filepath.Join(w.dir, "recipients.txt")
	os.WriteFile(recipFile, []byte("# post-quantum recipient\n"+pqRecip+"\n"), 0o600)
	passFile := filepath.Join(w.dir, "passphrase")
	os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600)

	cases := []struct {
		name    string
		keyArgs []string
		dump    string
		content []byte
		decrypt func(t *testing.T, ct []byte) []byte
	}{
		{"x25519", []string{"--recipient", xRecip}, gzPath, gz, func(t *testing.T, ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", xID) }},
		{"post-quantum", []string{"--recipients-file", recipFile}, zstPath, zst, func(t *testing.T, ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", pqID) }},
		{"ssh-ed25519", []string{"--identity-file", edKey}, gzPath, gz, func(t *testing.T, ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", edKey) }},
		{"ssh-rsa", []string{"--recipient", rsaPub}, zstPath, zst, func(t *testing.T, ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", rsaKey) }},
		{"passphrase", []string{"--passphrase-file", passFile}, gzPath, gz, func(t *testing.T, ct []byte) []byte {
			return harness.AgeDecryptPassphrase(t, ct, "correct horse battery staple")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := "keys-" + c.name
			args := append(append([]string{"--prefix", prefix}, c.keyArgs...), "archive", "--database", "db1", "--file", c.dump)
			r := w.pgarchive(t, nil, args...)
			if r.exit != 0 {
				t.Fatalf("exit %d\n%s", r.exit, r.stderr)
			}
			suffix := ".sql" + filepath.Ext(c.dump) + ".age"
			for _, up := range w.upstreams(t) {
				data, _ := archivesIn(up.list(prefix))
				if len(data) != 1 || !strings.HasPrefix(data[0], prefix+"/db1/db1_") || !strings.HasSuffix(data[0], suffix) {
					t.Fatalf("%s: unexpected objects %v (want %s/db1/db1_<stamp>%s)", up.name, data, prefix, suffix)
				}
			}
			w.checkCopies(t, prefix, c.content, func(ct []byte) []byte { return c.decrypt(t, ct) })
			for _, secret := range []string{"AGE-SECRET-KEY", "correct horse", "PRIVATE KEY"} {
				if strings.Contains(r.stderr+r.stdout, secret) {
					t.Fatalf("output mentions %q:\n%s", secret, r.stderr)
				}
			}
			if n := strings.Count(r.stderr, ": stored "); n != 3 {
				t.Fatalf("want one line per upstream (3), got %d:\n%s", n, r.stderr)
			}
		})
	}
}

// TestArchiveFromStdin: pg_dump | zstd | pgarchive --file -, named from the magic bytes.
func TestArchiveFromStdin(t *testing.T) {
	w := newWorld(t, nil)
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "db2")
	pg.GenerateData(t, "db2", 1000)
	zst := mustRead(t, pg.Dump(t, "db2", "zstd"))
	id, recip := harness.AgeKeygen(t, false)
	r := w.pgarchive(t, zst, "-r", recip, "--prefix", "stdin", "archive", "--database", "db2", "--file", "-")
	if r.exit != 0 {
		t.Fatalf("exit %d\n%s", r.exit, r.stderr)
	}
	data, _ := archivesIn(w.upstreams(t)[0].list("stdin"))
	if len(data) != 1 || !strings.HasSuffix(data[0], ".sql.zstd.age") {
		t.Fatalf("stdin zstd dump stored as %v", data)
	}
	w.checkCopies(t, "stdin", zst, func(ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", id) })
}

// TestArchiveNeverOverwrites: back-to-back runs, same second or not, both land.
func TestArchiveNeverOverwrites(t *testing.T) {
	w := newWorld(t, nil)
	_, recip := harness.AgeKeygen(t, false)
	dump := filepath.Join(w.dir, "db3.sql")
	os.WriteFile(dump, []byte("-- tiny dump\nSELECT 1;\n-- PostgreSQL database dump complete\n"), 0o600)
	for i := 0; i < 3; i++ {
		if r := w.pgarchive(t, nil, "-r", recip, "archive", "--database", "db3", "--file", dump); r.exit != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.exit, r.stderr)
		}
	}
	for _, up := range w.upstreams(t) {
		data, mans := archivesIn(up.list("db3/"))
		if len(data) != 3 || len(mans) != 3 {
			t.Fatalf("%s: want 3 archives, got %v", up.name, up.list("db3/"))
		}
	}
}

// TestArchiveSmallMaxUploadParts: S3 with max_upload_parts = 3 still takes a
// 24 MiB dump (a stream of 5 MiB chunks would stop at 15 MiB), because the size is known; from stdin, the chunk size is
// raised to fit --stdin-max-size.
func TestArchiveSmallMaxUploadParts(t *testing.T) {
	w := newWorld(t, map[string]string{"max_upload_parts": "3", "upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	id, recip := harness.AgeKeygen(t, false)
	dump := harness.RandomDump(7, 24<<20, false)
	path := filepath.Join(w.dir, "big.sql")
	os.WriteFile(path, dump, 0o600)
	decrypt := func(ct []byte) []byte { return harness.AgeDecrypt(t, ct, "-i", id) }

	if r := w.pgarchive(t, nil, "-r", recip, "--prefix", "sized", "archive", "--database", "big", "--file", path); r.exit != 0 {
		t.Fatalf("known size: exit %d\n%s", r.exit, r.stderr)
	}
	w.checkCopies(t, "sized", dump, decrypt)
	for _, m := range w.minios {
		for _, o := range m.Objects(t, "sized/") {
			if strings.HasSuffix(o.Key, ".age") && !strings.Contains(o.ETag, "-") {
				t.Fatalf("%s was not a multipart upload (ETag %s): the test proves nothing", o.Key, o.ETag)
			}
		}
	}
	if r := w.pgarchive(t, dump, "-r", recip, "--prefix", "streamed", "archive", "--database", "big", "--file", "-", "--stdin-max-size", "64Mi"); r.exit != 0 {
		t.Fatalf("stdin: exit %d\n%s", r.exit, r.stderr)
	}
	w.checkCopies(t, "streamed", dump, decrypt)
}
