package metrics

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parsed is a file as node_exporter reads it: expfmt's text parser.
type parsed struct {
	fams map[string]*dto.MetricFamily
}

func parseFile(t *testing.T, path string) parsed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%s does not parse: %v\n%s", path, err, b)
	}
	for name, fam := range fams {
		if fam.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: type %v, want gauge", name, fam.GetType())
		}
		if fam.GetHelp() != help[name] || fam.GetHelp() == "" {
			t.Errorf("%s: help %q", name, fam.GetHelp())
		}
	}
	return parsed{fams}
}

// value finds the series with exactly these labels.
func (p parsed) value(name string, kv ...string) (float64, bool) {
	want := seriesKey(name, pairs(kv...))
	for _, m := range p.fams[name].GetMetric() {
		var got [][2]string
		for _, l := range m.GetLabel() {
			got = append(got, [2]string{l.GetName(), l.GetValue()})
		}
		sort.Slice(got, func(i, j int) bool { return got[i][0] < got[j][0] })
		if seriesKey(name, got) == want {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func (p parsed) want(t *testing.T, v float64, name string, kv ...string) {
	t.Helper()
	got, ok := p.value(name, kv...)
	if !ok {
		t.Errorf("no series %s%v", name, kv)
	} else if got != v {
		t.Errorf("%s%v = %v, want %v", name, kv, got, v)
	}
}

func (p parsed) absent(t *testing.T, name string, kv ...string) {
	t.Helper()
	if v, ok := p.value(name, kv...); ok {
		t.Errorf("%s%v = %v, want no such series", name, kv, v)
	}
}

func (p parsed) count(name string) int { return len(p.fams[name].GetMetric()) }

var (
	t1 = time.Date(2026, 3, 1, 2, 15, 0, 0, time.UTC)
	t2 = t1.Add(24 * time.Hour)
)

func ts(t time.Time) float64 { return float64(t.Unix()) }

func TestArchiveKeepsLastSuccessAfterFailure(t *testing.T) {
	dir := t.TempDir()
	a, b := "minio-a:pgarchive", "/srv/backup"
	lab := func(up string) []string { return []string{"command", "archive", "database", "db1", "upstream", up} }
	err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t1, Upstreams: []UpstreamRun{
		{Name: a, OK: true, Bytes: 1234, Duration: 1500 * time.Millisecond},
		{Name: b, OK: true, Bytes: 1234, Duration: 2 * time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, filepath.Join(dir, "pgarchive-archive-db1.prom"))
	p.want(t, ts(t1), LastSuccess, lab(a)...)
	p.want(t, 1234, LastBytes, lab(a)...)
	p.want(t, 1.5, LastDuration, lab(a)...)
	p.want(t, 0, BacklogCount, "database", "db1")
	p.absent(t, LastFailure, lab(a)...)

	// The next night a fails: its last success, bytes stay; b moves on.
	err = WriteArchive(dir, ArchiveRun{Database: "db1", Time: t2, BacklogArchives: 1, BacklogBytes: 999, Upstreams: []UpstreamRun{
		{Name: a, OK: false, Duration: 30 * time.Second},
		{Name: b, OK: true, Bytes: 2000, Duration: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p = parseFile(t, filepath.Join(dir, "pgarchive-archive-db1.prom"))
	p.want(t, ts(t1), LastSuccess, lab(a)...)
	p.want(t, ts(t2), LastFailure, lab(a)...)
	p.want(t, 1234, LastBytes, lab(a)...)
	p.want(t, 30, LastDuration, lab(a)...)
	p.want(t, ts(t2), LastSuccess, lab(b)...)
	p.want(t, 2000, LastBytes, lab(b)...)
	p.absent(t, LastFailure, lab(b)...)
	p.want(t, 1, BacklogCount, "database", "db1")
	p.want(t, 999, BacklogBytes, "database", "db1")

	// A run that does not mention b (say, b left the union) keeps b's series.
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t2.Add(time.Hour), Upstreams: []UpstreamRun{{Name: a, OK: true, Bytes: 5}}}); err != nil {
		t.Fatal(err)
	}
	p = parseFile(t, filepath.Join(dir, "pgarchive-archive-db1.prom"))
	p.want(t, ts(t2), LastSuccess, lab(b)...)
	p.want(t, ts(t2), LastFailure, lab(a)...)
	p.want(t, ts(t2.Add(time.Hour)), LastSuccess, lab(a)...)

	if err := WriteArchive(dir, ArchiveRun{Database: "../x", Time: t1}); err == nil {
		t.Error("a database name with a path separator must be refused")
	}
}

func TestArchiveFailedEarly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pgarchive-archive-db1.prom")
	lab := func(up string) []string { return []string{"command", "archive", "database", "db1", "upstream", up} }
	// No earlier run: the failure still shows, under an empty upstream.
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t1, FailedEarly: true}); err != nil {
		t.Fatal(err)
	}
	parseFile(t, file).want(t, ts(t1), LastFailure, lab("")...)
	// With known upstreams, each of them gets the failure; successes stay.
	os.Remove(file)
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t1, Upstreams: []UpstreamRun{{Name: "a:", OK: true, Bytes: 1}, {Name: "b:", OK: false}}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t2, FailedEarly: true}); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, file)
	p.want(t, ts(t2), LastFailure, lab("a:")...)
	p.want(t, ts(t2), LastFailure, lab("b:")...)
	p.want(t, ts(t1), LastSuccess, lab("a:")...)
	p.absent(t, LastFailure, lab("")...)
}

func TestDrill(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, DrillFile)
	if err := WriteDrill(dir, []DrillResult{{Database: "db1", Time: t1, OK: true}, {Database: "db2", Time: t1, OK: false}}); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, file)
	p.want(t, 1, DrillSuccess, "database", "db1")
	p.want(t, ts(t1), DrillSucceeded, "database", "db1")
	p.want(t, 0, DrillSuccess, "database", "db2")
	p.absent(t, DrillSucceeded, "database", "db2")
	p.want(t, ts(t1), DrillLastRun, "database", "db2")

	// db1 fails the next day, drilled alone: its last pass stays, db2 is untouched.
	if err := WriteDrill(dir, []DrillResult{{Database: "db1", Time: t2, OK: false}}); err != nil {
		t.Fatal(err)
	}
	p = parseFile(t, file)
	p.want(t, 0, DrillSuccess, "database", "db1")
	p.want(t, ts(t1), DrillSucceeded, "database", "db1")
	p.want(t, ts(t2), DrillLastRun, "database", "db1")
	p.want(t, ts(t1), DrillLastRun, "database", "db2")
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, StatusFile)
	lab := func(db, up string) []string { return []string{"command", "status", "database", db, "upstream", up} }
	run := StatusRun{All: true, Databases: []string{"db1", "db2"}, Entries: []StatusEntry{
		{Database: "db1", Upstream: "a", Listed: true, Archives: 3, HasNewest: true, NewestAge: 90 * time.Minute, OK: true},
		{Database: "db1", Upstream: "b", Listed: false},
		{Database: "db2", Upstream: "a", Listed: true, Archives: 0},
		{Database: "db2", Upstream: "b", Listed: false},
	}}
	if err := WriteStatus(dir, run); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, file)
	p.want(t, 1, StatusOK, lab("db1", "a")...)
	p.want(t, 3, Archives, lab("db1", "a")...)
	p.want(t, 5400, NewestAge, lab("db1", "a")...)
	p.want(t, 0, StatusOK, lab("db1", "b")...)
	p.absent(t, Archives, lab("db1", "b")...)
	p.want(t, 0, Archives, lab("db2", "a")...)
	p.absent(t, NewestAge, lab("db2", "a")...)

	// status --database db2 replaces db2's series only.
	err := WriteStatus(dir, StatusRun{Databases: []string{"db2"}, Entries: []StatusEntry{
		{Database: "db2", Upstream: "a", Listed: true, Archives: 1, HasNewest: true, NewestAge: time.Minute, OK: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p = parseFile(t, file)
	p.want(t, 3, Archives, lab("db1", "a")...)
	p.want(t, 1, StatusOK, lab("db2", "a")...)
	p.absent(t, StatusOK, lab("db2", "b")...)

	// A full check forgets db1, which no longer has archives.
	if err := WriteStatus(dir, StatusRun{All: true, Databases: []string{"db2"}, Entries: run.Entries[2:3]}); err != nil {
		t.Fatal(err)
	}
	p = parseFile(t, file)
	if p.count(StatusOK) != 1 || p.count(Archives) != 1 {
		t.Errorf("after a full check of db2 only: %d status and %d count series, want 1 each", p.count(StatusOK), p.count(Archives))
	}
	if err := WriteStatus(dir, StatusRun{Databases: []string{"db1"}, Entries: run.Entries[2:3]}); err == nil {
		t.Error("an entry for a database outside Databases must be refused")
	}
}

func TestCounts(t *testing.T) {
	dir := t.TempDir()
	lab := func(cmd, up string) []string { return []string{"command", cmd, "database", "db1", "upstream", up} }
	if err := WriteCounts(dir, CountsRun{Command: "prune", Time: t1, Entries: []CountEntry{
		{Database: "db1", Upstream: "a", OK: true, Archives: 20},
		{Database: "db1", Upstream: "b", OK: true, Archives: 19},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteCounts(dir, CountsRun{Command: "prune", Time: t2, Entries: []CountEntry{
		{Database: "db1", Upstream: "a", OK: false, Archives: 21},
		{Database: "db1", Upstream: "b", OK: false, Archives: -1},
	}}); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, filepath.Join(dir, PruneFile))
	p.want(t, ts(t1), LastSuccess, lab("prune", "a")...)
	p.want(t, ts(t2), LastFailure, lab("prune", "a")...)
	p.want(t, 21, Archives, lab("prune", "a")...)
	p.absent(t, Archives, lab("prune", "b")...)
	p.want(t, ts(t1), LastSuccess, lab("prune", "b")...)

	if err := WriteCounts(dir, CountsRun{Command: "heal", Time: t1, Entries: []CountEntry{{Database: "db1", Upstream: "a", OK: true, Archives: 3}}}); err != nil {
		t.Fatal(err)
	}
	parseFile(t, filepath.Join(dir, HealFile)).want(t, 3, Archives, lab("heal", "a")...)
	if err := WriteCounts(dir, CountsRun{Command: "archive", Time: t1}); err == nil {
		t.Error("counts for archive would clash with the archive files: must be refused")
	}
}

// TestFilesMergeCleanly writes every kind of file into one directory and
// checks what node_exporter needs to merge them: no series in two files and
// one HELP text per name; and that nothing but .prom files is left there.
func TestFilesMergeCleanly(t *testing.T) {
	dir := t.TempDir()
	ups := []UpstreamRun{{Name: "a", OK: true, Bytes: 1}, {Name: "b", OK: false}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(WriteArchive(dir, ArchiveRun{Database: "db1", Time: t1, Upstreams: ups}))
	must(WriteArchive(dir, ArchiveRun{Database: "db2", Time: t1, Upstreams: ups}))
	must(WriteDrill(dir, []DrillResult{{Database: "db1", Time: t1, OK: true}}))
	for _, cmd := range []string{"prune", "heal"} {
		must(WriteCounts(dir, CountsRun{Command: cmd, Time: t1, Entries: []CountEntry{
			{Database: "db1", Upstream: "a", OK: true, Archives: 2}, {Database: "db1", Upstream: "b", OK: false, Archives: 1}}}))
	}
	must(WriteStatus(dir, StatusRun{All: true, Databases: []string{"db1"}, Entries: []StatusEntry{
		{Database: "db1", Upstream: "a", Listed: true, Archives: 2, HasNewest: true, OK: true}}}))

	ents, _ := os.ReadDir(dir)
	seen := map[string]string{}
	helps := map[string]string{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".prom") {
			t.Errorf("left behind: %s", e.Name())
			continue
		}
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644 (node_exporter runs as another user)", e.Name(), fi.Mode().Perm())
		}
		p := parseFile(t, filepath.Join(dir, e.Name()))
		for name, fam := range p.fams {
			if h, ok := helps[name]; ok && h != fam.GetHelp() {
				t.Errorf("%s: two HELP texts", name)
			}
			helps[name] = fam.GetHelp()
			for _, m := range fam.GetMetric() {
				var ls [][2]string
				for _, l := range m.GetLabel() {
					ls = append(ls, [2]string{l.GetName(), l.GetValue()})
				}
				k := seriesKey(name, ls)
				if other, dup := seen[k]; dup {
					t.Errorf("%s%v is in %s and %s: node_exporter would refuse the scrape", name, ls, other, e.Name())
				}
				seen[k] = e.Name()
			}
		}
	}
	if len(ents) != 6 {
		t.Errorf("%d files, want 6", len(ents))
	}
}

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := writeAtomic(path, func(w io.Writer) error {
		w.Write([]byte("half of a new fi"))
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want boom naming the file", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Errorf("a failed write changed the file: %q", b)
	}
	onlyFiles(t, dir, "x.prom")

	// A rename that fails (a directory where the file should go) cleans up too.
	blocked := filepath.Join(dir, "blocked.prom")
	os.MkdirAll(filepath.Join(blocked, "sub"), 0o755)
	if err := writeAtomic(blocked, func(w io.Writer) error { _, err := w.Write([]byte("x 1\n")); return err }); err == nil {
		t.Error("writing over a non-empty directory must fail")
	}
	onlyFiles(t, dir, "blocked.prom", "x.prom")

	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new\n")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("got %q", b)
	}
	onlyFiles(t, dir, "blocked.prom", "x.prom")

	if err := WriteDrill(filepath.Join(dir, "nope"), []DrillResult{{Database: "db1", Time: t1}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing directory must fail naming it: %v", err)
	}
	if err := WriteDrill("", nil); err == nil {
		t.Error("an empty directory setting must fail")
	}
}

func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

func TestDamagedOrForeignPreviousFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DrillFile)
	os.WriteFile(path, []byte("pgarchive_drill_last_success{database=\"db1\" 1\n"), 0o644)
	err := WriteDrill(dir, []DrillResult{{Database: "db1", Time: t1, OK: true}})
	if err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("a damaged file must be reported: %v", err)
	}
	parseFile(t, path).want(t, 1, DrillSuccess, "database", "db1")

	// Series pgarchive does not write (an older version's, a hand edit) are
	// dropped, and a timestamp on a kept series is not carried over.
	os.WriteFile(path, []byte("# TYPE foo gauge\nfoo 1\npgarchive_drill_last_success_timestamp_seconds{database=\"db2\"} 7 1700000000000\n"), 0o644)
	if err := WriteDrill(dir, nil); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, path)
	if _, ok := p.fams["foo"]; ok {
		t.Error("foreign series kept")
	}
	p.want(t, 7, DrillSucceeded, "database", "db2")
	if m := p.fams[DrillSucceeded].GetMetric()[0]; m.TimestampMs != nil {
		t.Error("sample timestamps are not allowed in textfiles")
	}
}

func TestOddUpstreamNamesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	odd := []string{`s3:bucket/with "quotes"`, `C:\backups`, "line\nbreak", "ünïcode:"}
	var ups []UpstreamRun
	for _, u := range odd {
		ups = append(ups, UpstreamRun{Name: u, OK: true, Bytes: 42})
	}
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t1, Upstreams: ups}); err != nil {
		t.Fatal(err)
	}
	// Written, read back by the next run, written again: nothing lost.
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: t2}); err != nil {
		t.Fatal(err)
	}
	p := parseFile(t, filepath.Join(dir, ArchiveFile("db1")))
	for _, u := range odd {
		p.want(t, 42, LastBytes, "command", "archive", "database", "db1", "upstream", u)
	}
}

// TestConcurrentWritersKeepEveryUpdate: archive --heal of many databases at
// once all update pgarchive-heal.prom; the directory lock makes them take
// turns, so no database's series is lost.
func TestConcurrentWritersKeepEveryUpdate(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- WriteCounts(dir, CountsRun{Command: "heal", Time: t1, Entries: []CountEntry{
				{Database: fmt.Sprintf("db%d", i), Upstream: "a:", OK: true, Archives: i},
			}})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p := parseFile(t, filepath.Join(dir, HealFile))
	if got := p.count(Archives); got != n {
		t.Fatalf("%d databases in the file, want %d: updates were lost", got, n)
	}
	onlyFiles(t, dir, HealFile)
}

// TestRead: what drill and archive runs wrote is read back for the report;
// a damaged file is named, not fatal; a missing directory is an error.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	if err := WriteDrill(dir, []DrillResult{{Database: "db1", Time: at, OK: true, Duration: 90 * time.Second, Checks: 3},
		{Database: "db2", Time: at, OK: false, Checks: 2, Failed: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(dir, ArchiveRun{Database: "db1", Time: at, BacklogArchives: 2, BacklogBytes: 4096, BacklogMax: 1 << 30,
		Upstreams: []UpstreamRun{{Name: "a", OK: true}}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pgarchive-archive-db9.prom"), []byte("pgarchive_backlog_archives{database=\"db9\"} x\n"), 0o644)
	snap, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.Drills["db1"]; !d.OK || !d.LastRun.Equal(at) || !d.LastSuccess.Equal(at) || d.Duration != 90*time.Second || d.Checks != 3 {
		t.Errorf("db1 drill %+v", d)
	}
	if d := snap.Drills["db2"]; d.OK || !d.LastSuccess.IsZero() || d.Failed != 1 {
		t.Errorf("db2 drill %+v", d)
	}
	if b := snap.Backlog["db1"]; b.Archives != 2 || b.Bytes != 4096 || b.MaxBytes != 1<<30 {
		t.Errorf("db1 backlog %+v", b)
	}
	if len(snap.Errs) != 1 || !strings.Contains(snap.Errs[0].Error(), "pgarchive-archive-db9.prom") {
		t.Errorf("errors %v", snap.Errs)
	}
	if _, err := Read(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing directory read as empty")
	}
}
