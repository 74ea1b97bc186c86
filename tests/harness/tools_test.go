package harness_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

func TestJournald(t *testing.T) {
	t.Parallel()
	j := harness.StartJournald(t)

	out, errOut, rc := j.Run(t, []string{"HARNESS_X=42"}, "bash", "-c", "echo out $HARNESS_X; echo err >&2; exit 3")
	if out != "out 42\n" || errOut != "err\n" || rc != 3 {
		t.Fatalf("Run = %q %q %d", out, errOut, rc)
	}

	fields := filepath.Join(t.TempDir(), "fields")
	// logger --journald sends one native-protocol entry: arbitrary fields,
	// including a non-UTF-8 value that journalctl prints as a byte array.
	if err := os.WriteFile(fields, []byte("MESSAGE=structured hello\nSYSLOG_IDENTIFIER=harness-logger\nPGARCHIVE_DB=appdb\nBIN=\xff\xfeok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, e, rc := j.Run(t, nil, "logger", "--journald="+fields); rc != 0 {
		t.Fatalf("logger: %d %s", rc, e)
	}
	if _, e, rc := j.Run(t, nil, "systemd-cat", "-t", "harness-cat", "-p", "warning", "echo", "via systemd-cat"); rc != 0 {
		t.Fatalf("systemd-cat: %d %s", rc, e)
	}
	rc = j.RunAsService(t, nil, "harness-svc", "bash", "-c", `echo "stream=$JOURNAL_STREAM"; echo oops >&2; exit 5`)
	if rc != 5 {
		t.Fatalf("RunAsService exit = %d", rc)
	}

	e := one(t, j.Entries(t, "SYSLOG_IDENTIFIER=harness-logger"))
	if e["MESSAGE"] != "structured hello" || e["PGARCHIVE_DB"] != "appdb" || e["BIN"] != "\xff\xfeok" || e["_TRANSPORT"] != "journal" {
		t.Fatalf("logger entry: %v", e)
	}
	e = one(t, j.Entries(t, "SYSLOG_IDENTIFIER=harness-cat"))
	if e["MESSAGE"] != "via systemd-cat" || e["PRIORITY"] != "4" || e["_TRANSPORT"] != "stdout" {
		t.Fatalf("systemd-cat entry: %v", e)
	}
	svc := j.Entries(t, "SYSLOG_IDENTIFIER=harness-svc")
	if len(svc) != 2 || !strings.HasPrefix(svc[0]["MESSAGE"], "stream=") || len(svc[0]["MESSAGE"]) < len("stream=1:1") ||
		svc[1]["MESSAGE"] != "oops" {
		t.Fatalf("service entries: %v", svc)
	}
	if got := j.Entries(t, "SYSLOG_IDENTIFIER=nobody-logged-this"); len(got) != 0 {
		t.Fatalf("unmatched filter returned %d entries", len(got))
	}
}

func one(t *testing.T, es []map[string]string) map[string]string {
	t.Helper()
	if len(es) != 1 {
		t.Fatalf("want 1 entry, got %d: %v", len(es), es)
	}
	return es[0]
}

func TestAge(t *testing.T) {
	t.Parallel()
	plain := harness.RandomBytes(7, 100_000)
	for _, pq := range []bool{false, true} {
		id, rcpt := harness.AgeKeygen(t, pq)
		if pq != strings.HasPrefix(rcpt, "age1pq1") {
			t.Fatalf("pq=%v recipient %.20s", pq, rcpt)
		}
		ct := harness.AgeEncrypt(t, plain, "-r", rcpt)
		if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n")) || harness.ContainsRun(ct, plain, 32) {
			t.Fatal("ciphertext is not an age file or leaks plaintext")
		}
		if got := harness.AgeDecrypt(t, ct, "-i", id); !bytes.Equal(got, plain) {
			t.Fatal("age round trip differs")
		}
	}
	otherID, _ := harness.AgeKeygen(t, false)
	_, rcpt := harness.AgeKeygen(t, false)
	if _, err := harness.AgeTryDecrypt(t, harness.AgeEncrypt(t, plain, "-r", rcpt), "-i", otherID); err == nil {
		t.Fatal("decrypting with the wrong identity succeeded")
	}

	for _, kind := range []string{"ed25519", "rsa"} {
		priv, pub := harness.SSHKeygen(t, kind)
		if !strings.HasPrefix(pub, "ssh-") {
			t.Fatalf("%s public key %q", kind, pub)
		}
		ct := harness.AgeEncrypt(t, plain, "-r", pub)
		if got := harness.AgeDecrypt(t, ct, "-i", priv); !bytes.Equal(got, plain) {
			t.Fatalf("%s round trip differs", kind)
		}
	}

	ct := harness.AgeEncryptPassphrase(t, plain, "correct horse", 10)
	if !bytes.Contains(ct, []byte("\n-> scrypt ")) {
		t.Fatalf("not an scrypt file:\n%.200s", ct)
	}
	if got := harness.AgeDecryptPassphrase(t, ct, "correct horse"); !bytes.Equal(got, plain) {
		t.Fatal("passphrase round trip differs")
	}
	if _, err := harness.AgeTryDecryptPassphrase(t, ct, "wrong"); err == nil || !strings.Contains(err.Error(), "incorrect passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

func TestData(t *testing.T) {
	t.Parallel()
	a, b := harness.RandomBytes(1, 1<<20), harness.RandomBytes(1, 1<<20)
	if !bytes.Equal(a, b) || bytes.Equal(a, harness.RandomBytes(2, 1<<20)) {
		t.Fatal("RandomBytes is not deterministic per seed")
	}
	streamed, err := io.ReadAll(harness.RandomReader(1, 1<<20))
	if err != nil || !bytes.Equal(streamed, a) {
		t.Fatal("RandomReader differs from RandomBytes")
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(a)
	zw.Close()
	if z.Len() < len(a) {
		t.Fatalf("random data compressed to %d of %d bytes", z.Len(), len(a))
	}

	// Exact mode: any 32-byte window is found, 31 bytes are not enough.
	hay := harness.RandomBytes(3, 1<<20)
	needle := harness.RandomBytes(4, 100_000)
	if harness.ContainsRun(hay, needle, 32) {
		t.Fatal("false positive on unrelated data")
	}
	planted := bytes.Clone(hay)
	copy(planted[777_777:], needle[5_000:5_032])
	if !harness.ContainsRun(planted, needle, 32) {
		t.Fatal("missed a planted 32-byte run")
	}
	short := bytes.Clone(hay)
	copy(short[777_777:], needle[5_000:5_031])
	if harness.ContainsRun(short, needle, 32) {
		t.Fatal("31 bytes counted as a 32-byte run")
	}
	if !harness.ContainsRun(needle, needle, 32) || harness.ContainsRun(needle[:31], needle, 32) {
		t.Fatal("edge cases")
	}
	zeros := make([]byte, 2<<20) // repeated windows must not blow up probing
	if !harness.ContainsRun(append(bytes.Clone(hay), make([]byte, 40)...), zeros, 32) {
		t.Fatal("missed zero run")
	}

	// Sampled mode (needle > 2^20 windows): runs of run+stride-1 bytes are found.
	big := harness.RandomBytes(5, 24<<20)
	bigHay := harness.RandomBytes(6, 24<<20)
	if harness.ContainsRun(bigHay, big, 32) {
		t.Fatal("false positive, sampled mode")
	}
	copy(bigHay[10_000_001:], big[12_345_679:12_345_679+47])
	if !harness.ContainsRun(bigHay, big, 32) {
		t.Fatal("sampled mode missed a 47-byte run")
	}
}

func TestBuildBinary(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	paths := make([]string, 3)
	for i := range paths {
		wg.Go(func() { paths[i] = harness.BuildBinary(t, "./tests/harness/testdata/hello") })
	}
	wg.Wait()
	if paths[0] != paths[1] || paths[1] != paths[2] {
		t.Fatalf("built more than once: %v", paths)
	}
	out, err := exec.Command(paths[0]).Output()
	if err != nil || string(out) != "test\n" {
		t.Fatalf("binary printed %q, %v", out, err)
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := harness.FreePort(t)
		if seen[p] || p <= 0 {
			t.Fatalf("port %d repeated or invalid", p)
		}
		seen[p] = true
	}
}

// recorder stands in for a testing.TB to observe Need's skip/fail policy.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	skip   string
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(f, a...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(f, a...)
	r.mu.Unlock()
	runtime.Goexit()
}

func needOn(r *recorder, tool string) {
	done := make(chan struct{})
	go func() { defer close(done); harness.Need(r, tool) }()
	<-done
}

func TestNeedPolicy(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	needOn(r, "no-such-tool-pgarchive")
	if !strings.HasPrefix(r.skip, "SKIPPED: no-such-tool-pgarchive") || r.failed != "" {
		t.Fatalf("outside CI: skip=%q fail=%q", r.skip, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	needOn(r, "minio-does-not-exist")
	if r.skip != "" || !strings.Contains(r.failed, "minio-does-not-exist not found") {
		t.Fatalf("under CI: skip=%q fail=%q", r.skip, r.failed)
	}
	r = &recorder{TB: t}
	needOn(r, "gzip")
	if r.skip != "" || r.failed != "" {
		t.Fatalf("present tool: skip=%q fail=%q", r.skip, r.failed)
	}
	if p, _ := filepath.EvalSymlinks(harness.Tool(t, "initdb")); p != harness.PostgresBinDir+"/initdb" {
		t.Fatal("initdb not found in the PostgreSQL bin dir")
	}
}
