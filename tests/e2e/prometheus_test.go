package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// alertsDir holds the shipped rules and their promtool unit tests.
func alertsDir(t *testing.T) string {
	return filepath.Join(harness.ModuleRoot(t), "nix", "prometheus")
}

// TestAlertRules: promtool accepts the rules, and its unit tests (each
// alert fires on stale, failed and damaged series and stays quiet on
// healthy ones) pass.
func TestAlertRules(t *testing.T) {
	promtool := harness.Tool(t, "promtool")
	dir := alertsDir(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMetricsScraped: real archive, drill, heal, prune, status and wal-push
// runs write the textfile directory; Debian's node_exporter serves it and
// Debian's Prometheus scrapes it with the shipped rules. Every series the
// rules use is there, node_exporter reads every file without error, the
// promtool tests' input series have the real files' shapes, and the alerts
// for what went wrong (an upstream down during an archive, a failed drill,
// WAL without a base backup) are active while the healthy ones are not.
func TestMetricsScraped(t *testing.T) {
	harness.NeedRoot(t)
	p := newPITRWorld(t)
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the drill runs as user postgres: %v", err)
	}
	mdir := filepath.Join(p.dir, "textfile")
	os.Mkdir(mdir, 0o755)
	uid, _ := strconv.Atoi(acct.Uid)
	os.Chown(mdir, uid, -1)
	state := filepath.Join(p.dir, "state")
	global := []string{"--metrics-dir", mdir, "--state-dir", state, "--recipient", p.recip}

	p.pg.CreateDB(t, "shop")
	p.pg.GenerateData(t, "shop", 500)
	dump := p.pg.Dump(t, "shop", "gzip")
	archive := func(wantExit int) {
		t.Helper()
		if r := p.pgarchive(t, nil, append(global, "archive", "--database", "shop", "--file", dump)...); r.exit != wantExit {
			t.Fatalf("archive: exit %d, want %d\n%s", r.exit, wantExit, r.stderr)
		}
	}
	archive(0)
	archive(0)
	p.switchAndWait(t) // WAL of a cluster without any base backup: a WAL problem
	if code, out := runAs(t, acct, p.bin, p.dir, "--rclone-config", p.conf, "--metrics-dir", mdir, "drill", "-d", "shop", "-i", p.idPath,
		"--check", "select count(*) from no_such_table", "--expect", ">= 1"); code != 1 {
		t.Fatalf("failing drill: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"heal"}, {"prune", "--keep-last", "5"}} {
		if r := p.pgarchive(t, nil, append(global, args...)...); r.exit != 0 {
			t.Fatalf("%s: exit %d\n%s", args[0], r.exit, r.stderr)
		}
	}
	// A run that fails before it knows its upstreams (no dump): its failure
	// is a series without an upstream.
	if r := p.pgarchive(t, nil, append(global, "archive", "--database", "crm", "--file", filepath.Join(p.dir, "no-such-dump.sql.gz"))...); r.exit != 1 {
		t.Fatalf("archive without a dump: exit %d\n%s", r.exit, r.stderr)
	}
	p.minios[1].Stop()
	archive(1) // minio-b down: kept in the backlog for it
	p.minios[1].Start(t)
	if r := p.pgarchive(t, nil, append(global, "status", "--max-age", "26h")...); r.exit != 1 || !strings.Contains(r.stdout, "WAL") {
		t.Fatalf("status: exit %d (want 1: WAL without a base backup)\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(mdir, "*.prom"))
	t.Logf("textfile directory: %v", files)

	ne := harness.StartNodeExporter(t, mdir)
	text := ne.Get(t, "/metrics")
	if !strings.Contains(text, "node_textfile_scrape_error 0") {
		t.Fatalf("node_exporter could not read every file:\n%s", grepLines(text, "textfile"))
	}
	real := parseExposition(t, text)
	checkTestSeriesShapes(t, real)

	prom := harness.StartPrometheus(t, strings.TrimPrefix(ne.URL, "http://"), filepath.Join(alertsDir(t), "alerts.yml"))
	deadline := time.Now().Add(60 * time.Second)
	for len(prom.Query(t, `up{job="node"} == 1`)) == 0 || len(prom.Query(t, "pgarchive_status_ok")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not scraped node_exporter in 60 s; log:\n%s", mustRead(t, prom.LogPath))
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, name := range ruleSeries(t) {
		if got := prom.Query(t, name); len(got) == 0 {
			t.Errorf("Prometheus has no series %s (the rules use it)", name)
		}
	}
	for name, health := range prom.RuleHealth(t) {
		if health != "ok" && health != "unknown" {
			t.Errorf("rule %s: %s", name, health)
		}
	}

	minioB := harness.MinIORemoteName(1)
	want := map[string]func(harness.Alert) bool{
		"PgarchiveArchiveFailed": func(a harness.Alert) bool {
			return a.Labels["database"] == "shop" && strings.HasPrefix(a.Labels["upstream"], minioB) &&
				strings.Contains(a.Annotations["summary"], "the last archive of shop failed on "+minioB)
		},
		"PgarchiveArchiveFailed ": func(a harness.Alert) bool { // the same alert for crm
			return a.Labels["database"] == "crm" && a.Labels["upstream"] == "" &&
				strings.Contains(a.Annotations["summary"], "the last archive of crm failed before any upload")
		},
		"PgarchiveDrillFailed": func(a harness.Alert) bool {
			return a.Labels["database"] == "shop" && strings.Contains(a.Annotations["summary"], "drill of shop failed")
		},
		"PgarchiveWALProblem": func(a harness.Alert) bool {
			return a.Labels["system_identifier"] == strconv.FormatUint(p.cluster.SystemID, 10)
		},
	}
	var alerts []harness.Alert
	for {
		alerts = prom.Alerts(t)
		missing := []string{}
		for name, match := range want {
			found := false
			for _, a := range alerts {
				found = found || (a.Labels["alertname"] == strings.TrimSpace(name) && match(a))
			}
			if !found {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("alerts %v not active; active: %+v", missing, alerts)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(alerts) != len(want) {
		t.Errorf("%d alerts active, want %d: %+v", len(alerts), len(want), alerts)
	}
	for _, a := range alerts {
		if _, expected := want[a.Labels["alertname"]]; !expected {
			t.Errorf("unexpected alert %s: %v %v", a.Labels["alertname"], a.Labels, a.Annotations)
		}
	}
}

// ruleSeries lists the metric names the shipped rules use.
func ruleSeries(t *testing.T) []string {
	b := mustRead(t, filepath.Join(alertsDir(t), "alerts.yml"))
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(pgarchive_[a-z_]+|node_textfile_[a-z_]+)`).FindAllString(string(b), -1) {
		seen[m] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("the rules use only %v", out)
	}
	return out
}

// shape is a metric name and its label names (empty values left out: a
// label with an empty value is no label in Prometheus).
func shape(name string, labels map[string]string) string {
	var ls []string
	for k, v := range labels {
		if v != "" {
			ls = append(ls, k)
		}
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func parseExposition(t *testing.T, text string) map[string]bool {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("node_exporter's /metrics: %v", err)
	}
	out := map[string]bool{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			out[shape(name, ls)] = true
		}
	}
	return out
}

// checkTestSeriesShapes: every input series of the promtool tests has a
// name and label names a real file gave node_exporter, so the tests fire
// on what production writes, not on a guess.
func checkTestSeriesShapes(t *testing.T, real map[string]bool) {
	t.Helper()
	b := mustRead(t, filepath.Join(alertsDir(t), "alerts.test.yml"))
	series := regexp.MustCompile(`series: '([a-z_]+)(?:\{([^}]*)\})?'`).FindAllStringSubmatch(string(b), -1)
	if len(series) < 20 {
		t.Fatalf("found only %d input series in alerts.test.yml", len(series))
	}
	pair := regexp.MustCompile(`([a-z_]+)="([^"]*)"`)
	for _, s := range series {
		ls := map[string]string{}
		for _, kv := range pair.FindAllStringSubmatch(s[2], -1) {
			ls[kv[1]] = kv[2]
		}
		if sh := shape(s[1], ls); !real[sh] {
			t.Errorf("alerts.test.yml uses %s, which no real file has (real: %v)", sh, keysWithPrefix(real, s[1]))
		}
	}
}

func keysWithPrefix(m map[string]bool, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix+"{") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
