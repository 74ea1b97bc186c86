package walarchive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/rclone/rclone/backend/local"

	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// cluster is a fake data directory (pg_control's identifier, PG_VERSION)
// and two upstreams on rclone's real local backend.
type cluster struct {
	data string
	ups  []*remote.Upstream
	keys *keys.Keys
	ids  *keys.Identities
}

func newCluster(tb testing.TB) *cluster {
	dir := tb.TempDir()
	c := &cluster{data: filepath.Join(dir, "data")}
	os.MkdirAll(filepath.Join(c.data, "global"), 0o700)
	os.MkdirAll(filepath.Join(c.data, "pg_wal"), 0o700)
	ctl := make([]byte, 296)
	binary.NativeEndian.PutUint64(ctl, 7312345678901234567)
	os.WriteFile(filepath.Join(c.data, "global", "pg_control"), ctl, 0o600)
	os.WriteFile(filepath.Join(c.data, "PG_VERSION"), []byte("15\n"), 0o600)
	for _, n := range []string{"a", "b"} {
		ups, err := remote.Resolve(context.Background(), filepath.Join(dir, n), remote.Options{})
		if err != nil || ups[0].Err != nil {
			tb.Fatal(err)
		}
		c.ups = append(c.ups, ups[0])
	}
	id, _ := age.GenerateX25519Identity()
	idFile := filepath.Join(dir, "id.txt")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	var err error
	if c.keys, err = keys.Load(keys.Sources{Recipients: []string{id.Recipient().String()}}); err != nil {
		tb.Fatal(err)
	}
	if c.ids, err = keys.LoadIdentities(idFile, ""); err != nil {
		tb.Fatal(err)
	}
	return c
}

// segment writes a WAL-like file: half random, half zeros.
func (c *cluster) segment(tb testing.TB, name string) []byte {
	b := make([]byte, 16<<20)
	rand.Read(b[:8<<20])
	if err := os.WriteFile(filepath.Join(c.data, "pg_wal", name), b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return b
}

func (c *cluster) push(name string) (*PushResult, error) {
	return Push(context.Background(), PushOptions{Path: filepath.Join("pg_wal", name), DataDir: c.data, Keys: c.keys, Upstreams: c.ups,
		Compression: "zstd", Log: slog.New(slog.DiscardHandler), Version: "test", Now: time.Now})
}

func TestPushFetch(t *testing.T) {
	c := newCluster(t)
	want := c.segment(t, "000000010000000000000002")
	if _, err := c.push("000000010000000000000002"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.push("000000010000000000000002"); err != nil {
		t.Fatalf("second push of the same file: %v", err)
	}
	dest := filepath.Join("pg_wal", "RECOVERYXLOG")
	opt := FetchOptions{File: "000000010000000000000002", Dest: dest, DataDir: c.data, Upstreams: c.ups, Identities: c.ids, Log: slog.New(slog.DiscardHandler)}
	if _, err := Fetch(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(c.data, dest)); !bytes.Equal(got, want) {
		t.Fatal("fetched file differs")
	}
	opt.File = "000000010000000000000003"
	if _, err := Fetch(context.Background(), opt); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	// Truncated on every upstream: an error that stops recovery, never
	// "not found".
	key := "wal/7312345678901234567/15/000000010000000000000002.age"
	for _, u := range c.ups {
		p := filepath.Join(u.Fs.Root(), filepath.FromSlash(key))
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)/2], 0o600)
	}
	opt.File = "000000010000000000000002"
	if _, err := Fetch(context.Background(), opt); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("truncated everywhere: %v", err)
	}
	c.segment(t, "000000010000000000000002") // other content
	if _, err := c.push("000000010000000000000002"); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting push: %v", err)
	}
}

// BenchmarkPush is one segment's push to two local folders: the CPU a
// wal-push spends besides its process start.
func BenchmarkPush(b *testing.B) {
	c := newCluster(b)
	for i := 0; i < b.N; i++ {
		name := "0000000100000000000000" + string("0123456789ABCDEF"[i/16%16]) + string("0123456789ABCDEF"[i%16])
		c.segment(b, name)
		b.StartTimer()
		if _, err := c.push(name); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
}

func TestPrefetchTakeRefusesPaths(t *testing.T) {
	c := newCluster(t)
	spool := PrefetchFor(c.data)
	os.MkdirAll(spool.Dir, 0o700)
	secret := filepath.Join(c.data, "PG_VERSION")
	if spool.Take("../../PG_VERSION", filepath.Join(t.TempDir(), "out")) {
		t.Fatal("Take moved a file from outside the spool")
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(spool.Dir, "000000010000000000000002"), []byte("x"), 0o600)
	if !spool.Take("000000010000000000000002", filepath.Join(c.data, "pg_wal", "RECOVERYXLOG")) {
		t.Fatal("Take did not move a prefetched segment")
	}
}
