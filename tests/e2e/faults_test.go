package e2e

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestUpstreamDownBeforeRun: one MinIO is stopped before the run. The run
// fails naming it, the other copies are complete, and the stopped one gets
// nothing (checked after it is back).
func TestUpstreamDownBeforeRun(t *testing.T) {
	w := newWorld(t, nil)
	id, recip := harness.AgeKeygen(t, false)
	dump := harness.RandomDump(11, 3<<20, true)
	path := filepath.Join(w.dir, "db1.sql.gz")
	os.WriteFile(path, dump, 0o600)
	w.minios[1].Stop()
	r := w.pgarchive(t, nil, "-r", recip, "archive", "--database", "db1", "--file", path)
	if r.exit == 0 || !strings.Contains(r.stderr, "minio-b") {
		t.Fatalf("want a failure naming minio-b, got exit %d\n%s", r.exit, r.stderr)
	}
	w.minios[1].Start(t)
	checkPartial(t, w, "db1/", dump, id, 1)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the local dump must be left alone: %v", err)
	}
}

// TestUpstreamDiesDuringUpload: one MinIO is killed while the dump streams.
func TestUpstreamDiesDuringUpload(t *testing.T) {
	w := newWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	id, recip := harness.AgeKeygen(t, false)
	dump := harness.RandomDump(12, 200<<20, false)
	path := filepath.Join(w.dir, "db1.sql")
	os.WriteFile(path, dump, 0o600)
	done := make(chan run)
	go func() { done <- w.pgarchive(t, nil, "-r", recip, "archive", "--database", "db1", "--file", path) }()
	// Kill minio-b once its data directory shows parts of the upload arriving.
	deadline := time.Now().Add(60 * time.Second)
	for dirSize(w.minios[1].DataDir) < 12<<20 {
		if time.Now().After(deadline) {
			t.Fatal("upload to minio-b never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.minios[1].Kill()
	r := <-done
	if r.exit == 0 || !strings.Contains(r.stderr, "minio-b") {
		t.Fatalf("want a failure naming minio-b, got exit %d\n%s", r.exit, r.stderr)
	}
	w.minios[1].Start(t)
	checkPartial(t, w, "db1/", dump, id, 1)
}

// checkPartial: every upstream but bad holds a complete copy; bad holds no
// manifest (and so no archive that claims to be complete).
func checkPartial(t *testing.T, w *world, prefix string, dump []byte, id string, bad int) {
	t.Helper()
	for i, up := range w.upstreams(t) {
		data, mans := archivesIn(up.list(prefix))
		if i == bad {
			if len(mans) != 0 {
				t.Fatalf("%s failed but has a manifest: %v", up.name, mans)
			}
			continue
		}
		if len(data) != 1 || len(mans) != 1 {
			t.Fatalf("%s: want one complete archive, got %v", up.name, up.list(prefix))
		}
		if got := harness.AgeDecrypt(t, up.read(data[0]), "-i", id); len(got) != len(dump) || sha256Hex(got) != sha256Hex(dump) {
			t.Fatalf("%s: copy does not decrypt to the dump", up.name)
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// TestBadInput: every local mistake is reported clearly, with a non-zero
// exit, before anything is uploaded.
func TestBadInput(t *testing.T) {
	w := newWorld(t, nil)
	_, recip := harness.AgeKeygen(t, false)
	d := w.dir
	dump := filepath.Join(d, "db1.sql.gz")
	os.WriteFile(dump, []byte("\x1f\x8bnot really gzip but not empty"), 0o600)
	empty := filepath.Join(d, "empty.sql.gz")
	os.WriteFile(empty, nil, 0o600)
	garbageID := filepath.Join(d, "garbage-identity")
	os.WriteFile(garbageID, []byte("this is not a key\n"), 0o600)
	dirAsKey := filepath.Join(d, "key-is-a-directory")
	os.Mkdir(dirAsKey, 0o700)
	badConf := filepath.Join(d, "bad-rclone.conf")
	os.WriteFile(badConf, []byte("[archive-target-database]\ntype = union\nupstreams /tmp/x\n"), 0o600)
	orphanConf := filepath.Join(d, "orphan-rclone.conf")
	os.WriteFile(orphanConf, []byte("type = union\n[x]\ntype = local\n"), 0o600)

	cases := []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"no key", []string{"archive", "--database", "db1", "--file", dump}, []string{"no encryption key", "plaintext"}},
		{"wrong key file", []string{"--identity-file", garbageID, "archive", "--database", "db1", "--file", dump}, []string{garbageID}},
		{"unreadable key file", []string{"--recipients-file", dirAsKey, "archive", "--database", "db1", "--file", dump}, []string{dirAsKey}},
		{"missing key file", []string{"--passphrase-file", filepath.Join(d, "nope"), "archive", "--database", "db1", "--file", dump}, []string{filepath.Join(d, "nope")}},
		{"missing dump", []string{"-r", recip, "archive", "--database", "db1", "--file", filepath.Join(d, "gone.sql.gz")}, []string{"gone.sql.gz", "no such file"}},
		{"empty dump", []string{"-r", recip, "archive", "--database", "db1", "--file", empty}, []string{empty, "empty"}},
		{"empty stdin", []string{"-r", recip, "archive", "--database", "db1", "--file", "-"}, []string{"stdin", "empty"}},
		{"unknown remote", []string{"-r", recip, "--remote", "nosuch:", "archive", "--database", "db1", "--file", dump}, []string{"nosuch:", "not defined", w.conf}},
		{"bad database", []string{"-r", recip, "archive", "--database", "../etc", "--file", dump}, []string{"database name"}},
		{"default dump path", []string{"-r", recip, "--dump-dir", d, "--dump-compression", "zstd", "archive", "--database", "db1"}, []string{filepath.Join(d, "db1.sql.zstd")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdin := []byte(nil)
			if c.name == "empty stdin" {
				stdin = []byte{}
			}
			r := w.pgarchive(t, stdin, c.args...)
			checkFailure(t, r, c.want)
			w.checkNothingStored(t, "")
		})
	}
	for name, conf := range map[string]string{"syntax error": badConf, "setting outside a section": orphanConf} {
		t.Run(name, func(t *testing.T) {
			r := runBin(t, w.bin, nil, "--rclone-config", conf, "--log-target", "stderr", "-r", recip, "archive", "--database", "db1", "--file", dump)
			checkFailure(t, r, []string{conf, "line"})
			w.checkNothingStored(t, "")
		})
	}
}

func checkFailure(t *testing.T, r run, want []string) {
	t.Helper()
	if r.exit == 0 {
		t.Fatalf("exit 0, want failure\n%s", r.stderr)
	}
	for _, s := range want {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("crashed:\n%s", r.stderr)
	}
}

// TestSIGTERMMidArchive stops an archive run as systemd would (SIGTERM)
// while it uploads to two MinIO and a local folder: it exits non-zero with
// a line saying it was interrupted and what it left, writes the failure
// metric, and leaves no manifest (nothing claims to be complete) and no
// unfinished multipart upload behind.
func TestSIGTERMMidArchive(t *testing.T) {
	w := newWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	_, recip := harness.AgeKeygen(t, false)
	path := filepath.Join(w.dir, "db1.sql")
	os.WriteFile(path, harness.RandomDump(13, 300<<20, false), 0o600)
	mdir := t.TempDir()
	cmd, out := w.archiveUntilUploading(t, "--metrics-dir", mdir, "-r", recip, "archive", "--database", "db1", "--file", path)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 143 || !strings.Contains(out.String(), "archive interrupted by a signal") ||
		!strings.Contains(out.String(), "no archive was stored") {
		t.Fatalf("want exit 143 and a line saying the run was interrupted, got %v:\n%s", err, out.String())
	}
	prom := string(mustRead(t, filepath.Join(mdir, "pgarchive-archive-db1.prom")))
	if !strings.Contains(prom, "pgarchive_last_failure_timestamp_seconds") {
		t.Fatalf("no failure metric after SIGTERM:\n%s", prom)
	}
	for _, up := range w.upstreams(t) {
		if _, mans := archivesIn(up.list("db1/")); len(mans) > 0 {
			t.Fatalf("%s has a manifest after an interrupted run: %v", up.name, mans)
		}
	}
	w.noUnfinishedUploads(t)
}

// archiveUntilUploading starts pgarchive with args and returns once both
// MinIO hold 12 MiB of its upload, with its combined output.
func (w *world) archiveUntilUploading(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(w.bin, append([]string{"--rclone-config", w.conf, "--log-target", "stderr"}, args...)...)
	cmd.Env = append(os.Environ(), "RCLONE_CONFIG=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for dirSize(w.minios[0].DataDir) < 12<<20 || dirSize(w.minios[1].DataDir) < 12<<20 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("upload never started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, &out
}

// noUnfinishedUploads fails the test if a MinIO keeps a multipart upload
// nobody will finish.
func (w *world) noUnfinishedUploads(t *testing.T) {
	t.Helper()
	for i, m := range w.minios {
		if left := m.IncompleteUploads(t); len(left) > 0 {
			t.Errorf("minio %d keeps unfinished multipart uploads: %v", i, left)
		}
	}
}

// TestKilledUploadsCleanedByPrune: kill -9 mid-upload leaves unfinished S3
// multipart uploads that no listing shows. prune leaves recent ones alone
// (they may belong to a running archive), lists old ones in a dry run, and
// aborts them, naming each.
func TestKilledUploadsCleanedByPrune(t *testing.T) {
	w := newWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	_, recip := harness.AgeKeygen(t, false)
	small := filepath.Join(w.dir, "small.sql")
	os.WriteFile(small, harness.RandomDump(17, 1000, false), 0o600)
	if r := w.pgarchive(t, nil, "-r", recip, "archive", "-d", "db1", "-f", small); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	big := filepath.Join(w.dir, "db1.sql")
	os.WriteFile(big, harness.RandomDump(14, 300<<20, false), 0o600)
	cmd, _ := w.archiveUntilUploading(t, "-r", recip, "archive", "-d", "db1", "-f", big)
	cmd.Process.Kill()
	cmd.Wait()
	for i, m := range w.minios {
		if len(m.IncompleteUploads(t)) == 0 {
			t.Fatalf("minio %d shows no unfinished upload after kill -9: the test proves nothing", i)
		}
	}
	if r := w.pgarchive(t, nil, "prune", "--keep-last", "5"); r.exit != 0 || strings.Contains(r.stderr, "aborted the unfinished") {
		t.Fatalf("prune with the default age must leave a recent upload alone (exit %d):\n%s", r.exit, r.stderr)
	}
	if len(w.minios[0].IncompleteUploads(t)) == 0 {
		t.Fatal("a recent unfinished upload was aborted")
	}
	time.Sleep(2 * time.Second)
	r := w.pgarchive(t, nil, "prune", "--keep-last", "5", "--abort-uploads-older-than", "1s", "--dry-run", "--json")
	var plan struct {
		Uploads []struct{ Upstream, Key string } `json:"unfinished_uploads"`
	}
	decodeJSON(t, []byte(r.stdout), &plan)
	if len(plan.Uploads) != 2 || !strings.HasPrefix(plan.Uploads[0].Key, w.minios[0].Bucket+"/db1/db1_") {
		t.Fatalf("dry run should list one old upload per MinIO: %+v\n%s", plan.Uploads, r.stderr)
	}
	r = w.pgarchive(t, nil, "prune", "--keep-last", "5", "--abort-uploads-older-than", "1s")
	if r.exit != 0 || strings.Count(r.stderr, "aborted the unfinished upload of") != 2 {
		t.Fatalf("prune must abort and name both (exit %d):\n%s", r.exit, r.stderr)
	}
	w.noUnfinishedUploads(t)
}

// TestBrokenDumpsRefused: dumps that cannot restore are refused when they
// are archived, naming the file and what is wrong, and nothing is stored on
// any upstream (two MinIO, one of them with multipart uploads, and a local
// folder): not as complete, not as a leftover.
func TestBrokenDumpsRefused(t *testing.T) {
	w := newWorld(t, map[string]string{"upload_cutoff": "5Mi", "chunk_size": "5Mi"})
	_, recip := harness.AgeKeygen(t, false)
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	good := harness.RandomDump(15, 20<<20, true)
	cases := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"gzip of nothing", "db1.sql.gz", gz(nil), "it is empty"},
		{"not gzip", "db1.sql.gz", []byte("SELECT 1;\n-- PostgreSQL database dump complete\n"), "it is not gzip data"},
		{"truncated gzip", "db1.sql.gz", good[:len(good)-1000], "cut short"},
		{"no completion line", "db1.sql.gz", gz([]byte("SELECT 1;\n")), "completion line"},
		{"plain without completion line", "db1.sql", harness.RandomBytes(16, 12<<20), "completion line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			os.WriteFile(path, c.data, 0o600)
			r := w.pgarchive(t, nil, "-r", recip, "archive", "-d", "db1", "-f", path)
			if r.exit != 1 || !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "nothing was stored") {
				t.Fatalf("want exit 1 naming %s and %q, got %d:\n%s", path, c.want, r.exit, r.stderr)
			}
			w.checkNothingStored(t, "db1/")
			w.noUnfinishedUploads(t)
		})
	}
	// --skip-dump-check stores any file, and a good dump passes.
	path := filepath.Join(t.TempDir(), "db1.sql")
	os.WriteFile(path, []byte("not a dump"), 0o600)
	if r := w.pgarchive(t, nil, "-r", recip, "archive", "-d", "db1", "-f", path, "--skip-dump-check"); r.exit != 0 {
		t.Fatalf("--skip-dump-check: %s", r.stderr)
	}
	os.WriteFile(path+".gz", good, 0o600)
	if r := w.pgarchive(t, nil, "-r", recip, "archive", "-d", "db1", "-f", path+".gz"); r.exit != 0 {
		t.Fatalf("a good dump: %s", r.stderr)
	}
}

// TestSIGTERMMidRestore stops restore --output from local upstreams (whose
// reads never look at a context) while it writes: it exits 143 with a
// line saying so, and neither the output nor its hidden partial file stays.
// A partial file a killed restore left behind is removed by the next one.
func TestSIGTERMMidRestore(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := filepath.Join(t.TempDir(), "demo")
	dump := filepath.Join(t.TempDir(), "big.sql")
	os.WriteFile(dump, harness.RandomDump(14, 400<<20, false), 0o600)
	if r := runBin(t, bin, nil, "--log-target", "stderr", "demo", "--dir", dir, "--dump", dump); r.exit != 0 {
		t.Fatalf("demo: %s", r.stderr)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "restored.sql")
	args := []string{"restore", "--config", filepath.Join(dir, "pgarchive.json"), "--database", "demo", "--output", out,
		"-i", filepath.Join(dir, "identity.txt"), "--log-target", "stderr"}
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(outDir, ".restored.sql.partial-*")
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, _ := filepath.Glob(partial)
		if len(m) == 1 && fileSize(m[0]) > 20<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the restore never got going:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 || !strings.Contains(log.String(), "demo: restore interrupted by a signal") ||
		!strings.Contains(log.String(), "the partial output was removed") {
		t.Fatalf("want exit 143 and a line saying the restore was interrupted, got %v:\n%s", err, log.String())
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}

	// As if a restore had been killed with SIGKILL an hour ago.
	stale := filepath.Join(outDir, ".restored.sql.partial-1234")
	os.WriteFile(stale, []byte("half a dump"), 0o600)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(stale, past, past)
	r := runBin(t, bin, nil, args...)
	if r.exit != 0 || !strings.Contains(r.stderr, "removed "+stale+", the partial output of an earlier restore that was killed") {
		t.Fatalf("restore after a killed one: exit %d\n%s", r.exit, r.stderr)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 || ents[0].Name() != "restored.sql" || fileSize(out) != 400<<20+int64(len(harness.RandomDump(0, 0, false))) {
		t.Fatalf("after the second restore: %v", ents)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// TestSIGTERMRestoreToStalledStdout: restore --output - into a pipe nobody
// reads blocks in write(2); SIGTERM still ends it at once, exit 143.
func TestSIGTERMRestoreToStalledStdout(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := filepath.Join(t.TempDir(), "demo")
	dump := filepath.Join(t.TempDir(), "big.sql")
	os.WriteFile(dump, harness.RandomDump(15, 8<<20, false), 0o600)
	if r := runBin(t, bin, nil, "--log-target", "stderr", "demo", "--dir", dir, "--dump", dump); r.exit != 0 {
		t.Fatalf("demo: %s", r.stderr)
	}
	cmd := exec.Command(bin, "restore", "--config", filepath.Join(dir, "pgarchive.json"), "--database", "demo", "--output", "-",
		"-i", filepath.Join(dir, "identity.txt"), "--log-target", "stderr")
	pr, pw, err := os.Pipe() // never read: the pipe fills and the write blocks
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	time.Sleep(2 * time.Second) // long enough to fill the pipe and block
	cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("restore --output - did not stop on SIGTERM:\n%s", log.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 || !strings.Contains(log.String(), "restore interrupted by a signal") ||
		!strings.Contains(log.String(), "stdout got part of the dump") {
		t.Fatalf("want exit 143 and a line saying so, got %v:\n%s", err, log.String())
	}
}
