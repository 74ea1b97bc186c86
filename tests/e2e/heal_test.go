package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// healMetrics reads pgarchive-heal.prom in mdir: name's values for db,
// by shortUpstream.
func healMetrics(t *testing.T, mdir, name, db string) map[string]float64 {
	t.Helper()
	return byUpstream(t, parseTextfile(t, filepath.Join(mdir, "pgarchive-heal.prom")), name, db, "heal")
}

func (w *backlogWorld) metricsDir(t *testing.T) string {
	t.Helper()
	mdir := filepath.Join(w.dir, "metrics")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	return mdir
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
// only intact copy, and verify passes. With --metrics-dir, the heal records
// a success and one complete archive per upstream (the dry run nothing);
// with minio-b down, minio-b gets a failure and loses its count.
func TestHealDeletedAndDamaged(t *testing.T) {
	w := newHealWorld(t)
	mdir := w.metricsDir(t)
	dump := harness.RandomDump(51, 6<<20, true)
	key := w.archived(t, "db1", dump)
	w.minios[1].DeleteObject(t, key)
	w.flipLocal(t, key)

	r := w.cmd(t, "--metrics-dir", mdir, "heal", "--dry-run")
	if r.exit != 0 || !strings.Contains(r.stderr, "would heal "+key+" on "+w.minioB+" (no-data) from minio-a:pgarchive") ||
		!strings.Contains(r.stderr, "would heal "+key+" on "+w.local+" (damaged: its backend hash differs from the manifest)") {
		t.Fatalf("dry run: exit %d\n%s", r.exit, r.stderr)
	}
	if objs := w.minios[1].ListObjects(t, key); len(objs) != 1 {
		t.Fatalf("dry run changed minio-b: %v", objs)
	}
	if _, err := os.Stat(filepath.Join(mdir, "pgarchive-heal.prom")); err == nil {
		t.Fatal("a dry run wrote metrics")
	}
	before := float64(time.Now().Unix())
	r = w.cmd(t, "--metrics-dir", mdir, "heal")
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
	succ := healMetrics(t, mdir, "pgarchive_last_success_timestamp_seconds", "db1")
	want := map[string]float64{"minio-a": 1, "minio-b": 1, "local": 1}
	if got := healMetrics(t, mdir, "pgarchive_archives", "db1"); !sameFloats(got, want) || len(succ) != 3 {
		t.Fatalf("after heal: archives %v, want %v; success %v\n%s", got, want, succ, mustRead(t, filepath.Join(mdir, "pgarchive-heal.prom")))
	}
	for up, v := range succ {
		if v < before {
			t.Errorf("%s: last success %v, before the run (%v)", up, v, before)
		}
	}
	if f := healMetrics(t, mdir, "pgarchive_last_failure_timestamp_seconds", "db1"); len(f) != 0 {
		t.Errorf("failures after a clean heal: %v", f)
	}
	onlyProm(t, mdir)
	if r := w.cmd(t, "verify"); r.exit != 0 {
		t.Fatalf("verify after heal: exit %d\n%s", r.exit, r.stderr)
	}
	if r := w.cmd(t, "heal"); r.exit != 0 || !strings.Contains(r.stderr, "0 copies healed") {
		t.Fatalf("second heal: exit %d\n%s", r.exit, r.stderr)
	}

	// minio-b can't be listed: a failure there, its count unknown (the
	// series goes); the others succeed again.
	w.minios[1].Stop()
	time.Sleep(1100 * time.Millisecond)
	if r := w.cmd(t, "--low-level-retries", "1", "--metrics-dir", mdir, "heal", "--quick"); r.exit != 1 {
		t.Fatalf("heal with minio-b down: exit %d\n%s", r.exit, r.stderr)
	}
	fail := healMetrics(t, mdir, "pgarchive_last_failure_timestamp_seconds", "db1")
	after := healMetrics(t, mdir, "pgarchive_last_success_timestamp_seconds", "db1")
	if len(fail) != 1 || fail["minio-b"] <= succ["minio-b"] || after["minio-b"] != succ["minio-b"] || after["minio-a"] <= succ["minio-a"] {
		t.Errorf("with minio-b down: failure %v, success %v (was %v)", fail, after, succ)
	}
	want = map[string]float64{"minio-a": 1, "local": 1}
	if got := healMetrics(t, mdir, "pgarchive_archives", "db1"); !sameFloats(got, want) {
		t.Errorf("with minio-b down: archives %v, want %v", got, want)
	}
}

// TestHealSkipsDamagedSource: minio-a's copy has a flipped byte that its
// backend hash can't show (multipart), and minio-b lost the archive
// entirely. A quick heal tries minio-a first as the source; its SHA-256 gives it away,
// so minio-b is healed from the local folder, and minio-a is healed too.
// The damaged bytes never get a manifest anywhere.
func TestHealSkipsDamagedSource(t *testing.T) {
	w := newHealWorld(t)
	dump := harness.RandomDump(52, 6<<20, true)
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
// archive, and the copy it could not heal gets no manifest. The metrics
// show a failure and no complete archive on every upstream.
func TestHealNothingGood(t *testing.T) {
	w := newHealWorld(t)
	mdir := w.metricsDir(t)
	key := w.archived(t, "db1", harness.RandomDump(53, 6<<20, true))
	w.minios[0].FlipByte(t, key, 100)
	w.flipLocal(t, key)
	w.minios[1].DeleteObject(t, key)
	w.minios[1].DeleteObject(t, key+".manifest.json")
	r := w.cmd(t, "--metrics-dir", mdir, "heal", "--quick")
	if r.exit != 1 || !strings.Contains(r.stderr, "could not heal "+key+" on "+w.minioB) {
		t.Fatalf("heal: exit %d\n%s", r.exit, r.stderr)
	}
	if f := healMetrics(t, mdir, "pgarchive_last_failure_timestamp_seconds", "db1"); len(f) != 3 {
		t.Errorf("want a failure on all three upstreams, got %v", f)
	}
	if s := healMetrics(t, mdir, "pgarchive_last_success_timestamp_seconds", "db1"); len(s) != 0 {
		t.Errorf("successes after a failed heal: %v", s)
	}
	want := map[string]float64{"minio-a": 0, "minio-b": 0, "local": 0}
	if got := healMetrics(t, mdir, "pgarchive_archives", "db1"); !sameFloats(got, want) {
		t.Errorf("archives %v, want %v", got, want)
	}
	if objs := w.minios[1].ListObjects(t, key+".manifest.json"); len(objs) != 0 {
		t.Fatalf("minio-b got a manifest from a damaged source")
	}
}

// TestArchiveHeal: archive --heal copies the database's older archive that
// minio-b lost back from another upstream, after its own upload, and
// records the heal in pgarchive-heal.prom: both archives on every upstream.
func TestArchiveHeal(t *testing.T) {
	w := newBacklogWorld(t, nil)
	mdir := w.metricsDir(t)
	dump := harness.RandomDump(54, 1<<20, true)
	old := w.archived(t, "db1", dump)
	w.minios[1].DeleteObject(t, old)
	w.minios[1].DeleteObject(t, old+".manifest.json")
	path := filepath.Join(w.dir, "db1.sql.gz")
	os.WriteFile(path, harness.RandomDump(55, 1<<20, true), 0o600)
	r := w.pgarchive(t, nil, "-r", w.recip, "--state-dir", w.state, "--metrics-dir", mdir, "archive", "--database", "db1", "--file", path, "--heal")
	if r.exit != 0 || !strings.Contains(r.stderr, "healed "+old+" on "+w.minioB+" from minio-a:pgarchive") {
		t.Fatalf("archive --heal: exit %d\n%s", r.exit, r.stderr)
	}
	if strings.Index(r.stderr, "healed ") < strings.Index(r.stderr, "archived ") {
		t.Fatalf("heal ran before the upload:\n%s", r.stderr)
	}
	w.checkWhole(t, old, dump)
	want := map[string]float64{"minio-a": 2, "minio-b": 2, "local": 2}
	if got := healMetrics(t, mdir, "pgarchive_archives", "db1"); !sameFloats(got, want) {
		t.Errorf("archives %v, want %v", got, want)
	}
	if s := healMetrics(t, mdir, "pgarchive_last_success_timestamp_seconds", "db1"); len(s) != 3 {
		t.Errorf("want a success on all three upstreams, got %v", s)
	}
	onlyProm(t, mdir)
}
