package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/rclone/rclone/backend/local"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// world is two local-folder upstreams (rclone's real local backend), a
// state directory, a metrics directory and a key.
type world struct {
	dir      string
	a, b     *remote.Upstream
	keys     *keys.Keys
	identity *age.X25519Identity
	logs     *bytes.Buffer
	log      *slog.Logger
	state    string
	metrics  string
	now      time.Time
	runs     int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), logs: &bytes.Buffer{}, now: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	w.log = slog.New(slog.NewTextHandler(w.logs, nil))
	w.state, w.metrics = filepath.Join(w.dir, "state"), filepath.Join(w.dir, "metrics")
	os.Mkdir(w.metrics, 0o755)
	for _, p := range []struct {
		up   **remote.Upstream
		name string
	}{{&w.a, "a"}, {&w.b, "b"}} {
		ups, err := remote.Resolve(context.Background(), filepath.Join(w.dir, p.name), remote.Options{})
		if err != nil || ups[0].Err != nil {
			t.Fatal(err, ups[0].Err)
		}
		*p.up = ups[0]
	}
	id, _ := age.GenerateX25519Identity()
	w.identity = id
	var err error
	if w.keys, err = keys.Load(keys.Sources{Recipients: []string{id.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	return w
}

// options are one night's run of db1, the clock a day later each time.
func (w *world) options(t *testing.T) NightlyOptions {
	t.Helper()
	w.runs++
	path := filepath.Join(w.dir, "db1.sql")
	os.WriteFile(path, []byte(fmt.Sprintf("-- night %d\nSELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n", w.runs)), 0o600)
	src, err := archive.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	now := w.now.Add(time.Duration(w.runs) * 24 * time.Hour)
	return NightlyOptions{Database: "db1", Remote: "u:", Source: src, Keys: w.keys, CheckDump: true,
		Upstreams: []*remote.Upstream{w.a, w.b}, StateDir: w.state, BacklogMaxSize: 1 << 30, MetricsDir: w.metrics,
		ReadUpstreams: func(context.Context) ([]*remote.Upstream, error) { return []*remote.Upstream{w.a, w.b}, nil },
		Log:           w.log, Version: "test", Host: "db-host", Now: func() time.Time { return now }}
}

// down makes b fail the way an unreachable upstream does, until up.
func (w *world) down() { w.b.Err = errors.New("connection refused") }
func (w *world) up()   { w.b.Err = nil }

// manifests counts the complete copies of db1 in an upstream's folder.
func (w *world) manifests(t *testing.T, up string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(w.dir, up, "db1", "*"+naming.ManifestSuffix))
	return len(m)
}

func (w *world) backlog(t *testing.T) int {
	t.Helper()
	u, err := backlog.Usage(w.state)
	if err != nil {
		t.Fatal(err)
	}
	return u.Archives
}

// A night with b down keeps the archive in the backlog and fails; the next
// night delivers it before its own archive, and both end up everywhere.
func TestNightlyBacklogThenRetry(t *testing.T) {
	w := newWorld(t)
	w.down()
	res, err := Nightly(context.Background(), w.options(t))
	if err == nil || !strings.Contains(err.Error(), "1 of 2 upstreams do not hold") || res.Failed() != 1 {
		t.Fatalf("night 1: %v", err)
	}
	// The dump check's finding is recorded in the manifest (format 3).
	if res.Manifest.Format != 3 || res.Manifest.Dump.Format != "plain" {
		t.Fatalf("manifest format %d, dump format %q", res.Manifest.Format, res.Manifest.Dump.Format)
	}
	if w.backlog(t) != 1 || w.manifests(t, "a") != 1 || w.manifests(t, "b") != 0 {
		t.Fatalf("after night 1: backlog %d, a %d, b %d", w.backlog(t), w.manifests(t, "a"), w.manifests(t, "b"))
	}
	if !strings.Contains(w.logs.String(), "backlog: kept db1/db1_20261202T020000Z-") {
		t.Fatalf("the kept archive was not logged:\n%s", w.logs)
	}
	prom, _ := os.ReadFile(filepath.Join(w.metrics, "pgarchive-archive-db1.prom"))
	if !strings.Contains(string(prom), "pgarchive_backlog_archives") {
		t.Fatalf("metrics lack the backlog:\n%s", prom)
	}

	w.up()
	if _, err := Nightly(context.Background(), w.options(t)); err != nil {
		t.Fatalf("night 2: %v\n%s", err, w.logs)
	}
	if w.backlog(t) != 0 || w.manifests(t, "a") != 2 || w.manifests(t, "b") != 2 {
		t.Fatalf("after night 2: backlog %d, a %d, b %d", w.backlog(t), w.manifests(t, "a"), w.manifests(t, "b"))
	}
	// The backlog went first: its summary precedes today's archive.
	logs := w.logs.String()
	if r, a := strings.Index(logs, "retry: 1 archive in the backlog for database db1"), strings.LastIndex(logs, "archiving"); r < 0 || r > a {
		t.Fatalf("backlog not retried before the archive:\n%s", logs)
	}
}

// When today's archive and the backlog both fail, today's error is the
// run's: it is the one to fix first. A backlog failure alone still fails
// a run whose own archive is stored everywhere.
func TestNightlyWhichErrorWins(t *testing.T) {
	w := newWorld(t)
	w.down()
	Nightly(context.Background(), w.options(t))
	_, err := Nightly(context.Background(), w.options(t))
	if err == nil || !strings.Contains(err.Error(), "do not hold") {
		t.Fatalf("both failing: %v", err)
	}
	if w.backlog(t) != 2 {
		t.Fatalf("backlog %d, want 2", w.backlog(t))
	}
	// b is back for today's upload but refuses the backlog's copies: a
	// leftover directory in the way of each backlog key.
	w.up()
	entries, _ := backlog.List(w.state, "db1")
	for _, e := range entries {
		os.MkdirAll(filepath.Join(w.dir, "b", e.Key, "blocker"), 0o755)
	}
	_, err = Nightly(context.Background(), w.options(t))
	if err == nil || !strings.Contains(err.Error(), "the backlog in") || !strings.Contains(err.Error(), "still holds 2 archives for database db1") {
		t.Fatalf("backlog failing alone: %v\n%s", err, w.logs)
	}
	if w.manifests(t, "b") != 1 {
		t.Fatalf("today's archive is not on b: %d", w.manifests(t, "b"))
	}
}

// Without a state directory a failed upstream is healed by --heal once it
// is back, from the copy on the other upstream.
func TestNightlyHeal(t *testing.T) {
	w := newWorld(t)
	w.down()
	opt := w.options(t)
	opt.StateDir = ""
	Nightly(context.Background(), opt)
	w.up()
	opt = w.options(t)
	opt.StateDir, opt.Heal = "", true
	opt.Policy = catalog.Policy{MaxSkew: time.Hour, Now: opt.Now()}
	if _, err := Nightly(context.Background(), opt); err != nil {
		t.Fatalf("heal night: %v\n%s", err, w.logs)
	}
	if w.manifests(t, "b") != 2 {
		t.Fatalf("b holds %d archives after the heal, want 2\n%s", w.manifests(t, "b"), w.logs)
	}
	if !strings.Contains(w.logs.String(), "heal: 2 archives for database db1 checked, 1 intact everywhere; 1 copy healed") {
		t.Fatalf("no heal summary:\n%s", w.logs)
	}
	if _, err := os.Stat(filepath.Join(w.metrics, "pgarchive-heal.prom")); err != nil {
		t.Fatalf("no heal metrics: %v", err)
	}
}

// A run whose context ends says so with ErrInterrupted and what it left.
func TestNightlyInterrupted(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Nightly(ctx, w.options(t))
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "db1: archive interrupted") ||
		!strings.Contains(err.Error(), "the dump is untouched") {
		t.Fatalf("err = %v", err)
	}
	if w.manifests(t, "a")+w.manifests(t, "b") != 0 {
		t.Fatal("an interrupted run stored a complete copy")
	}
}

// RecordArchive marks a run that failed before it had a result as failed.
func TestRecordArchiveEarlyFailure(t *testing.T) {
	w := newWorld(t)
	RecordArchive(w.metrics, Backlog{}, "db1", nil, errors.New("no key"), w.log)
	prom, err := os.ReadFile(filepath.Join(w.metrics, "pgarchive-archive-db1.prom"))
	if err != nil || !strings.Contains(string(prom), "pgarchive_last_failure_timestamp_seconds") {
		t.Fatalf("metrics: %v\n%s", err, prom)
	}
	RecordArchive("", Backlog{}, "db1", nil, errors.New("x"), w.log) // no directory: nothing, no panic
}
