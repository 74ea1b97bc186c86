package heal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/union"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// world: three local folders in a union (rclone's real local backend) and
// one archive on all of them.
type world struct {
	dir  string
	ups  []*remote.Upstream
	key  string
	good []byte
	body []byte
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	conf := filepath.Join(w.dir, "rclone.conf")
	var roots []string
	for _, n := range []string{"a", "b", "c"} {
		roots = append(roots, filepath.Join(w.dir, n))
	}
	os.WriteFile(conf, []byte("[u]\ntype = union\nupstreams = "+strings.Join(roots, " ")+"\n"), 0o600)
	if err := remote.LoadConfig(conf); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.ups, err = remote.Resolve(context.Background(), "u:", remote.Options{Read: true}); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	k, _ := keys.Load(keys.Sources{Recipients: []string{id.Recipient().String()}})
	dump := filepath.Join(w.dir, "db1.sql")
	os.WriteFile(dump, bytes.Repeat([]byte("heal me "), 100_000), 0o600)
	src, _ := archive.OpenFile(dump)
	defer src.Close()
	res, err := archive.Run(context.Background(), archive.Job{Database: "db1", Source: src, Keys: k, Upstreams: w.ups,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.key, w.body = res.Key, res.ManifestBody
	w.good, _ = os.ReadFile(w.path("a", ""))
	return w
}

func (w *world) path(up, suffix string) string {
	return filepath.Join(w.dir, up, filepath.FromSlash(w.key)+suffix)
}

func (w *world) flip(up string) {
	b, _ := os.ReadFile(w.path(up, ""))
	b[len(b)/2] ^= 0xff
	os.WriteFile(w.path(up, ""), b, 0o600)
}

func (w *world) heal(t *testing.T, quick, dryRun bool) (*Result, string) {
	t.Helper()
	cat, err := catalog.Scan(context.Background(), w.ups, "", "", catalog.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	writable := map[string]bool{}
	for _, u := range w.ups {
		writable[u.Name] = true
	}
	res := Run(context.Background(), cat.Archives, Options{Upstreams: w.ups, Writable: writable, Quick: quick, DryRun: dryRun,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	return res, logs.String()
}

func (w *world) checkWhole(t *testing.T) {
	t.Helper()
	for _, up := range []string{"a", "b", "c"} {
		data, _ := os.ReadFile(w.path(up, ""))
		body, _ := os.ReadFile(w.path(up, ".manifest.json"))
		if !bytes.Equal(data, w.good) || !bytes.Equal(body, w.body) {
			t.Fatalf("%s does not hold the archive intact", up)
		}
	}
}

// checkCounts compares db1's per-upstream outcome with want (a, b, c; all
// writable and listed).
func (w *world) checkCounts(t *testing.T, res *Result, want [3]UpstreamCount) {
	t.Helper()
	if len(res.Databases) != 1 || res.Databases[0].Database != "db1" || len(res.Databases[0].Upstreams) != 3 {
		t.Fatalf("databases: %+v", res.Databases)
	}
	for i, got := range res.Databases[0].Upstreams {
		want[i].Upstream, want[i].Writable, want[i].Listed = w.ups[i].Name, true, true
		if got != want[i] {
			t.Errorf("upstream %d: %+v, want %+v", i, got, want[i])
		}
	}
}

// TestHealMissingAndDamaged: b's copy deleted and c's flipped (the local
// backend's CRC-32 shows it): both are healed, from a only.
func TestHealMissingAndDamaged(t *testing.T) {
	w := newWorld(t)
	os.Remove(w.path("b", ""))
	os.Remove(w.path("b", ".manifest.json"))
	w.flip("c")
	res, logs := w.heal(t, false, true)
	if res.Planned != 2 || res.Healed != 0 {
		t.Fatalf("dry run: %+v\n%s", res, logs)
	}
	w.checkCounts(t, res, [3]UpstreamCount{{Complete: 1}, {}, {}}) // c's damage is known
	if _, err := os.Stat(w.path("b", "")); err == nil {
		t.Fatal("dry run wrote")
	}
	res, logs = w.heal(t, false, false)
	if res.Healed != 2 || res.Failed != 0 || !strings.Contains(logs, "healed "+w.key+" on "+w.ups[1].Name+" from "+w.ups[0].Name) {
		t.Fatalf("%+v\n%s", res, logs)
	}
	w.checkCounts(t, res, [3]UpstreamCount{{Complete: 1}, {Healed: 1, Complete: 1}, {Healed: 1, Complete: 1}})
	w.checkWhole(t)
	if res, _ := w.heal(t, false, false); res.Healthy != 1 || res.Healed != 0 {
		t.Fatalf("second run: %+v", res)
	}
}

// TestHealSkipsDamagedSource: a quick heal trusts the listing, so the
// flipped copy on a is tried first as a source; its SHA-256 gives it away,
// c is used instead, and a is healed as well.
func TestHealSkipsDamagedSource(t *testing.T) {
	w := newWorld(t)
	os.Remove(w.path("b", ""))
	w.flip("a")
	res, logs := w.heal(t, true, false)
	if res.Healed != 2 || res.BadSources != 1 || res.Failed != 0 {
		t.Fatalf("%+v\n%s", res, logs)
	}
	if !strings.Contains(logs, "healed "+w.key+" on "+w.ups[1].Name+" from "+w.ups[2].Name) ||
		!strings.Contains(logs, w.ups[0].Name+" is damaged") {
		t.Fatalf("logs:\n%s", logs)
	}
	w.checkWhole(t)
}

// TestHealNoGoodSource: with every complete copy damaged, nothing gets a
// manifest it should not have, and the failure is reported.
func TestHealNoGoodSource(t *testing.T) {
	w := newWorld(t)
	os.Remove(w.path("b", ""))
	os.Remove(w.path("b", ".manifest.json"))
	w.flip("a")
	w.flip("c")
	res, logs := w.heal(t, true, false)
	if res.Healed != 0 || res.Failed == 0 {
		t.Fatalf("%+v\n%s", res, logs)
	}
	// a and c turned out damaged when read, and could not be healed either.
	w.checkCounts(t, res, [3]UpstreamCount{{Failed: 1}, {Failed: 1}, {Failed: 1}})
	if _, err := os.Stat(w.path("b", ".manifest.json")); err == nil {
		t.Fatal("b got a manifest from a damaged source")
	}
}

// TestCountsUnlistedAndReadOnly: per database and upstream, from listings
// alone (a dry, quick run reads nothing): an unlisted upstream is marked so,
// a read-only member is counted but never a target, and an archive with a
// manifest but no complete copy anywhere is a failure on every writable,
// listed upstream.
func TestCountsUnlistedAndReadOnly(t *testing.T) {
	const (
		k1 = "db1/db1_20261120T010000Z.sql.gz.age"
		k2 = "db1/db1_20261121T010000Z.sql.gz.age"
		k3 = "db2/db2_20261121T010000Z.sql.gz.age"
	)
	whole := func(keys ...string) []catalog.Object {
		var out []catalog.Object
		for _, k := range keys {
			out = append(out, catalog.Object{Key: k, Size: 10}, catalog.Object{Key: k + ".manifest.json", Size: 1})
		}
		return out
	}
	names := []string{"a", "b", "c", "ro"}
	listings := [][]catalog.Object{
		append(whole(k1, k2), catalog.Object{Key: k3 + ".manifest.json", Size: 1}), // k3: no data
		whole(k1),
		nil,
		whole(k1, k2),
	}
	cat := catalog.Assemble("", names, listings, []error{nil, nil, errors.New("connection refused"), nil})
	for _, a := range cat.Archives {
		a.Manifest = &manifest.Manifest{Format: manifest.FormatVersion, Database: a.Name.Database, Archive: a.Name.Base(),
			Created: a.Name.Created, Dump: manifest.Dump{Size: 5, SHA256: strings.Repeat("ab", 32), Compression: "gzip", Source: "file"},
			Ciphertext: manifest.Blob{Size: 10, SHA256: strings.Repeat("cd", 32), HeaderSHA256: strings.Repeat("ef", 32)},
			Key:        manifest.Key{Recipients: []manifest.Recipient{{Kind: "x25519", Fingerprint: "f"}}}, Pgarchive: manifest.Provenance{Version: "test"}}
		if err := a.Manifest.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	var ups []*remote.Upstream
	for _, n := range names {
		ups = append(ups, &remote.Upstream{Name: n})
	}
	res := Run(context.Background(), cat.Archives, Options{Upstreams: ups, Writable: map[string]bool{"a": true, "b": true, "c": true},
		Quick: true, DryRun: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	want := []Database{
		{Database: "db1", Upstreams: []UpstreamCount{
			{Upstream: "a", Writable: true, Listed: true, Complete: 2},
			{Upstream: "b", Writable: true, Listed: true, Complete: 1},
			{Upstream: "c", Writable: true},
			{Upstream: "ro", Listed: true, Complete: 2},
		}},
		{Database: "db2", Upstreams: []UpstreamCount{
			{Upstream: "a", Writable: true, Listed: true, Failed: 1},
			{Upstream: "b", Writable: true, Listed: true, Failed: 1},
			{Upstream: "c", Writable: true},
			{Upstream: "ro", Listed: true},
		}},
	}
	if !reflect.DeepEqual(res.Databases, want) {
		t.Fatalf("databases:\n%+v\nwant\n%+v", res.Databases, want)
	}
	if res.Planned != 1 || res.Failed != 1 {
		t.Fatalf("totals: %+v", res)
	}
}
