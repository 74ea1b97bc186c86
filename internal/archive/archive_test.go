package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/union"

	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// setup returns two local-folder upstreams (rclone's real local backend) and
// a key set with its identity.
func setup(t *testing.T) ([]*remote.Upstream, *keys.Keys, age.Identity, string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "rclone.conf")
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(conf, []byte("[u]\ntype = union\nupstreams = "+a+" "+b+"\n"), 0o600)
	if err := remote.LoadConfig(conf); err != nil {
		t.Fatal(err)
	}
	ups, err := remote.Resolve(context.Background(), "u:", remote.Options{})
	if err != nil || len(ups) != 2 {
		t.Fatalf("resolve: %v, %d upstreams", err, len(ups))
	}
	id, _ := age.GenerateX25519Identity()
	k, err := keys.Load(keys.Sources{Recipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	return ups, k, id, dir
}

func job(t *testing.T, ups []*remote.Upstream, k *keys.Keys, src *Source, now time.Time) Job {
	return Job{Database: "db1", Source: src, Keys: k, Upstreams: ups, Version: "test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
}

// TestSameSecondNeverOverwrites: three runs with the same clock reading get
// three names (the second, then each run's own ID), and each copy decrypts
// to its own dump.
func TestSameSecondNeverOverwrites(t *testing.T) {
	ups, k, id, dir := setup(t)
	now := time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC)
	seen := map[string]bool{}
	for i := range 3 {
		dump := filepath.Join(dir, "db1.sql")
		content := []byte(strings.Repeat("run ", 1000) + fmt.Sprint(i))
		os.WriteFile(dump, content, 0o600)
		src, err := OpenFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), job(t, ups, k, src, now))
		src.Close()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		name := res.Name.Base()
		if !strings.HasPrefix(name, "db1_20261121T142407Z-") || len(res.Name.ID) != naming.IDLen || seen[name] {
			t.Fatalf("run %d named %s: want the second and a run ID of its own", i, name)
		}
		seen[name] = true
		for _, up := range []string{"a", "b"} {
			f, err := os.Open(filepath.Join(dir, up, "db1", name))
			if err != nil {
				t.Fatal(err)
			}
			r, err := age.Decrypt(f, id)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			f.Close()
			if !bytes.Equal(got, content) {
				t.Fatalf("%s/%s does not decrypt to run %d's dump", up, name, i)
			}
			mf, err := os.Open(filepath.Join(dir, up, "db1", name+".manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if m, err := manifest.Parse(mf); err != nil || m.Archive != name || m.Dump.Size != int64(len(content)) {
				t.Fatalf("manifest of %s: %v %+v", name, err, m)
			}
			mf.Close()
		}
	}
}

// TestChangingDumpIsRefused: a dump that grows or shrinks while it is read
// fails the run, and no upstream gets a manifest.
func TestChangingDumpIsRefused(t *testing.T) {
	ups, k, _, dir := setup(t)
	dump := filepath.Join(dir, "db1.sql")
	os.WriteFile(dump, bytes.Repeat([]byte("x"), 3<<20), 0o600)
	src, err := OpenFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.Truncate(dump, 1<<20) // pg_dump's output rewritten under our feet
	if _, err := Run(context.Background(), job(t, ups, k, src, time.Now())); err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("want a 'shrank' error, got %v", err)
	}
	for _, up := range []string{"a", "b"} {
		matches, _ := filepath.Glob(filepath.Join(dir, up, "db1", "*.manifest.json"))
		if len(matches) != 0 {
			t.Fatalf("%s has a manifest for a broken archive: %v", up, matches)
		}
	}
}
