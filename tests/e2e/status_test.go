package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type statusOut struct {
	OK            bool   `json:"ok"`
	Summary       string `json:"summary"`
	Time          string `json:"time"`
	MaxAgeSeconds int64  `json:"max_age_seconds"`
	Entries       []struct {
		Database   string  `json:"database"`
		Upstream   string  `json:"upstream"`
		State      string  `json:"state"`
		Archive    string  `json:"archive"`
		Key        string  `json:"key"`
		Created    *string `json:"created"`
		AgeSeconds *int64  `json:"age_seconds"`
		Archives   *int    `json:"archives"`
		Error      string  `json:"error"`
	} `json:"entries"`
}

func (w *world) statusJSON(t *testing.T, wantExit int, args ...string) statusOut {
	t.Helper()
	r := w.pgarchive(t, nil, append([]string{"status", "--json"}, args...)...)
	if r.exit != wantExit {
		t.Fatalf("status --json %v: exit %d, want %d\n%s\n%s", args, r.exit, wantExit, r.stdout, r.stderr)
	}
	var out statusOut
	decodeJSON(t, []byte(r.stdout), &out)
	return out
}

// states maps "db upstream-remote-name" to the state, e.g. "db1 minio-a".
func (s statusOut) states() map[string]string {
	m := map[string]string{}
	for _, e := range s.Entries {
		m[e.Database+" "+shortUpstream(e.Upstream)] = e.State
	}
	return m
}

// shortUpstream names an upstream by its rclone remote ("minio-a") or, for
// the local folder, "local".
func shortUpstream(u string) string {
	if name, _, ok := strings.Cut(u, ":"); ok {
		return name
	}
	return "local"
}

// TestStatus: a real archive on the world (two MinIO, a local folder) is OK
// everywhere; a tiny --max-age makes it STALE, a copy deleted from one
// MinIO makes that upstream alone MISSING, a stopped MinIO is UNLISTED; the
// exit status follows; --metrics-dir writes a textfile node_exporter parses.
func TestStatus(t *testing.T) {
	w := newWorld(t, nil)
	rw := newReadWorld(t, w, 100)

	r := w.pgarchive(t, nil, "status")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.exit != 0 || lines[0] != "OK: 1 database on 3 upstreams, newest archives within 1d2h" || len(lines) != 5 {
		t.Fatalf("status on a fresh archive: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(lines[1], "DATABASE") || !strings.Contains(r.stdout, filepath.Base(rw.key)) || strings.Count(r.stdout, " OK\n") != 3 {
		t.Fatalf("status table:\n%s", r.stdout)
	}

	js := w.statusJSON(t, 0)
	if !js.OK || js.MaxAgeSeconds != 26*3600 || len(js.Entries) != 3 {
		t.Fatalf("status --json: %+v", js)
	}
	for _, e := range js.Entries {
		if e.State != "OK" || e.Key != rw.key || e.Archive != filepath.Base(rw.key) || e.Archives == nil || *e.Archives != 1 ||
			e.AgeSeconds == nil || *e.AgeSeconds < 0 || *e.AgeSeconds > 600 || e.Created == nil || e.Error != "" {
			t.Errorf("entry %+v", e)
		}
	}

	js = w.statusJSON(t, 1, "--max-age", "1ns")
	if js.OK || !strings.HasPrefix(js.Summary, "STALE: 3 stale of 3") {
		t.Errorf("--max-age 1ns: %+v", js)
	}
	for k, st := range js.states() {
		if st != "STALE" {
			t.Errorf("%s: %s, want STALE", k, st)
		}
	}
	if r := w.pgarchive(t, nil, "status", "--max-age", "0"); r.exit != 0 {
		t.Errorf("--max-age 0 judges presence only: exit %d\n%s", r.exit, r.stdout)
	}

	js = w.statusJSON(t, 1, "--database", "db1", "--database", "shop")
	want := map[string]string{"db1 minio-a": "OK", "db1 minio-b": "OK", "db1 local": "OK",
		"shop minio-a": "MISSING", "shop minio-b": "MISSING", "shop local": "MISSING"}
	if got := js.states(); !sameMap(got, want) {
		t.Errorf("a named database without archives must be MISSING everywhere: %v", got)
	}

	for _, code := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--max-age", "-1h"}, "negative"},
		{[]string{"status", "--database", "../etc"}, "database name"},
		{[]string{"status", "extra"}, "no arguments"},
	} {
		if r := w.pgarchive(t, nil, code.args...); r.exit != 2 || !strings.Contains(r.stderr, code.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", code.args, r.exit, code.want, r.stderr)
		}
	}

	// Delete the copy on minio-a: MISSING there only.
	w.minios[0].DeleteObject(t, rw.key)
	w.minios[0].DeleteObject(t, rw.key+".manifest.json")
	r = w.pgarchive(t, nil, "status")
	if r.exit != 1 || !strings.HasPrefix(r.stdout, "MISSING: 1 missing of 3 (db1 on minio-a:") || !strings.Contains(r.stderr, "MISSING: 1 missing of 3") {
		t.Fatalf("a deleted copy: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	// One error entry per problem, for the failure notice to name.
	if !strings.Contains(r.stderr, "status: db1 on minio-a:") || strings.Contains(r.stderr, "status: db1 on minio-b") {
		t.Errorf("want an error line for minio-a only:\n%s", r.stderr)
	}
	js = w.statusJSON(t, 1)
	want = map[string]string{"db1 minio-a": "MISSING", "db1 minio-b": "OK", "db1 local": "OK"}
	if got := js.states(); !sameMap(got, want) {
		t.Errorf("after deleting minio-a's copy: %v", got)
	}
	for _, e := range js.Entries {
		if e.State == "MISSING" && (e.Archive != "" || e.AgeSeconds != nil || e.Archives == nil || *e.Archives != 0) {
			t.Errorf("a MISSING entry names no archive and counts 0: %+v", e)
		}
	}

	// Metrics: --metrics-dir is global, before the command.
	mdir := filepath.Join(w.dir, "textfile")
	os.Mkdir(mdir, 0o755)
	if r := w.pgarchive(t, nil, "--metrics-dir", mdir, "status"); r.exit != 1 {
		t.Fatalf("status with metrics: exit %d\n%s", r.exit, r.stderr)
	}
	fams := parseTextfile(t, filepath.Join(mdir, "pgarchive-status.prom"))
	series := func(name string) map[string]float64 { return byUpstream(t, fams, name, "db1", "status") }
	if got := series("pgarchive_status_ok"); !sameFloats(got, map[string]float64{"minio-a": 0, "minio-b": 1, "local": 1}) {
		t.Errorf("pgarchive_status_ok: %v", got)
	}
	if got := series("pgarchive_archives"); !sameFloats(got, map[string]float64{"minio-a": 0, "minio-b": 1, "local": 1}) {
		t.Errorf("pgarchive_archives: %v", got)
	}
	ages := series("pgarchive_newest_archive_age_seconds")
	if _, ok := ages["minio-a"]; ok || len(ages) != 2 || ages["local"] < 0 || ages["local"] > 600 {
		t.Errorf("pgarchive_newest_archive_age_seconds: %v (none for the upstream without a copy)", ages)
	}
	onlyProm(t, mdir)

	// A stopped MinIO cannot be listed: UNLISTED there, the rest still judged.
	w.minios[1].Stop()
	start := time.Now()
	js = w.statusJSON(t, 1, "--database", "db1")
	want = map[string]string{"db1 minio-a": "MISSING", "db1 minio-b": "UNLISTED", "db1 local": "OK"}
	if got := js.states(); !sameMap(got, want) {
		t.Errorf("with minio-b down: %v", got)
	}
	for _, e := range js.Entries {
		if (e.State == "UNLISTED") != (e.Error != "") || (e.State == "UNLISTED" && e.Archives != nil) {
			t.Errorf("UNLISTED entries carry the error and no count: %+v", e)
		}
	}
	t.Logf("status with one MinIO down took %v", time.Since(start).Round(time.Millisecond))
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameFloats(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// parseTextfile reads a metrics file with prometheus/common's parser, as
// node_exporter does, and checks what its textfile collector requires.
func parseTextfile(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v, want 0644", path, fi.Mode().Perm())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, mustRead(t, path))
	}
	for name, fam := range fams {
		if !strings.HasPrefix(name, "pgarchive_") || fam.GetHelp() == "" || fam.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: help %q, type %v", name, fam.GetHelp(), fam.GetType())
		}
		for _, m := range fam.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s: node_exporter refuses samples with timestamps", name)
			}
		}
	}
	return fams
}

// byUpstream returns name's values for database db and command cmd, keyed
// by shortUpstream.
func byUpstream(t *testing.T, fams map[string]*dto.MetricFamily, name, db, cmd string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range fams[name].GetMetric() {
		ls := map[string]string{}
		var names []string
		for _, l := range m.GetLabel() {
			ls[l.GetName()] = l.GetValue()
			names = append(names, l.GetName())
		}
		sort.Strings(names)
		if strings.Join(names, ",") != "command,database,upstream" {
			t.Errorf("%s: labels %v", name, names)
		}
		if ls["database"] == db && ls["command"] == cmd {
			out[shortUpstream(ls["upstream"])] = m.GetGauge().GetValue()
		}
	}
	return out
}

// onlyProm: the atomic writes left no temporary files behind.
func onlyProm(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".prom") {
			t.Errorf("%s: left behind in the metrics directory", e.Name())
		}
	}
}
