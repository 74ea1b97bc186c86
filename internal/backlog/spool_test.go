package backlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/rclone/rclone/backend/local"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
)

// fixture: two local folders (rclone's real local backend), of which "b" is
// down during archive runs.
type fixture struct {
	dir, state string
	a, b       *remote.Upstream
	keys       *keys.Keys
	id         *age.X25519Identity
	logs       *bytes.Buffer
	log        *slog.Logger
	signer     *sign.Signer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureIn(t, t.TempDir())
}

// newFixtureIn lays the fixture out in dir (e.g. one another account can
// reach).
func newFixtureIn(t *testing.T, dir string) *fixture {
	t.Helper()
	f := &fixture{dir: dir, state: filepath.Join(dir, "state"), logs: &bytes.Buffer{}}
	f.log = slog.New(slog.NewTextHandler(f.logs, nil))
	for _, p := range []**remote.Upstream{&f.a, &f.b} {
		name := filepath.Join(dir, map[bool]string{true: "a", false: "b"}[p == &f.a])
		ups, err := remote.Resolve(context.Background(), name, remote.Options{})
		if err != nil || ups[0].Err != nil {
			t.Fatal(err, ups[0].Err)
		}
		*p = ups[0]
	}
	f.id, _ = age.GenerateX25519Identity()
	keyPath := filepath.Join(dir, "signing_key")
	if _, err := sign.GenerateKey(keyPath, "test"); err != nil {
		t.Fatal(err)
	}
	f.signer, _ = sign.LoadSigner(keyPath)
	var err error
	if f.keys, err = keys.Load(keys.Sources{Recipients: []string{f.id.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// archive runs one archive with b down and keeps the spool as archive's
// CLI does; it returns the result and the dump.
func (f *fixture) archive(t *testing.T, now time.Time, size int, max int64) (*archive.Result, []byte) {
	t.Helper()
	dump := bytes.Repeat([]byte(now.String()), size/len(now.String())+1)[:size]
	path := filepath.Join(f.dir, "db1.sql")
	os.WriteFile(path, dump, 0o600)
	src, err := archive.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sp, err := NewSpool(f.state, max)
	if err != nil {
		t.Fatal(err)
	}
	down := &remote.Upstream{Name: f.b.Name, Root: f.b.Root, Err: errors.New("connection refused")}
	res, err := archive.Run(context.Background(), archive.Job{Database: "db1", Source: src, Keys: f.keys,
		Upstreams: []*remote.Upstream{f.a, down}, Log: f.log, Version: "test", Now: func() time.Time { return now }, Spool: sp,
		Signer: f.signer})
	if err == nil || res.Failed() != 1 {
		t.Fatalf("want b to fail: %v", err)
	}
	err = sp.Keep(Keep{Key: res.Key, Size: res.Manifest.Ciphertext.Size, Manifest: res.ManifestBody, Signature: res.Signature,
		Pending: []string{f.b.Name}, Held: []string{f.a.Name}}, f.log)
	if err != nil && max > 1<<20 {
		t.Fatal(err)
	}
	return res, dump
}

func TestKeepAndRetry(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)
	res, dump := f.archive(t, now, 300_000, 1<<30)
	es, err := List(f.state, "")
	if err != nil || len(es) != 1 {
		t.Fatalf("List = %v, %v", es, err)
	}
	e := es[0]
	// The backlog holds the very bytes a got, decryptable, never plaintext.
	held, _ := os.ReadFile(e.DataPath())
	onA, _ := os.ReadFile(filepath.Join(f.dir, "a", res.Key))
	if !bytes.Equal(held, onA) {
		t.Fatal("backlog copy differs from a's")
	}
	r, err := age.Decrypt(bytes.NewReader(held), f.id)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(r)
	if !bytes.Equal(plain.Bytes(), dump) {
		t.Fatal("backlog copy does not decrypt to the dump")
	}
	filepath.Walk(f.state, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		switch {
		case p == f.state:
			want = 0o700
		case info.IsDir():
			want = 0o750
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v", p, info.Mode().Perm())
		}
		return nil
	})
	// A leftover of the failed upload on b (data, no manifest) is replaced.
	os.MkdirAll(filepath.Join(f.dir, "b", "db1"), 0o700)
	os.WriteFile(filepath.Join(f.dir, "b", res.Key), []byte("half an upload"), 0o600)

	// b is still down: the entry stays, with the reason.
	down := &remote.Upstream{Name: f.b.Name, Root: f.b.Root, Err: errors.New("connection refused")}
	rr := Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, down}, Log: f.log})
	if rr.Remaining != 1 || rr.Failed != 1 || rr.Cleared != 0 {
		t.Fatalf("retry while down: %+v", rr)
	}
	es, _ = List(f.state, "")
	if len(es) != 1 || !strings.Contains(es[0].Meta.LastErrors[f.b.Name], "connection refused") {
		t.Fatalf("after failed retry: %+v", es)
	}
	// Held by another process: skipped, untouched.
	l, err := tryLockDir(es[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	rr = Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, f.b}, Log: f.log})
	l.release()
	if rr.Busy != 1 || rr.Delivered != 0 {
		t.Fatalf("retry of a locked entry: %+v", rr)
	}
	// b is back.
	rr = Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, f.b}, Log: f.log})
	if rr.Delivered != 1 || rr.Cleared != 1 || rr.Remaining != 0 {
		t.Fatalf("retry: %+v\n%s", rr, f.logs)
	}
	onB, _ := os.ReadFile(filepath.Join(f.dir, "b", res.Key))
	mA, _ := os.ReadFile(filepath.Join(f.dir, "a", res.Key+".manifest.json"))
	mB, _ := os.ReadFile(filepath.Join(f.dir, "b", res.Key+".manifest.json"))
	if !bytes.Equal(onB, onA) || !bytes.Equal(mA, mB) || len(mB) == 0 {
		t.Fatal("b's copy or manifest differs from a's")
	}
	// The signature travelled with the backlog entry.
	sA, _ := os.ReadFile(filepath.Join(f.dir, "a", res.Key+".manifest.json.sig"))
	sB, _ := os.ReadFile(filepath.Join(f.dir, "b", res.Key+".manifest.json.sig"))
	if len(sA) == 0 || !bytes.Equal(sA, sB) {
		t.Fatal("b lacks a's signature after the retry")
	}
	if u, _ := Usage(f.state); u.Archives != 0 {
		t.Fatalf("backlog not empty: %+v", u)
	}
	if left, _ := os.ReadDir(entriesDir(f.state)); len(left) != 0 {
		t.Fatalf("empty folders left: %v", left)
	}
}

// TestAlreadyDelivered: an upstream that meanwhile got the archive (by heal,
// or a run that died after the upload) is marked done without an upload.
func TestAlreadyDelivered(t *testing.T) {
	f := newFixture(t)
	res, _ := f.archive(t, time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC), 100_000, 1<<30)
	for _, name := range []string{res.Key, res.Key + ".manifest.json"} {
		b, _ := os.ReadFile(filepath.Join(f.dir, "a", name))
		os.MkdirAll(filepath.Join(f.dir, "b", "db1"), 0o700)
		os.WriteFile(filepath.Join(f.dir, "b", name), b, 0o600)
	}
	rr := Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, f.b}, Log: f.log})
	if rr.Delivered != 1 || rr.Cleared != 1 || !strings.Contains(f.logs.String(), "was already complete") {
		t.Fatalf("%+v\n%s", rr, f.logs)
	}
}

// TestDamagedBacklogCopy: a spooled file that no longer matches its
// manifest is never uploaded as complete; the entry stays.
func TestDamagedBacklogCopy(t *testing.T) {
	f := newFixture(t)
	res, _ := f.archive(t, time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC), 100_000, 1<<30)
	es, _ := List(f.state, "")
	data, _ := os.ReadFile(es[0].DataPath())
	data[len(data)/2] ^= 1
	os.WriteFile(es[0].DataPath(), data, 0o600)
	rr := Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, f.b}, Log: f.log})
	if rr.Remaining != 1 || !strings.Contains(f.logs.String(), "damaged") {
		t.Fatalf("%+v\n%s", rr, f.logs)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "b", res.Key+".manifest.json")); err == nil {
		t.Fatal("a damaged copy got a manifest")
	}
}

// TestCapDropsOldest: with room for two archives, the third drops the
// oldest, loudly, naming it and who still holds it; one larger than the cap
// is not kept and drops nothing.
func TestCapDropsOldest(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)
	var keys []string
	for i := range 3 {
		res, _ := f.archive(t, t0.Add(time.Duration(i)*time.Hour), 100_000, 250_000)
		keys = append(keys, res.Key)
	}
	es, _ := List(f.state, "")
	if len(es) != 2 || es[0].Key != keys[1] || es[1].Key != keys[2] {
		t.Fatalf("entries %v, want the two newest of %v", es, keys)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "BACKLOG FULL") ||
		!strings.Contains(logs, "dropped "+keys[0]) || !strings.Contains(logs, "still held by "+f.a.Name) {
		t.Fatalf("no loud drop line:\n%s", logs)
	}
	f.logs.Reset()
	sp, _ := NewSpool(f.state, 250_000)
	sp.Write(make([]byte, 200_000))
	if _, err := sp.Write(make([]byte, 100_000)); err == nil || !strings.Contains(err.Error(), "size cap") {
		t.Fatalf("write past the cap: %v", err)
	}
	err := sp.Keep(Keep{Key: "db1/db1_20261122T000000Z.sql.age", Size: 300_000}, f.log)
	if err == nil {
		t.Fatal("kept an archive larger than the cap")
	}
	if es2, _ := List(f.state, ""); len(es2) != 2 {
		t.Fatalf("a failed keep changed the backlog: %v", es2)
	}
	if tmp, _ := os.ReadDir(tmpDir(f.state)); len(tmp) != 0 {
		t.Fatalf("spool left in tmp: %v", tmp)
	}
}

// TestStaleSpoolsCleaned: what a crashed run left in tmp goes at the next
// spool; a spool in use is left alone.
func TestStaleSpoolsCleaned(t *testing.T) {
	state := t.TempDir()
	live, err := NewSpool(state, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(tmpDir(state), "spool-crashed")
	os.MkdirAll(crashed, 0o700)
	os.WriteFile(filepath.Join(crashed, dataFile), []byte("x"), 0o600)
	next, err := NewSpool(state, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); err == nil {
		t.Fatal("crashed spool not removed")
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Fatalf("live spool removed: %v", err)
	}
	live.Discard()
	next.Discard()
	if left, _ := os.ReadDir(tmpDir(state)); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// TestConcurrentRetries: two retries at once (two postgresqlBackup units)
// never deliver the same entry twice; between them every entry is
// delivered once and removed.
func TestConcurrentRetries(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)
	for i := range 6 {
		f.archive(t, t0.Add(time.Duration(i)*time.Minute), 50_000, 1<<30)
	}
	results := make(chan *RetryResult, 2)
	for range 2 {
		go func() {
			results <- Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, f.b}, Log: f.log})
		}()
	}
	a, b := <-results, <-results
	if a.Delivered+b.Delivered != 6 || a.Cleared+b.Cleared != 6 || a.Failed+b.Failed != 0 {
		t.Fatalf("retries: %+v and %+v\n%s", a, b, f.logs)
	}
	if u, _ := Usage(f.state); u.Archives != 0 {
		t.Fatalf("left: %+v", u)
	}
}

// TestModesUnderStrictUmask: with a unit's UMask=0077 the backlog's folders
// are still 0750 (the state directory's group reads Usage), files 0600.
func TestModesUnderStrictUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	f := newFixture(t)
	f.archive(t, time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC), 10_000, 1<<30)
	filepath.Walk(Root(f.state), func(p string, info os.FileInfo, err error) error {
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o750
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
}
