package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// healWorld uploads to MinIO in parts from 5 MiB on: such objects have no
// whole-object MD5, so a flipped byte there is invisible to the backend's
// hash and shows only when the bytes are read (the SHA-256 check).
func newHealWorld(t *testing.T) *backlogWorld {
	return newBacklogWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
}

// archived archives dump for db with every upstream up and returns its key.
func (w *backlogWorld) archived(t *testing.T, db string, dump []byte) string {
	t.Helper()
	if r := w.archive(t, db, dump); r.exit != 0 {
		t.Fatalf("archive %s: exit %d\n%s", db, r.exit, r.stderr)
	}
	data, _ := archivesIn(w.minios[0].ListObjects(t, db+"/"))
	if len(data) != 1 {
		t.Fatalf("%s: want one archive, got %v", db, data)
	}
	return data[0]
}

func (w *backlogWorld) flipLocal(t *testing.T, key string) {
	t.Helper()
	p := filepath.Join(w.local, filepath.FromSlash(key))
	b := mustRead(t, p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o600)
}

// TestHealDeletedAndDamaged: minio-b lost its data object (the manifest
// stays: NO-DATA) and the local copy has a flipped byte (its CRC-32 shows
// it). --dry-run only tells; heal then restores both from minio-a, the
// only intact copy, and verify passes.
func TestHealDeletedAndDamaged(t *testing.T) {
	w := newHealWorld(t)
	dump := harness.RandomBytes(51, 6<<20)
	key := w.archived(t, "db1", dump)
	w.minios[1].DeleteObject(t, key)
	w.flipLocal(t, key)

	r := w.cmd(t, "heal", "--dry-run")
	if r.exit != 0 || !strings.Contains(r.stderr, "would heal "+key+" on "+w.minioB+" (no-data) from minio-a:pgarchive") ||
		!strings.Contains(r.stderr, "would heal "+key+" on "+w.local+" (damaged: its backend hash differs from the manifest)") {
		t.Fatalf("dry run: exit %d\n%s", r.exit, r.stderr)
	}
	if objs := w.minios[1].ListObjects(t, key); len(objs) != 1 {
		t.Fatalf("dry run changed minio-b: %v", objs)
	}
	r = w.cmd(t, "heal")
	for _, want := range []string{
		"healed " + key + " on " + w.minioB + " from minio-a:pgarchive",
		"healed " + key + " on " + w.local + " from minio-a:pgarchive",
		"2 copies healed",
	} {
		if r.exit != 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("heal: exit %d, want %q\n%s", r.exit, want, r.stderr)
		}
	}
	w.checkWhole(t, key, dump)
	if r := w.cmd(t, "verify"); r.exit != 0 {
		t.Fatalf("verify after heal: exit %d\n%s", r.exit, r.stderr)
	}
	if r := w.cmd(t, "heal"); r.exit != 0 || !strings.Contains(r.stderr, "0 copies healed") {
		t.Fatalf("second heal: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestHealSkipsDamagedSource: minio-a's copy has a flipped byte that its
// backend hash can't show (multipart), and minio-b lost the archive
// entirely. A quick heal tries minio-a first as the source; its SHA-256 gives it away,
// so minio-b is healed from the local folder, and minio-a is healed too.
// The damaged bytes never get a manifest anywhere.
func TestHealSkipsDamagedSource(t *testing.T) {
	w := newHealWorld(t)
	dump := harness.RandomBytes(52, 6<<20)
	key := w.archived(t, "db2", dump)
	if etag := w.minios[0].Objects(t, key)[0].ETag; !strings.Contains(etag, "-") {
		t.Fatalf("want a multipart object on minio-a, ETag %s", etag)
	}
	w.minios[0].FlipByte(t, key, 4<<20)
	w.minios[1].DeleteObject(t, key)
	w.minios[1].DeleteObject(t, key+".manifest.json")

	// --quick: no backend hashes asked for, so the sources are tried in
	// the union's order (a full heal would prefer the local copy, whose
	// CRC-32 it confirmed, and never read minio-a's).
	r := w.cmd(t, "heal", "--quick", "--database", "db2")
	for _, want := range []string{
		key + " on minio-a:pgarchive is damaged: content differs from the manifest",
		"healed " + key + " on " + w.minioB + " from " + w.local + " (was missing",
		"healed " + key + " on minio-a:pgarchive from " + w.local,
		"1 copy found damaged while read",
	} {
		if r.exit != 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("heal: exit %d, want %q\n%s", r.exit, want, r.stderr)
		}
	}
	w.checkWhole(t, key, dump)
	if r := w.cmd(t, "verify", "--database", "db2"); r.exit != 0 {
		t.Fatalf("verify: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestHealNothingGood: every complete copy damaged: heal fails naming the
// archive, and the copy it could not heal gets no manifest.
func TestHealNothingGood(t *testing.T) {
	w := newHealWorld(t)
	key := w.archived(t, "db1", harness.RandomBytes(53, 6<<20))
	w.minios[0].FlipByte(t, key, 100)
	w.flipLocal(t, key)
	w.minios[1].DeleteObject(t, key)
	w.minios[1].DeleteObject(t, key+".manifest.json")
	r := w.cmd(t, "heal", "--quick")
	if r.exit != 1 || !strings.Contains(r.stderr, "could not heal "+key+" on "+w.minioB) {
		t.Fatalf("heal: exit %d\n%s", r.exit, r.stderr)
	}
	if objs := w.minios[1].ListObjects(t, key+".manifest.json"); len(objs) != 0 {
		t.Fatalf("minio-b got a manifest from a damaged source")
	}
}

// TestArchiveHeal: archive --heal copies the database's older archive that
// minio-b lost back from another upstream, after its own upload.
func TestArchiveHeal(t *testing.T) {
	w := newBacklogWorld(t, nil)
	dump := harness.RandomBytes(54, 1<<20)
	old := w.archived(t, "db1", dump)
	w.minios[1].DeleteObject(t, old)
	w.minios[1].DeleteObject(t, old+".manifest.json")
	path := filepath.Join(w.dir, "db1.sql.gz")
	os.WriteFile(path, harness.RandomBytes(55, 1<<20), 0o600)
	r := w.pgarchive(t, nil, "-r", w.recip, "--state-dir", w.state, "archive", "--database", "db1", "--file", path, "--heal")
	if r.exit != 0 || !strings.Contains(r.stderr, "healed "+old+" on "+w.minioB+" from minio-a:pgarchive") {
		t.Fatalf("archive --heal: exit %d\n%s", r.exit, r.stderr)
	}
	if strings.Index(r.stderr, "healed ") < strings.Index(r.stderr, "archived ") {
		t.Fatalf("heal ran before the upload:\n%s", r.stderr)
	}
	w.checkWhole(t, old, dump)
}
