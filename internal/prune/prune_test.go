package prune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/rclone/rclone/backend/local"
	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/retention"
)

// localWorld is three local folders, real rclone local backends, each
// holding the same complete archives of db1 (one per hour before t0).
type localWorld struct {
	dirs []string
	ups  []*remote.Upstream
	keys []string // data keys, newest first
}

func newLocalWorld(t *testing.T, archives int) *localWorld {
	t.Helper()
	w := &localWorld{}
	for range 3 {
		dir := t.TempDir()
		f, err := fs.NewFs(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		w.dirs = append(w.dirs, dir)
		w.ups = append(w.ups, &remote.Upstream{Name: dir, Root: dir, Fs: f})
	}
	for h := range archives {
		n, _ := naming.New("db1", t0.Add(-time.Duration(h)*time.Hour), ".gz")
		data := bytes.Repeat([]byte{byte(h)}, 300)
		sum := sha256.Sum256(data)
		m := manifest.Manifest{Format: manifest.FormatVersion, Database: "db1", Archive: n.Base(), Created: n.Created,
			Dump:       manifest.Dump{Size: 100, SHA256: hex.EncodeToString(sum[:]), Compression: "gzip", Source: "file"},
			Ciphertext: manifest.Blob{Size: 300, SHA256: hex.EncodeToString(sum[:]), HeaderSHA256: hex.EncodeToString(sum[:])},
			Key:        manifest.Key{Recipients: []manifest.Recipient{{Kind: "scrypt"}}},
			Pgarchive:  manifest.Provenance{Version: "test"}}
		js, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		key := n.Key("pre")
		w.keys = append(w.keys, key)
		for _, d := range w.dirs {
			write(t, filepath.Join(d, key), data)
			write(t, filepath.Join(d, key+naming.ManifestSuffix), js)
		}
	}
	return w
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *localWorld) files(t *testing.T, i int) []string {
	t.Helper()
	var out []string
	filepath.Walk(w.dirs[i], func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(w.dirs[i], p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func (w *localWorld) scan(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Scan(context.Background(), w.ups, "pre", "", catalog.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func objectsOf(keys ...string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k, k+naming.ManifestSuffix)
	}
	sort.Strings(out)
	return out
}

func TestRunDeletesEverywhereButReadOnly(t *testing.T) {
	w := newLocalWorld(t, 4)
	var logs bytes.Buffer
	opt := Options{Policy: retention.Policy{Last: 2}, Now: t0, Deletable: []bool{true, true, false},
		Log: slog.New(slog.NewTextHandler(&logs, nil))}

	dry := opt
	dry.DryRun = true
	res, err := Run(context.Background(), w.ups, w.scan(t), "pre", dry)
	if err != nil || res.Databases[0].Removed != 2 || res.Databases[0].Upstreams[0].Removed != 2 || res.Databases[0].Upstreams[2].Removed != 0 {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	for i := range w.dirs {
		if got := w.files(t, i); !reflect.DeepEqual(got, objectsOf(w.keys...)) {
			t.Fatalf("dry run changed upstream %d: %v", i, got)
		}
	}

	res, err = Run(context.Background(), w.ups, w.scan(t), "pre", opt)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{objectsOf(w.keys[:2]...), objectsOf(w.keys[:2]...), objectsOf(w.keys...)} {
		if got := w.files(t, i); !reflect.DeepEqual(got, want) {
			t.Errorf("upstream %d holds %v, want %v (and no probe)", i, got, want)
		}
	}
	d := res.Databases[0]
	if d.Kept != 2 || d.Removed != 2 || d.Failed != 0 {
		t.Errorf("counts %+v", d)
	}
	for i, want := range []UpstreamCount{{w.dirs[0], 2, 2, 0}, {w.dirs[1], 2, 2, 0}, {w.dirs[2], 2, 0, 0}} {
		if d.Upstreams[i] != want {
			t.Errorf("upstream %d: %+v, want %+v", i, d.Upstreams[i], want)
		}
	}
	row := d.Archives[3]
	if row.Action != "remove" || !reflect.DeepEqual(row.RemovedFrom, w.dirs[:2]) || !reflect.DeepEqual(row.LeftOn, w.dirs[2:]) {
		t.Errorf("row %+v", row)
	}
	if n := strings.Count(logs.String(), "prune: removed db1_"); n != 2 || !strings.Contains(logs.String(), "kept 2 archives, removed 2") {
		t.Errorf("log:\n%s", logs.String())
	}

	// Again: the read-only copies are all that is left of the removed
	// archives, so nothing is deleted or reported as removed.
	logs.Reset()
	res, err = Run(context.Background(), w.ups, w.scan(t), "pre", opt)
	if d := res.Databases[0]; err != nil || d.Removed != 0 || d.ReadOnly != 2 || d.Kept != 2 {
		t.Errorf("second run: %v %+v", err, d)
	}
	if strings.Contains(logs.String(), "prune: removed") || !strings.Contains(logs.String(), "removed 0, 2 only on read-only upstreams (left alone)") {
		t.Errorf("second run log:\n%s", logs.String())
	}
}

func TestRunRefusesUnlistedUpstream(t *testing.T) {
	w := newLocalWorld(t, 3)
	cat := w.scan(t)
	cat.ListErrs[1] = errors.New("connection refused")
	_, err := Run(context.Background(), w.ups, cat, "pre", Options{Policy: retention.Policy{Last: 1}, Now: t0, Deletable: []bool{true, true, true}})
	if err == nil || !strings.Contains(err.Error(), w.dirs[1]+": connection refused") || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("err = %v", err)
	}
	for i := range w.dirs {
		if got := w.files(t, i); len(got) != 6 {
			t.Errorf("upstream %d: %v", i, got)
		}
	}
}

func TestRunRefusesEmptyPolicy(t *testing.T) {
	w := newLocalWorld(t, 2)
	if _, err := Run(context.Background(), w.ups, w.scan(t), "pre", Options{Now: t0}); !errors.Is(err, retention.ErrEmptyPolicy) {
		t.Fatalf("err = %v", err)
	}
}

// A manifest that cannot be read (here: garbage on every upstream) keeps its
// archive out of the plan: it is neither deleted nor allowed to count as the
// newest complete archive.
func TestRunLeavesUnreadableManifestsAlone(t *testing.T) {
	w := newLocalWorld(t, 3)
	for _, d := range w.dirs {
		write(t, filepath.Join(d, w.keys[0]+naming.ManifestSuffix), []byte("{not json"))
		write(t, filepath.Join(d, w.keys[2]+naming.ManifestSuffix), []byte("{not json"))
	}
	var logs bytes.Buffer
	res, err := Run(context.Background(), w.ups, w.scan(t), "pre", Options{Policy: retention.Policy{Last: 1}, Now: t0,
		Deletable: []bool{true, true, true}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Databases[0]
	if d.Skipped != 2 || d.Kept != 1 || d.Removed != 0 || d.Plan.Keep[0].ID != w.keys[1] {
		t.Errorf("result %+v", d)
	}
	for i := range w.dirs {
		if got := w.files(t, i); len(got) != 6 {
			t.Errorf("upstream %d: %v", i, got)
		}
	}
	if strings.Count(logs.String(), "manifest unreadable") != 2 {
		t.Errorf("log:\n%s", logs.String())
	}
}
