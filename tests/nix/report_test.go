package nix_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// The dashboard (report.nix), evaluated with the real lib.evalModules: its
// unit after the status check on the full host, on its own timer on a host
// that only reports, the alert rules in services.prometheus.ruleFiles, its
// assertions and types, and systemd-analyze on each. realbin_test.go runs
// its command.

func TestReportModule(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")

	full := fullHost()
	full["services"].(m)["pgarchive"].(m)["report"] = m{"enable": true}
	full["services"].(m)["pgarchive"].(m)["alerts"] = m{"enable": true}
	res, err := evalModule(t, lib, []any{
		full,
		pgarchive(m{"rcloneConfigFile": drillRC,
			"report": m{"enable": true, "startAt": "*:0/30", "directory": "/srv/www/backups", "days": 90}}),
		fullHost(),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, only, without := res.Cases[0], res.Cases[1], res.Cases[2]

	t.Run("after the status check", func(t *testing.T) {
		u, ok := got.Units["pgarchive-report"]
		if !ok {
			t.Fatalf("no pgarchive-report among %v", keys(got.Units))
		}
		dir := "/var/lib/pgarchive-report"
		want := sandbox()
		want["UMask"] = "0022" // the page is for the web server's user
		expectConfig(t, "pgarchive-report", u, want, m{
			"Type":                "oneshot",
			"ExecStart":           got.PackagePath + "/bin/pgarchive --config " + got.Report.Path + " report --html " + dir + "/index.html --json-file " + dir + "/report.json --days 35",
			"LoadCredential":      []any{"rclone.conf:" + drillRC},
			"ReadWritePaths":      []any{dir},
			"SupplementaryGroups": []any{"pgarchive"},
			"SuccessExitStatus":   []any{1.0},
		})
		expectAbsent(t, "pgarchive-report", u, "EnvironmentFile", "User")
		expectHooks(t, "pgarchive-report", u, true, false)
		expectOnline(t, "pgarchive-report", u)
		if !contains(u.After, "pgarchive-status.service") || !contains(got.Units["pgarchive-status"].Wants, "pgarchive-report.service") {
			t.Errorf("report after %v, status wants %v: want the report after every status run", u.After, got.Units["pgarchive-status"].Wants)
		}
		if _, timer := got.Timers["pgarchive-report"]; timer {
			t.Error("a report timer without report.startAt")
		}
		if !contains(got.Tmpfiles, "d '"+dir+"' 2775 root pgarchive - -") {
			t.Errorf("tmpfiles %v: no report directory", got.Tmpfiles)
		}
		// The status section (same verdict as the check) and prune's rules
		// (what the next prune removes), checked by check-config.
		checkSettings(t, bin, "report", got.Report, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "metrics-dir": metricsDir,
			"status": m{"database": []any{"db1", "db2"}, "max-age": "30h"},
			"prune":  m{"database": []any{"db1"}, "keep-last": 3.0, "keep-daily": 7.0, "keep-weekly": 5.0, "keep-monthly": 12.0, "keep-yearly": -1.0, "keep-within": "1y6m"},
		})
		verifyAll(t, bin, got)
	})

	t.Run("alert rules", func(t *testing.T) {
		want := filepath.Join(harness.ModuleRoot(t), "nix", "prometheus", "alerts.yml")
		if !reflect.DeepEqual(got.PrometheusRules, []string{want}) {
			t.Errorf("services.prometheus.ruleFiles = %v, want [%s] (the file promtool tests)", got.PrometheusRules, want)
		}
		if len(without.PrometheusRules) != 0 || len(only.PrometheusRules) != 0 {
			t.Errorf("rule files without alerts.enable: %v %v", without.PrometheusRules, only.PrometheusRules)
		}
		if _, ok := without.Units["pgarchive-report"]; ok || contains(without.Units["pgarchive-status"].Wants, "pgarchive-report.service") {
			t.Error("a report unit without report.enable")
		}
	})

	t.Run("report-only host", func(t *testing.T) {
		u := only.Units["pgarchive-report"]
		expectConfig(t, "pgarchive-report", u, m{
			"ExecStart":      only.PackagePath + "/bin/pgarchive --config " + only.Report.Path + " report --html /srv/www/backups/index.html --json-file /srv/www/backups/report.json --days 90",
			"LoadCredential": []any{"rclone.conf:" + drillRC},
			"ReadWritePaths": []any{"/srv/www/backups"},
		})
		expectTimer(t, only, "pgarchive-report", "*:0/30")
		checkSettings(t, bin, "report", only.Report, only.PackagePath, m{
			"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
			"status": m{"max-age": "26h"},
		})
		expectSet(t, "tmpfiles", only.Tmpfiles, "d '/srv/www/backups' 2775 root pgarchive - -")
		verifyAll(t, bin, only)
	})

	t.Run("rejects a report that never runs", func(t *testing.T) {
		_, err := evalModule(t, lib, []any{pgarchive(m{"rcloneConfigFile": drillRC, "report": m{"enable": true}})})
		msg := ""
		if err != nil {
			msg = strings.Join(strings.Fields(err.Error()), " ")
		}
		if !strings.Contains(msg, "Failed assertions:") || !strings.Contains(msg, "enable services.pgarchive.status or give services.pgarchive.report.startAt") {
			t.Fatalf("want the failed assertion, got: %v", err)
		}
	})
	store := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-www"
	t.Run("type refuses a directory in the store", func(t *testing.T) {
		_, err := evalModule(t, lib, []any{pgarchive(m{"rcloneConfigFile": drillRC, "report": m{"enable": true, "startAt": "hourly", "directory": store}})})
		expectTypeError(t, err, "services.pgarchive.report.directory", store)
	})
	t.Run("type refuses 0 days", func(t *testing.T) {
		_, err := evalModule(t, lib, []any{pgarchive(m{"rcloneConfigFile": drillRC, "report": m{"enable": true, "startAt": "hourly", "days": 0}})})
		if err == nil || !strings.Contains(err.Error(), "services.pgarchive.report.days") {
			t.Fatalf("want a type error for days = 0, got %v", err)
		}
	})
}
