package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// drillWithMetrics runs drill as user postgres with PGARCHIVE_METRICS_DIR
// (--metrics-dir is a global option; the drill helper puts its arguments
// after the command).
func (d *drillWorld) drillWithMetrics(t *testing.T, mdir string, args ...string) (int, string) {
	t.Helper()
	cmd, out := d.drill(t, args...)
	cmd.Env = append(cmd.Env, "PGARCHIVE_METRICS_DIR="+mdir)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	d.noLeftovers(t)
	return code, out.String()
}

// drillSeries returns name's value per database.
func drillSeries(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "database" {
				out[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestDrillMetrics: drill, run as an unprivileged user, records each
// database's result in pgarchive-drill.prom; a failed drill keeps the time
// of the last pass and other databases' series; an unwritable metrics
// directory is a warning, never a failed drill.
func TestDrillMetrics(t *testing.T) {
	d := newDrillWorld(t)
	mdir := filepath.Join(d.dir, "textfile")
	os.Mkdir(mdir, 0o755)
	uid, _ := strconv.Atoi(d.acct.Uid)
	gid, _ := strconv.Atoi(d.acct.Gid)
	os.Chown(mdir, uid, gid)
	file := filepath.Join(mdir, "pgarchive-drill.prom")

	before := float64(time.Now().Unix())
	if code, out := d.drillWithMetrics(t, mdir, "-d", "db1", "-i", d.idPath); code != 0 {
		t.Fatalf("drill db1: exit %d\n%s", code, out)
	}
	fams := parseTextfile(t, file)
	passed := drillSeries(fams, "pgarchive_drill_last_success_timestamp_seconds")["db1"]
	if ok := drillSeries(fams, "pgarchive_drill_last_success")["db1"]; ok != 1 || passed < before || passed > float64(time.Now().Unix()+1) {
		t.Fatalf("after a passed drill: success %v at %v\n%s", ok, passed, mustRead(t, file))
	}

	// db2's archive is a truncated dump: its drill fails; db1 is untouched.
	if code, out := d.drillWithMetrics(t, mdir, "-d", "db2", "-i", d.idPath); code == 0 {
		t.Fatalf("drill db2 (truncated) must fail\n%s", out)
	}
	fams = parseTextfile(t, file)
	if got := drillSeries(fams, "pgarchive_drill_last_success"); got["db1"] != 1 || got["db2"] != 0 || len(got) != 2 {
		t.Errorf("pgarchive_drill_last_success: %v", got)
	}
	if got := drillSeries(fams, "pgarchive_drill_last_success_timestamp_seconds"); len(got) != 1 || got["db1"] != passed {
		t.Errorf("a database that never passed has no last-success time: %v", got)
	}

	// db1 now fails (stale): its last pass is kept, its last run moves on.
	time.Sleep(10 * time.Millisecond)
	if code, out := d.drillWithMetrics(t, mdir, "-d", "db1", "-i", d.idPath, "--max-age", "1ns"); code == 0 {
		t.Fatalf("a stale archive must fail the drill\n%s", out)
	}
	fams = parseTextfile(t, file)
	if got := drillSeries(fams, "pgarchive_drill_last_success")["db1"]; got != 0 {
		t.Errorf("db1 failed: last_success %v, want 0", got)
	}
	if got := drillSeries(fams, "pgarchive_drill_last_success_timestamp_seconds")["db1"]; got != passed {
		t.Errorf("the failed drill lost db1's last pass: %v, want %v", got, passed)
	}
	if got := drillSeries(fams, "pgarchive_drill_last_run_timestamp_seconds")["db1"]; got <= passed {
		t.Errorf("last run %v is not after the pass at %v", got, passed)
	}
	onlyProm(t, mdir)

	// Metrics that cannot be written do not fail a passing drill.
	code, out := d.drillWithMetrics(t, filepath.Join(d.dir, "no-such-dir"), "-d", "db1", "-i", d.idPath)
	if code != 0 || !strings.Contains(out, "writing metrics") || !strings.Contains(out, "no-such-dir") {
		t.Fatalf("unwritable metrics: exit %d, want 0 and a warning naming the directory\n%s", code, out)
	}
}
