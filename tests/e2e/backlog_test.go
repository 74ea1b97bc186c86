package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// backlogWorld is the world plus a state directory and a key.
type backlogWorld struct {
	*world
	state  string
	id     string
	recip  string
	minioB string // minio-b's upstream name
}

func newBacklogWorld(t *testing.T, extra map[string]string) *backlogWorld {
	return backlogWorldOf(t, newWorld(t, extra))
}

func backlogWorldOf(t *testing.T, w *world) *backlogWorld {
	id, recip := harness.AgeKeygen(t, false)
	return &backlogWorld{world: w, state: filepath.Join(w.dir, "state"), id: id, recip: recip,
		minioB: harness.MinIORemoteName(1) + ":" + harness.DefaultBucket}
}

// archive writes dump as dbN.sql.gz and archives it with the backlog on.
func (w *backlogWorld) archive(t *testing.T, db string, dump []byte, extra ...string) run {
	t.Helper()
	path := filepath.Join(w.dir, db+".sql.gz")
	os.WriteFile(path, dump, 0o600)
	args := append([]string{"-r", w.recip, "--state-dir", w.state}, extra...)
	args = append(args, "archive", "--database", db, "--file", path)
	return w.pgarchive(t, nil, args...)
}

func (w *backlogWorld) cmd(t *testing.T, args ...string) run {
	t.Helper()
	return w.pgarchive(t, nil, append([]string{"--state-dir", w.state}, args...)...)
}

func (w *backlogWorld) entries(t *testing.T) []*backlog.Entry {
	t.Helper()
	es, err := backlog.List(w.state, "")
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// checkBacklogEntry: the backlog holds key for minio-b as ciphertext that
// the stock age CLI decrypts to the dump, byte for byte what minio-a holds,
// with minio-a's manifest; nothing in the state directory shows plaintext.
func (w *backlogWorld) checkBacklogEntry(t *testing.T, e *backlog.Entry, dump []byte) {
	t.Helper()
	if len(e.Meta.Pending) != 1 || e.Meta.Pending[0] != w.minioB {
		t.Fatalf("entry %s pending for %v, want [%s]", e.Key, e.Meta.Pending, w.minioB)
	}
	held := mustRead(t, e.DataPath())
	if got := harness.AgeDecrypt(t, held, "-i", w.id); !bytes.Equal(got, dump) {
		t.Fatalf("backlog copy of %s does not decrypt to the dump", e.Key)
	}
	if !bytes.Equal(held, w.minios[0].ReadObject(t, e.Key)) {
		t.Fatalf("backlog copy of %s differs from minio-a's", e.Key)
	}
	if !bytes.Equal(mustRead(t, e.ManifestPath()), w.minios[0].ReadObject(t, e.Key+".manifest.json")) {
		t.Fatalf("backlog manifest of %s differs from minio-a's", e.Key)
	}
	filepath.Walk(w.state, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", p, info.Mode().Perm())
		}
		if harness.ContainsRun(mustRead(t, p), dump, 32) {
			t.Fatalf("%s holds plaintext of the dump", p)
		}
		return nil
	})
}

// checkWhole: every upstream holds key complete, with one and the same
// manifest, and the copy decrypts to dump.
func (w *backlogWorld) checkWhole(t *testing.T, key string, dump []byte) {
	t.Helper()
	var first []byte
	for _, up := range w.upstreams(t) {
		body := up.read(key + ".manifest.json")
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Fatalf("%s: manifest of %s differs from the other upstreams'", up.name, key)
		}
		if got := harness.AgeDecrypt(t, up.read(key), "-i", w.id); !bytes.Equal(got, dump) {
			t.Fatalf("%s: %s does not decrypt to the dump", up.name, key)
		}
	}
}

// TestBacklogNextRunUploads: minio-b is down during archive: the run fails
// naming it, the other upstreams hold complete copies and the backlog holds
// the ciphertext. With minio-b back, the next archive run first uploads the
// backlog: minio-b then holds the same archive with the same manifest,
// verify passes and the backlog is empty.
func TestBacklogNextRunUploads(t *testing.T) {
	w := newBacklogWorld(t, nil)
	dump1 := harness.RandomDump(21, 2<<20, true)
	w.minios[1].Stop()
	r := w.archive(t, "db1", dump1)
	if r.exit != 1 || !strings.Contains(r.stderr, "NOT stored on "+w.minioB) || !strings.Contains(r.stderr, "backlog: kept") {
		t.Fatalf("want exit 1 naming %s and the backlog, got %d\n%s", w.minioB, r.exit, r.stderr)
	}
	w.minios[1].Start(t)
	checkPartial(t, w.world, "db1/", dump1, w.id, 1)
	es := w.entries(t)
	if len(es) != 1 {
		t.Fatalf("backlog holds %d entries, want 1", len(es))
	}
	key := es[0].Key
	w.checkBacklogEntry(t, es[0], dump1)

	time.Sleep(time.Second) // a new name for the second archive
	dump2 := harness.RandomDump(22, 1<<20, true)
	r = w.archive(t, "db1", dump2)
	if r.exit != 0 {
		t.Fatalf("second run: exit %d\n%s", r.exit, r.stderr)
	}
	for _, want := range []string{"retry: delivered " + key + " to " + w.minioB + " from the backlog", key + " is on every upstream; removed from the backlog"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("second run does not say %q:\n%s", want, r.stderr)
		}
	}
	// The backlog went first, before today's dump.
	if strings.Index(r.stderr, "retry: ") > strings.Index(r.stderr, ": archiving ") {
		t.Fatalf("the backlog was not retried before the dump:\n%s", r.stderr)
	}
	w.checkWhole(t, key, dump1)
	if u, err := backlog.Usage(w.state); err != nil || u.Archives != 0 {
		t.Fatalf("backlog after the retry: %+v, %v", u, err)
	}
	if r := w.cmd(t, "verify", "--database", "db1"); r.exit != 0 {
		t.Fatalf("verify: exit %d\n%s", r.exit, r.stderr)
	}
	// And the monitoring check agrees: db1 is OK on every upstream.
	if r := w.cmd(t, "status", "--database", "db1"); r.exit != 0 || strings.Count(r.stdout, " OK") != 3 {
		t.Fatalf("status after the retry: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
}

// TestBacklogUpstreamDiesDuringUpload: minio-b is killed part way through
// the upload; the spool, fed by the same stream, still holds the whole
// archive, and retry delivers it.
func TestBacklogUpstreamDiesDuringUpload(t *testing.T) {
	w := newBacklogWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	dump := harness.RandomDump(23, 96<<20, true)
	done := make(chan run)
	go func() { done <- w.archive(t, "db1", dump) }()
	deadline := time.Now().Add(60 * time.Second)
	for dirSize(w.minios[1].DataDir) < 6<<20 {
		if time.Now().After(deadline) {
			t.Fatal("upload to minio-b never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.minios[1].Kill()
	r := <-done
	if r.exit != 1 || !strings.Contains(r.stderr, w.minioB) {
		t.Fatalf("want exit 1 naming %s, got %d\n%s", w.minioB, r.exit, r.stderr)
	}
	w.minios[1].Start(t)
	es := w.entries(t)
	if len(es) != 1 {
		t.Fatalf("backlog holds %d entries, want 1\n%s", len(es), r.stderr)
	}
	w.checkBacklogEntry(t, es[0], dump)
	if r := w.cmd(t, "retry"); r.exit != 0 {
		t.Fatalf("retry: exit %d\n%s", r.exit, r.stderr)
	}
	w.checkWhole(t, es[0].Key, dump)
}

// TestRetryCommand: retry on its own. While minio-b is down it fails and
// keeps the entry; a leftover object of the failed upload is replaced once
// minio-b is back; --database limits it to one database; an empty backlog
// is success.
func TestRetryCommand(t *testing.T) {
	w := newBacklogWorld(t, nil)
	dumps := map[string][]byte{"db1": harness.RandomDump(31, 1<<20, true), "db2": harness.RandomDump(32, 1<<20, true)}
	w.minios[1].Stop()
	for _, db := range []string{"db1", "db2"} {
		if r := w.archive(t, db, dumps[db], "--low-level-retries", "1"); r.exit != 1 {
			t.Fatalf("%s: exit %d\n%s", db, r.exit, r.stderr)
		}
	}
	es := w.entries(t)
	if len(es) != 2 {
		t.Fatalf("backlog holds %d entries, want 2", len(es))
	}
	keys := map[string]string{}
	for _, e := range es {
		keys[e.Name.Database] = e.Key
	}

	r := w.cmd(t, "--low-level-retries", "1", "retry")
	if r.exit != 1 || !strings.Contains(r.stderr, keys["db1"]+" still NOT on "+w.minioB) || !strings.Contains(r.stderr, "2 remaining") {
		t.Fatalf("retry while down: exit %d\n%s", r.exit, r.stderr)
	}
	w.minios[1].Start(t)
	// What a failed upload may leave: data without a manifest.
	w.minios[1].PutObject(t, keys["db1"], []byte("the first 23 bytes only"))

	r = w.cmd(t, "retry", "--database", "db1")
	if r.exit != 0 || !strings.Contains(r.stderr, "retry: delivered "+keys["db1"]+" to "+w.minioB+" from the backlog") {
		t.Fatalf("retry --database db1: exit %d\n%s", r.exit, r.stderr)
	}
	w.checkWhole(t, keys["db1"], dumps["db1"])
	if es := w.entries(t); len(es) != 1 || es[0].Key != keys["db2"] {
		t.Fatalf("after retry --database db1 the backlog holds %v, want only %s", es, keys["db2"])
	}
	if r := w.cmd(t, "retry"); r.exit != 0 {
		t.Fatalf("retry: exit %d\n%s", r.exit, r.stderr)
	}
	w.checkWhole(t, keys["db2"], dumps["db2"])
	r = w.cmd(t, "retry")
	if r.exit != 0 || !strings.Contains(r.stderr, "is empty") {
		t.Fatalf("retry of an empty backlog: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestBacklogCap: with room for two archives, the third run drops the
// oldest with a loud error naming it and where it still is.
func TestBacklogCap(t *testing.T) {
	w := newBacklogWorld(t, nil)
	w.minios[1].Stop()
	var keys []string
	for i := range 3 {
		r := w.archive(t, "db1", harness.RandomDump(int64(40+i), 100<<10, true), "--backlog-max-size", "250Ki", "--low-level-retries", "1")
		if r.exit != 1 {
			t.Fatalf("run %d: exit %d\n%s", i, r.exit, r.stderr)
		}
		es := w.entries(t)
		keys = append(keys, es[len(es)-1].Key)
		if i == 2 {
			want := "error: BACKLOG FULL (cap 250.0 KiB): dropped " + keys[0]
			if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, w.minioB+" never got it; still held by minio-a:pgarchive, "+w.local) {
				t.Fatalf("no loud line %q naming the holders:\n%s", want, r.stderr)
			}
		}
	}
	es := w.entries(t)
	if len(es) != 2 || es[0].Key != keys[1] || es[1].Key != keys[2] {
		t.Fatalf("backlog holds %v, want %v", es, keys[1:])
	}
	// A dump that can't fit at all is not spooled, and says so.
	r := w.archive(t, "db1", harness.RandomDump(50, 300<<10, true), "--backlog-max-size", "250Ki", "--low-level-retries", "1")
	if r.exit != 1 || !strings.Contains(r.stderr, "larger than --backlog-max-size") {
		t.Fatalf("oversized dump: exit %d\n%s", r.exit, r.stderr)
	}
	if len(w.entries(t)) != 2 {
		t.Fatal("an oversized archive changed the backlog")
	}
}

// TestBacklogNoUpstreamReachable: with the only upstream down, the archive
// lives in the backlog alone (the log says no upstream holds it) until
// retry delivers it.
func TestBacklogNoUpstreamReachable(t *testing.T) {
	w := newBacklogWorld(t, nil)
	dump := harness.RandomDump(61, 1<<20, true)
	w.minios[1].Stop()
	r := w.archive(t, "db1", dump, "--remote", w.minioB, "--low-level-retries", "1")
	if r.exit != 1 || !strings.Contains(r.stderr, "no upstream could be reached") || !strings.Contains(r.stderr, "backlog: kept") {
		t.Fatalf("exit %d\n%s", r.exit, r.stderr)
	}
	es := w.entries(t)
	if len(es) != 1 || len(es[0].Meta.Held) != 0 {
		t.Fatalf("backlog: %+v", es)
	}
	if got := harness.AgeDecrypt(t, mustRead(t, es[0].DataPath()), "-i", w.id); !bytes.Equal(got, dump) {
		t.Fatal("backlog copy does not decrypt to the dump")
	}
	w.minios[1].Start(t)
	if r := w.cmd(t, "--remote", w.minioB, "retry"); r.exit != 0 {
		t.Fatalf("retry: exit %d\n%s", r.exit, r.stderr)
	}
	ct := w.minios[1].ReadObject(t, es[0].Key)
	if got := harness.AgeDecrypt(t, ct, "-i", w.id); !bytes.Equal(got, dump) {
		t.Fatal("delivered copy does not decrypt to the dump")
	}
	if r := w.cmd(t, "--remote", w.minioB, "verify"); r.exit != 0 {
		t.Fatalf("verify: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestBacklogRootThenService: the state directory belongs to postgres, as
// the NixOS module sets it up. Root (through its wrapper) archives while
// minio-b is down and retries while it still is; once minio-b is back, a
// retry run as postgres, the archive units' user, delivers the archive and
// empties the backlog: nothing root left is out of its reach.
func TestBacklogRootThenService(t *testing.T) {
	harness.NeedRoot(t)
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("this test runs retry as user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	base, err := os.MkdirTemp("", "pgbacklog-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	w := backlogWorldOf(t, newWorldIn(t, base, nil))
	os.Mkdir(w.state, 0o750)
	for _, p := range []string{w.state, w.conf} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	dump := harness.RandomDump(71, 1<<20, true)
	w.minios[1].Stop()
	if r := w.archive(t, "db1", dump, "--low-level-retries", "1"); r.exit != 1 || !strings.Contains(r.stderr, "backlog: kept") {
		t.Fatalf("archive as root: exit %d\n%s", r.exit, r.stderr)
	}
	if r := w.cmd(t, "--low-level-retries", "1", "retry"); r.exit != 1 {
		t.Fatalf("retry as root while minio-b is down: exit %d\n%s", r.exit, r.stderr)
	}
	key := w.entries(t)[0].Key
	w.minios[1].Start(t)

	cmd := exec.Command(w.bin, "--rclone-config", w.conf, "--log-target", "stderr", "--state-dir", w.state, "retry")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + base}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), key+" is on every upstream; removed from the backlog") {
		t.Fatalf("retry as postgres: %v\n%s", err, out)
	}
	w.checkWhole(t, key, dump)
	if u, err := backlog.Usage(w.state); err != nil || u.Archives != 0 {
		t.Fatalf("backlog after postgres's retry: %+v, %v", u, err)
	}
}
