package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestArchiveAndPruneMetrics: the archive step and prune write their
// textfile-collector files. A failed upstream keeps its last success and
// gets a failure time; a run that fails before it reaches any upstream
// marks every known upstream failed; prune records what it kept.
func TestArchiveAndPruneMetrics(t *testing.T) {
	w := newBacklogWorld(t, nil)
	mdir := filepath.Join(w.dir, "metrics")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(mdir, "pgarchive-archive-db1.prom")
	series := func(name string) map[string]float64 {
		return byUpstream(t, parseTextfile(t, file), name, "db1", "archive")
	}

	before := float64(time.Now().Unix())
	dump := harness.RandomDump(31, 1<<20, true)
	if r := w.archive(t, "db1", dump, "--metrics-dir", mdir); r.exit != 0 {
		t.Fatalf("archive: exit %d\n%s", r.exit, r.stderr)
	}
	first := series("pgarchive_last_success_timestamp_seconds")
	bytes := series("pgarchive_last_bytes")
	if len(first) != 3 || len(bytes) != 3 {
		t.Fatalf("want three upstreams, got success %v, bytes %v", first, bytes)
	}
	for up, v := range first {
		if v < before || bytes[up] <= float64(len(dump)) || series("pgarchive_last_duration_seconds")[up] <= 0 {
			t.Errorf("%s: success %v (run began %v), bytes %v, duration %v", up, v, before, bytes[up], series("pgarchive_last_duration_seconds")[up])
		}
	}
	if f := series("pgarchive_last_failure_timestamp_seconds"); len(f) != 0 {
		t.Errorf("failures after a clean run: %v", f)
	}
	onlyProm(t, mdir)

	// minio-b down: its success time stays, it gets a failure, and the
	// backlog gauge counts the kept archive.
	w.minios[1].Stop()
	time.Sleep(1100 * time.Millisecond)
	if r := w.archive(t, "db1", dump, "--metrics-dir", mdir); r.exit != 1 {
		t.Fatalf("archive with minio-b down: exit %d\n%s", r.exit, r.stderr)
	}
	b := shortUpstream(w.minioB)
	succ, fail := series("pgarchive_last_success_timestamp_seconds"), series("pgarchive_last_failure_timestamp_seconds")
	if succ[b] != first[b] || fail[b] < first[b] || len(fail) != 1 {
		t.Errorf("after minio-b failed: success %v (was %v), failure %v", succ, first, fail)
	}
	fams := parseTextfile(t, file)
	if g := fams["pgarchive_backlog_archives"].GetMetric(); len(g) != 1 || g[0].GetGauge().GetValue() != 1 {
		t.Errorf("backlog gauge: %v", g)
	}
	w.minios[1].Start(t)

	// A missing dump fails before any upload: every upstream gets a failure.
	r := w.pgarchive(t, nil, "-r", w.recip, "--state-dir", w.state, "--metrics-dir", mdir,
		"archive", "--database", "db1", "--file", filepath.Join(w.dir, "no-such.sql.gz"))
	if r.exit == 0 || !strings.Contains(r.stderr, "no-such.sql.gz") {
		t.Fatalf("missing dump: exit %d\n%s", r.exit, r.stderr)
	}
	if fail := series("pgarchive_last_failure_timestamp_seconds"); len(fail) != 3 {
		t.Errorf("after an early failure, want a failure time on all three upstreams, got %v", fail)
	}

	// The retry that comes with the next run empties the backlog; then a
	// prune keeping the newest archive records one archive per upstream.
	time.Sleep(1100 * time.Millisecond)
	if r := w.archive(t, "db1", dump, "--metrics-dir", mdir); r.exit != 0 {
		t.Fatalf("archive after minio-b came back: exit %d\n%s", r.exit, r.stderr)
	}
	if g := parseTextfile(t, file)["pgarchive_backlog_archives"].GetMetric(); len(g) != 1 || g[0].GetGauge().GetValue() != 0 {
		t.Errorf("backlog gauge after the retry: %v", g)
	}
	if r := w.cmd(t, "--metrics-dir", mdir, "prune", "--keep-last", "1", "--dry-run"); r.exit != 0 {
		t.Fatalf("prune --dry-run: exit %d\n%s", r.exit, r.stderr)
	}
	pfile := filepath.Join(mdir, "pgarchive-prune.prom")
	if _, err := os.Stat(pfile); err == nil {
		t.Errorf("a dry run wrote %s", pfile)
	}
	if r := w.cmd(t, "--metrics-dir", mdir, "prune", "--keep-last", "1"); r.exit != 0 {
		t.Fatalf("prune: exit %d\n%s", r.exit, r.stderr)
	}
	pf := parseTextfile(t, pfile)
	kept := byUpstream(t, pf, "pgarchive_archives", "db1", "prune")
	ok := byUpstream(t, pf, "pgarchive_last_success_timestamp_seconds", "db1", "prune")
	if len(kept) != 3 || len(ok) != 3 {
		t.Fatalf("prune metrics: archives %v, success %v", kept, ok)
	}
	for up, n := range kept {
		if n != 1 {
			t.Errorf("%s: prune kept %v archives, want 1", up, n)
		}
	}
	onlyProm(t, mdir)
}
