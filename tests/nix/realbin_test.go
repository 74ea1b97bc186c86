package nix_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestRenderedCommandsRunTheRealBinary runs what the lifecycle units and
// root's wrapper would run, with the pgarchive built from this tree instead
// of the stub: the settings files, flags and credential paths the module
// renders must be accepted by the helper's own parser, not just by
// check-config. The remote is a union of two local folders; LoadCredential=
// is done as systemd does it (a directory of copies, CREDENTIALS_DIRECTORY),
// %i and ${CREDENTIALS_DIRECTORY} expanded. Notices use --dry-run (no post).
// The status check runs for real: OK after the archives, exit 1 and
// MISSING for a database it expects that has none.
func TestRenderedCommandsRunTheRealBinary(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	for _, d := range []string{secrets, filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "state"), filepath.Join(dir, "metrics")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	union := harness.UnionSection(harness.UnionName, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	rc := harness.WriteRcloneConf(t, secrets, union)
	pruneConf := filepath.Join(secrets, "rclone-prune.conf")
	data, _ := os.ReadFile(rc)
	os.WriteFile(pruneConf, data, 0o600)
	hook := filepath.Join(secrets, "webhook-url")
	os.WriteFile(hook, []byte("http://127.0.0.1:9/never-posted\n"), 0o600)

	dumps := filepath.Join(dir, "dumps")
	os.MkdirAll(dumps, 0o700)
	for _, db := range []string{"db1", "db2"} {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte("CREATE TABLE t (v text);\n-- " + db + "\n-- PostgreSQL database dump complete\n"))
		zw.Close()
		os.WriteFile(filepath.Join(dumps, db+".sql.gz"), gz.Bytes(), 0o600)
	}
	metrics := filepath.Join(dir, "metrics")
	// The full host, and the same with a status check that expects a
	// database nothing archives.
	hosts := []any{}
	for _, statusDBs := range [][]string{{"db1", "db2"}, {"db1", "ghost"}} {
		host := fullHost()
		host["services"].(m)["postgresqlBackup"].(m)["location"] = dumps
		pg := host["services"].(m)["pgarchive"].(m)
		pg["remote"] = harness.UnionName + ":"
		pg["rcloneConfigFile"], pg["stateDir"] = rc, filepath.Join(dir, "state")
		pg["metrics"] = m{"textfileDirectory": metrics}
		pg["prune"].(m)["rcloneConfigFile"] = pruneConf
		pg["notify"].(m)["webhookUrlFile"] = hook
		pg["status"].(m)["databases"] = statusDBs
		pg["report"] = m{"enable": true, "directory": filepath.Join(dir, "www", statusDBs[1])}
		hosts = append(hosts, host)
	}
	res, err := evalModule(t, lib, hosts)
	if err != nil {
		t.Fatal(err)
	}
	got, ghost := res.Cases[0], res.Cases[1]

	// The store as far as these commands need it.
	pairs := []string{got.PackagePath + "/bin/pgarchive", bin}
	for i, s := range []settingsFile{{got.ConfigPath, got.ConfigJSON, ""}, got.Prune, got.Summary, got.Status, ghost.Status, got.Root, got.Report, ghost.Report} {
		p := filepath.Join(dir, "settings-"+string(rune('0'+i))+".json")
		os.WriteFile(p, []byte(s.JSON), 0o644)
		pairs = append(pairs, s.Path, p)
	}
	store := strings.NewReplacer(pairs...)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}

	// unitExec runs a unit's ExecStart (instance: %i), or the backup units'
	// ExecStartPost, with its credentials.
	unitExec := func(c evalCase, name, instance string, extra ...string) (string, []string, error) {
		t.Helper()
		u := c.Units[name]
		exec0 := "ExecStart"
		if strings.HasPrefix(name, "postgresqlBackup") {
			exec0 = "ExecStartPost"
		}
		creds := t.TempDir()
		for _, lc := range toStrings(u.ServiceConfig["LoadCredential"]) {
			id, src, _ := strings.Cut(lc, ":")
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("%s LoadCredential=%s: %v", name, lc, err)
			}
			os.WriteFile(filepath.Join(creds, id), data, 0o400)
		}
		line := toStrings(u.ServiceConfig[exec0])[0]
		// As systemd runs it: specifiers expanded, quotes and doubled $
		// undone; the helper expands $CREDENTIALS_DIRECTORY itself.
		line = strings.NewReplacer("%i", instance).Replace(store.Replace(line))
		args := append(execArgs(t, line), extra...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(env, "CREDENTIALS_DIRECTORY="+creds)
		out, err := cmd.CombinedOutput()
		return string(out), args, err
	}
	unitRun := func(name, instance string, extra ...string) string {
		t.Helper()
		out, args, err := unitExec(got, name, instance, extra...)
		if err != nil {
			t.Errorf("%s: %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}

	t.Run("archive step", func(t *testing.T) {
		for _, db := range []string{"db1", "db2"} {
			unitRun("postgresqlBackup-"+db, "")
			for _, up := range []string{"a", "b"} {
				if found, _ := filepath.Glob(filepath.Join(dir, up, lifecycleHost, db, db+"_*.sql.gz.age")); len(found) != 1 {
					t.Errorf("upstream %s holds %v for %s, want one archive", up, found, db)
				}
			}
		}
	})
	t.Run("prune unit", func(t *testing.T) {
		out := unitRun("pgarchive-prune", "", "--dry-run")
		if !strings.Contains(out, "keep-last 3, keep-daily 7, keep-weekly 5, keep-monthly 12, keep-yearly all, keep-within 545d") {
			t.Errorf("prune did not plan with the module's rules:\n%s", out)
		}
		// For real: keep-last 3 keeps db1's only archive (db2 is not pruned).
		unitRun("pgarchive-prune", "")
		for _, up := range []string{"a", "b"} {
			if found, _ := filepath.Glob(filepath.Join(dir, up, lifecycleHost, "db1", "db1_*.sql.gz.age")); len(found) != 1 {
				t.Errorf("after prune, upstream %s holds %v", up, found)
			}
		}
	})
	t.Run("status unit", func(t *testing.T) {
		out := unitRun("pgarchive-status", "")
		for _, db := range []string{"db1", "db2"} {
			for _, up := range []string{"a", "b"} {
				if !regexp.MustCompile(`(?m)^` + db + ` +` + regexp.QuoteMeta(filepath.Join(dir, up)) + ` +` + db + `_\S+ .* OK$`).MatchString(out) {
					t.Errorf("status does not show %s OK on upstream %s:\n%s", db, up, out)
				}
			}
		}
		statusMetrics(t, metrics, dir, map[string]float64{"db1": 1, "db2": 1})

		// A database with no archive anywhere: MISSING, a failed unit (so
		// OnFailure= fires), and metrics that say so.
		out, args, err := unitExec(ghost, "pgarchive-status", "")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: %v, want exit status 1\n%s", strings.Join(args, " "), err, out)
		}
		for _, up := range []string{"a", "b"} {
			if !regexp.MustCompile(`(?m)^ghost +` + regexp.QuoteMeta(filepath.Join(dir, up)) + ` +- .* MISSING$`).MatchString(out) {
				t.Errorf("status does not show ghost MISSING on upstream %s:\n%s", up, out)
			}
		}
		statusMetrics(t, metrics, dir, map[string]float64{"db1": 1, "ghost": 0})

		out = unitRun("pgarchive-notify-failure@", "pgarchive-status.service", "--dry-run")
		if !strings.Contains(out, `"unit":"pgarchive-status.service"`) {
			t.Errorf("the status check's failure notice does not name its unit:\n%s", out)
		}
	})
	t.Run("report unit", func(t *testing.T) {
		// The directories systemd-tmpfiles creates.
		for _, db := range []string{"db2", "ghost"} {
			os.MkdirAll(filepath.Join(dir, "www", db), 0o2775)
		}
		unitRun("pgarchive-report", "")
		page := string(mustReadFile(t, filepath.Join(dir, "www", "db2", "index.html")))
		for _, want := range []string{`data-exit-status="0"`, `data-database="db1"`, `data-database="db2"`, "keeps 1, removes nothing"} {
			if !strings.Contains(page, want) {
				t.Errorf("the report unit's page lacks %q", want)
			}
		}
		js := string(mustReadFile(t, filepath.Join(dir, "www", "db2", "report.json")))
		if !strings.Contains(js, `"ok": true`) || !strings.Contains(js, `"max_age_seconds": 108000`) {
			t.Errorf("report.json does not judge as the status section says (30h):\n%.600s", js)
		}
		// The status check's verdict (ghost MISSING): exit 1, which the
		// unit accepts, and the page says so.
		out, args, err := unitExec(ghost, "pgarchive-report", "")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: %v, want exit status 1\n%s", strings.Join(args, " "), err, out)
		}
		page = string(mustReadFile(t, filepath.Join(dir, "www", "ghost", "index.html")))
		if !strings.Contains(page, `data-exit-status="1"`) || !strings.Contains(page, "ghost on "+filepath.Join(dir, "a")+" is MISSING") {
			t.Errorf("the page does not show ghost MISSING:\n%.2000s", page)
		}
	})
	t.Run("failure hook", func(t *testing.T) {
		out := unitRun("pgarchive-notify-failure@", "postgresqlBackup-db1.service", "--dry-run")
		if !strings.Contains(out, `"unit":"postgresqlBackup-db1.service"`) || !strings.Contains(out, `"database":"db1"`) {
			t.Errorf("notice does not name the unit and database:\n%s", out)
		}
	})
	t.Run("summary", func(t *testing.T) {
		out := unitRun("pgarchive-notify-summary", "", "--dry-run")
		if !strings.Contains(out, `"event":"summary"`) || !strings.Contains(out, `"backlog":{"archives":0`) {
			t.Errorf("summary without the backlog of the state directory:\n%s", out)
		}
		for _, up := range []string{"a", "b"} {
			if !strings.Contains(out, `"name":"`+filepath.Join(dir, up)+`","archives":2,`) {
				t.Errorf("summary does not count db1 and db2 on upstream %s:\n%s", up, out)
			}
		}
	})

	t.Run("root wrapper", func(t *testing.T) {
		text := store.Replace(got.Wrappers[0].Text)
		script := filepath.Join(dir, "wrapper")
		os.WriteFile(script, []byte(text), 0o755)
		root := func(args ...string) (string, error) {
			cmd := exec.Command("bash", append([]string{script}, args...)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		for _, args := range [][]string{
			{"list"},
			{"status"},
			{"retry"},
			{"heal", "--dry-run"},
			{"prune", "--dry-run", "--keep-last", "1"},
		} {
			if out, err := root(args...); err != nil {
				t.Errorf("root's pgarchive %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		// Root's prune plans with the unit's rules and deletes with the
		// prune unit's rclone.conf: with the archive one gone, list fails
		// and prune still works.
		os.Rename(rc, rc+".away")
		defer os.Rename(rc+".away", rc)
		if out, err := root("list"); err == nil {
			t.Errorf("root's list worked without the archive rclone.conf:\n%s", out)
		}
		out, err := root("prune", "--dry-run")
		if err != nil || !strings.Contains(out, "keep-last 3, keep-daily 7, keep-weekly 5, keep-monthly 12, keep-yearly all, keep-within 545d") {
			t.Errorf("root's prune --dry-run did not use the prune unit's rules and rclone.conf: %v\n%s", err, out)
		}
		// A key on the command line replaces root's default key (the
		// drill's identity): a passphrase alone, which age would refuse to
		// combine with it.
		pass := filepath.Join(secrets, "pass")
		os.WriteFile(pass, []byte("not the key\n"), 0o600)
		out, _ = root("--passphrase-file", pass, "verify", "--deep", "--latest")
		if strings.Contains(out, "not both") {
			t.Errorf("a passphrase given to root's wrapper was combined with the default identity:\n%s", out)
		}
	})
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statusMetrics parses pgarchive-status.prom as node_exporter does and
// checks pgarchive_status_ok per database (want) on both upstreams of dir,
// with one archive and a fresh age where the database is OK.
func statusMetrics(t *testing.T, metrics, dir string, want map[string]float64) {
	t.Helper()
	path := filepath.Join(metrics, "pgarchive-status.prom")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	type key struct{ name, db, up string }
	got := map[key]float64{}
	for name, fam := range fams {
		for _, s := range fam.GetMetric() {
			ls := map[string]string{}
			for _, l := range s.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["command"] != "status" {
				t.Errorf("%s: command=%q, want status", name, ls["command"])
			}
			got[key{name, ls["database"], ls["upstream"]}] = s.GetGauge().GetValue()
		}
	}
	for db, ok := range want {
		for _, up := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")} {
			if v, found := got[key{"pgarchive_status_ok", db, up}]; !found || v != ok {
				t.Errorf("pgarchive_status_ok{database=%q,upstream=%q} = %v (present %v), want %v", db, up, v, found, ok)
			}
			archives := got[key{"pgarchive_archives", db, up}]
			age, hasAge := got[key{"pgarchive_newest_archive_age_seconds", db, up}]
			if ok == 1 && (archives != 1 || !hasAge || age < 0 || age > 3600) {
				t.Errorf("%s on %s: %v archives, newest %vs old (present %v); want 1, fresh", db, up, archives, age, hasAge)
			}
			if ok == 0 && (archives != 0 || hasAge) {
				t.Errorf("%s on %s: %v archives, newest age present %v; want 0 and none", db, up, archives, hasAge)
			}
		}
	}
}
