package nix_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// TestLifecycleUnitsUnderSystemd boots real systemd (PID 1 in
// systemd-nspawn, as tests/nspawn does) with the units lib.evalModules
// rendered for the lifecycle options, their store paths replaced by a stub
// pgarchive that reports what systemd gave it: arguments after specifier and
// credential expansion, user and groups, credentials, MONITOR_* variables,
// whether it can write the metrics and state directories the module's
// tmpfiles rules create, and whether a notify hook can read the journal of
// the unit it reports on. The helper's commands themselves are tested in
// tests/e2e; this is about what the module makes systemd do.
func TestLifecycleUnitsUnderSystemd(t *testing.T) {
	harness.NeedRoot(t)
	nspawn := nixeval.Need(t, "systemd-nspawn", "apt-get install -y systemd-container")
	harness.Need(t, "journalctl")
	lib := nixpkgsLib(t)

	pruneOnly := pgarchive(m{"prune": m{"enable": true, "rcloneConfigFile": pruneRC, "keep": m{"last": 10}},
		"notify": m{"onFailure": true, "webhookUrl": plainURL}})
	reporting := fullHost()
	reporting["services"].(m)["pgarchive"].(m)["report"] = m{"enable": true}
	res, err := evalModule(t, lib, []any{fullHost(), pruneOnly, reporting})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("full host", func(t *testing.T) {
		got := res.Cases[0]
		b := bootUnits(t, nspawn, got, map[string]string{
			// db1's archive step fails, db2's succeeds: one hook each.
			"postgresqlBackup-db1": "", "postgresqlBackup-db2": "", "pgarchive-prune": "", "pgarchive-drill": "",
			// The status check finds a stale archive: it fails.
			"pgarchive-status": "",
			// After the backups, so that the backlog holds a file; after the
			// writers, so that every metrics file is there.
			"pgarchive-notify-summary": "After=postgresqlBackup-db1.service postgresqlBackup-db2.service pgarchive-prune.service pgarchive-drill.service pgarchive-status.service\n",
		})
		postgres, pgarchiveGID, journalGID := lookup(t, "passwd", "postgres"), lookup(t, "group", "pgarchive-test"), lookup(t, "group", "systemd-journal")

		db2 := b.stub(t, "postgresqlBackup-db2.service")
		db2.expectArgs(t, "archive --database db2 --file /var/backup/postgresql/db2.sql.gz --heal")
		db2.expect(t, "uid="+postgres+" ", "CRED rclone.conf=archive-rclone-conf", "METRICS ok", "STATE ok")
		db2.expectGroup(t, pgarchiveGID)
		b.stub(t, "postgresqlBackup-db1.service").expect(t, "EXIT 1")

		for _, name := range []string{"pgarchive-prune.service", "pgarchive-drill.service", "pgarchive-status.service"} {
			s := b.stub(t, name)
			s.expect(t, "METRICS ok", "dynamic=yes")
			s.expectGroup(t, pgarchiveGID)
		}
		prune := b.stub(t, "pgarchive-prune.service")
		prune.expectArgs(t, "prune")
		prune.expect(t, "SECTION prune")
		// Its own credentials, not the archive host's.
		prune.expect(t, "CRED rclone.conf=prune-rclone-conf")
		b.stub(t, "pgarchive-drill.service").expect(t, "CRED identity=drill-identity", "SECTION drill")
		status := b.stub(t, "pgarchive-status.service")
		status.expectArgs(t, "status")
		status.expect(t, "CRED rclone.conf=archive-rclone-conf", "SECTION status", "EXIT 1")

		summary := b.stub(t, "pgarchive-notify-summary.service")
		// $CREDENTIALS_DIRECTORY reaches the binary unexpanded ($$ in the
		// unit); the binary expands it.
		summary.expectArgs(t, "notify --event summary --webhook-url-file $CREDENTIALS_DIRECTORY/webhook-url --format json")
		summary.expect(t, "WEBHOOK hook-url-from-file", "CRED rclone.conf=archive-rclone-conf", "dynamic=yes",
			"STATE listed backlog-db1 backlog-db2", "MODE /srv/pgarchive 750 postgres pgarchive-test", "MODE "+metricsDir+" 2775 root pgarchive-test")
		summary.expectGroup(t, pgarchiveGID)
		// Every writer's file stays readable by node_exporter and in the group.
		for _, f := range []string{"archive", "prune", "drill", "status"} {
			summary.expect(t, "MODE "+metricsDir+"/pgarchive-"+f+".prom 644 ")
		}
		// setgid: files keep the group whoever wrote them.
		for _, f := range []string{"archive", "prune", "drill", "status"} {
			summary.expect(t, "/pgarchive-"+f+".prom 644 ")
			if !regexp.MustCompile(`MODE \S+/pgarchive-` + f + `\.prom 644 \S+ pgarchive-test`).MatchString(strings.Join(summary.lines, "\n")) {
				t.Errorf("pgarchive-%s.prom is not in group pgarchive-test: %v", f, summary.lines)
			}
		}

		for unit, event := range map[string]string{
			"postgresqlBackup-db1.service": "failure", "postgresqlBackup-db2.service": "success",
			"pgarchive-prune.service": "success", "pgarchive-drill.service": "success",
			"pgarchive-status.service": "failure",
		} {
			hook := b.stub(t, "pgarchive-notify-"+event+"@"+unit+".service")
			hook.expectArgs(t, "notify --event "+event+" --webhook-url-file $CREDENTIALS_DIRECTORY/webhook-url --format json --journal-lines 5 --unit "+unit)
			hook.expect(t, "WEBHOOK hook-url-from-file", "MONITOR unit="+unit+" ", "JOURNAL ok", "dynamic=yes")
			hook.expectGroup(t, journalGID)
			if event == "failure" {
				hook.expect(t, "result=exit-code")
			} else {
				hook.expect(t, "result=success")
			}
		}
		for _, hook := range []string{"failure@postgresqlBackup-db2", "success@postgresqlBackup-db1", "success@pgarchive-status"} {
			if n := len(b.entries(t, "_SYSTEMD_UNIT=pgarchive-notify-"+hook+".service.service")); n != 0 {
				t.Errorf("pgarchive-notify-%s.service.service ran", hook)
			}
		}
	})

	t.Run("report after the status check", func(t *testing.T) {
		got := res.Cases[2]
		b := bootUnits(t, nspawn, got, map[string]string{"pgarchive-status": "", "pgarchive-report": pulled})
		b.stub(t, "pgarchive-status.service").expect(t, "EXIT 1")
		report := b.stub(t, "pgarchive-report.service")
		report.expectArgs(t, "report --html /var/lib/pgarchive-report/index.html --json-file /var/lib/pgarchive-report/report.json --days 35")
		report.expect(t, "PAGE ok", "dynamic=yes", "CRED rclone.conf=archive-rclone-conf",
			"MODE /var/lib/pgarchive-report 2775 root pgarchive-test", "MODE /var/lib/pgarchive-report/index.html 644 ", "EXIT 1")
		report.expectGroup(t, lookup(t, "group", "pgarchive-test"))
		// Pulled in by the failed check (Wants=) and started once it ended
		// (After=).
		statusEnd := b.entries(t, "_SYSTEMD_UNIT=pgarchive-status.service", "MESSAGE=EXIT 1")
		reportStart := b.entries(t, "_SYSTEMD_UNIT=pgarchive-report.service")
		if len(statusEnd) != 1 || len(reportStart) == 0 || reportStart[0]["__REALTIME_TIMESTAMP"] <= statusEnd[0]["__REALTIME_TIMESTAMP"] {
			t.Errorf("the report did not start after the status check ended:\n%s", b.dump(t))
		}
		// Exit status 1 is the verdict the page shows: no failure notice.
		if n := len(b.entries(t, "_SYSTEMD_UNIT=pgarchive-notify-failure@pgarchive-report.service.service")); n != 0 {
			t.Error("the report's exit status 1 sent a failure notice")
		}
		b.stub(t, "pgarchive-notify-failure@pgarchive-status.service.service").expect(t, "result=exit-code")
	})

	t.Run("prune-only host with a plain webhook URL", func(t *testing.T) {
		got := res.Cases[1]
		b := bootUnits(t, nspawn, got, map[string]string{"pgarchive-prune": ""})
		b.stub(t, "pgarchive-prune.service").expect(t, "EXIT 1", "CRED rclone.conf=prune-rclone-conf")
		hook := b.stub(t, "pgarchive-notify-failure@pgarchive-prune.service.service")
		// Unsplit, unexpanded: exactly the option's value.
		hook.expectArgs(t, "notify --event failure --webhook-url "+plainURL+" --format slack --journal-lines 20 --unit pgarchive-prune.service")
		hook.expect(t, "JOURNAL ok", "MONITOR unit=pgarchive-prune.service result=exit-code")
	})
}

// The stub stands in for pgarchive in every unit. It prints one line per
// fact; ARGV brackets each argument so that splitting shows. It fails the
// archive of db1, the status check (as for a stale archive) and, on the
// prune-only host, prune itself.
const stubScript = `#!/bin/bash
set -u
metrics=` + metricsDir + `
state=/srv/pgarchive
echo "STUB uid=$(id -u) groups=$(id -G) dynamic=$([ "$(id -u)" -ge 61184 ] && echo yes || echo no)"
printf 'ARGV'; printf ' [%s]' "$@"; printf '\n'
echo "MONITOR unit=${MONITOR_UNIT-} result=${MONITOR_SERVICE_RESULT-} "
if [ -n "${CREDENTIALS_DIRECTORY-}" ]; then
  for f in "$CREDENTIALS_DIRECTORY"/*; do echo "CRED $(basename "$f")=$(cat "$f")"; done
fi
sub= db= unit= prev= config= html=
for a in "$@"; do
  case "$prev" in
    # The binary expands a leading $CREDENTIALS_DIRECTORY itself.
    --webhook-url-file) echo "WEBHOOK $(cat "${a/#'$CREDENTIALS_DIRECTORY'/${CREDENTIALS_DIRECTORY-}}")" ;;
    --unit) unit=$a ;;
    --database) db=${db:-$a} ;;
    --config) config=$a ;;
  esac
  case "$prev" in --html) html=$a ;; esac
  case "$a" in archive|prune|drill|status|notify|report) sub=${sub:-$a} ;; esac
  prev=$a
done
status=0
# The scheduled commands read their options from their section.
if [ -n "$config" ] && grep -q "\"$sub\":{" "$config"; then echo "SECTION $sub"; fi
case "$sub" in
  archive|prune|drill|status)
    tmp=$(mktemp "$metrics/.pgarchive-$sub.XXXXXX") && echo "pgarchive_stub 1" > "$tmp" && chmod 0644 "$tmp" &&
      mv "$tmp" "$metrics/pgarchive-$sub.prom" && echo "METRICS ok" || echo "METRICS failed"
    if [ "$sub" = archive ]; then
      echo ciphertext > "$state/backlog-$db" && echo "STATE ok" || echo "STATE failed"
      [ "$db" = db1 ] && status=1
    fi
    # The prune-only host (no metrics) stands for a failing prune.
    if [ "$sub" = prune ] && ! grep -q '"metrics-dir"' "$config"; then status=1; fi
    # A check that takes a moment: a report started beside it instead of
    # after it would begin before this ends.
    [ "$sub" = status ] && { sleep 0.5; status=1; }
    ;;
  report)
    dir=$(dirname "$html")
    tmp=$(mktemp "$dir/.index.html.XXXXXX") && echo "<!DOCTYPE html>" > "$tmp" && chmod 0644 "$tmp" &&
      mv "$tmp" "$html" && echo "PAGE ok" || echo "PAGE failed"
    echo "MODE $dir $(stat -c '%a %U %G' "$dir")"
    echo "MODE $html $(stat -c '%a %U %G' "$html")"
    # status's verdict (1), which the unit accepts.
    status=1
    ;;
  notify)
    if [ -z "$unit" ]; then
      echo "STATE listed $(ls "$state" | tr '\n' ' ')"
      for p in "$state" "$metrics" "$metrics"/*.prom; do echo "MODE $p $(stat -c '%a %U %G' "$p")"; done
    else
      for i in $(seq 20); do
        journalctl -q -u "$unit" -o cat 2>/dev/null | grep -q '^ARGV' && { echo "JOURNAL ok"; break; }
        sleep 0.2
      done
    fi
    ;;
esac
echo "EXIT $status"
exit $status
`

type bootedUnits struct {
	journal string
	exit    int
	console string
}

// pulled, as a unit's extra lines, writes the unit without starting it:
// another unit pulls it in.
const pulled = "\x00pulled"

// bootUnits writes the named units of a case (plus the notify templates and
// the settings files they name) with store paths replaced, boots them in a
// container and waits until they and every hook they trigger have run.
// extra adds [Unit] lines to a unit, for ordering the test needs.
func bootUnits(t *testing.T, nspawn string, got evalCase, extra map[string]string) *bootedUnits {
	t.Helper()
	const opt = "/opt/pgarchive"
	root := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"opt/bin", "units", "journal", "secrets", "agenix", "etc"} {
		dirs[d] = filepath.Join(root, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dirs["opt/bin"], "pgarchive"), stubScript, 0o755)
	for name, content := range map[string]string{"rclone.conf": "archive-rclone-conf", "rclone-prune.conf": "prune-rclone-conf", "webhook-url": "hook-url-from-file"} {
		write(filepath.Join(dirs["secrets"], name), content+"\n", 0o600)
	}
	write(filepath.Join(dirs["agenix"], "pgarchive-identity"), "drill-identity\n", 0o600)

	// Store paths: the package becomes /opt/pgarchive, each settings file a
	// copy in it.
	pairs := []string{got.PackagePath + "/bin/pgarchive", opt + "/bin/pgarchive"}
	for i, s := range []settingsFile{{got.ConfigPath, got.ConfigJSON, ""}, {got.Drill.ConfigPath, got.Drill.ConfigJSON, ""}, got.Prune, got.Summary, got.Status, got.Report} {
		if s.Path == "" {
			continue
		}
		name := fmt.Sprintf("settings-%d.json", i)
		write(filepath.Join(root, "opt", name), s.JSON, 0o644)
		pairs = append(pairs, s.Path, opt+"/"+name)
	}
	pairs = append(pairs, got.Drill.PostgresqlPath, "/usr")
	replace := strings.NewReplacer(pairs...)

	// The module's group, under a name no host has, in a copy of /etc/group.
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dirs["etc"], "group"), string(group)+"pgarchive-test:x:64990:\n", 0o644)
	rename := strings.NewReplacer(" pgarchive - -", " pgarchive-test - -")
	var tmpfiles strings.Builder
	for _, r := range got.Tmpfiles {
		tmpfiles.WriteString(rename.Replace(r) + "\n")
	}
	write(filepath.Join(root, "tmpfiles.conf"), tmpfiles.String(), 0o644)

	var wants, after []string
	names := make([]string, 0, len(got.Units))
	for name := range got.Units {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u := got.Units[name]
		more, started := extra[name]
		if more == pulled {
			more, started = "", false
		} else if !started && !strings.HasSuffix(name, "@") {
			continue
		}
		if _, ok := u.ServiceConfig["ExecStart"]; !ok {
			u.ServiceConfig["ExecStart"] = "/bin/true" // postgresqlBackup's dump script
		}
		u.Requires = nil // postgresql.target: no server here
		if g, ok := u.ServiceConfig["SupplementaryGroups"].([]any); ok {
			for i, x := range g {
				if x == "pgarchive" {
					g[i] = "pgarchive-test"
				}
			}
		}
		text := replace.Replace(serviceText(u))
		text = strings.Replace(text, "\n[Service]\n", more+"\n[Service]\n", 1)
		write(filepath.Join(dirs["units"], name+".service"), text, 0o644)
		if started {
			wants = append(wants, name+".service")
			after = append(after, name+".service")
		}
	}
	// Done once every started unit finished and no hook is queued or running.
	write(filepath.Join(dirs["opt/bin"], "wait-idle"), `#!/bin/bash
for i in $(seq 300); do
  jobs=$(systemctl list-jobs --no-legend | grep -v -e pgarchive-test-done -e pgarchive-test.target)
  [ -z "$jobs" ] && exit 0
  sleep 0.1
done
echo "still queued: $jobs"
exit 1
`, 0o755)
	write(filepath.Join(dirs["units"], "pgarchive-test-done.service"), fmt.Sprintf(`[Unit]
Description=pgarchive test: all units and hooks done
After=%s
SuccessAction=exit
SuccessActionExitStatus=0
FailureAction=exit
FailureActionExitStatus=4

[Service]
Type=oneshot
ExecStart=%s/bin/wait-idle
ExecStart=%s --sync
`, strings.Join(after, " "), opt, harness.LookTool("journalctl")), 0o644)
	write(filepath.Join(dirs["units"], "pgarchive-test.target"),
		"[Unit]\nDescription=pgarchive lifecycle units\nWants="+strings.Join(wants, " ")+" pgarchive-test-done.service\n", 0o644)
	// journald owns the journal; readers need the systemd-journal group.
	os.Chmod(dirs["journal"], 0o2755)

	b := &bootedUnits{journal: dirs["journal"]}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nspawn, "--quiet", "--directory=/", "--volatile=yes", "--register=no", "--keep-unit",
		fmt.Sprintf("--machine=pgarchive-nix-%d-%d", os.Getpid(), time.Now().UnixNano()%100000),
		"--bind-ro=/etc",
		"--bind-ro="+filepath.Join(dirs["etc"], "group")+":/etc/group",
		"--bind-ro="+dirs["units"]+":/run/systemd/system",
		"--bind-ro="+filepath.Join(root, "tmpfiles.conf")+":/run/tmpfiles.d/pgarchive.conf",
		"--bind="+dirs["journal"]+":/var/log/journal",
		"--bind-ro="+filepath.Join(root, "opt")+":"+opt,
		"--bind-ro="+dirs["secrets"]+":/run/secrets/pgarchive",
		"--bind-ro="+dirs["agenix"]+":/run/agenix",
		"--boot", "--", "systemd.unit=pgarchive-test.target")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	err = cmd.Run()
	b.console = console.String()
	if ee, ok := err.(*exec.ExitError); ok {
		b.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("systemd-nspawn: %v\n%s", err, b.console)
	}
	t.Logf("boot: exit %d in %s", b.exit, time.Since(start).Round(time.Millisecond))
	if b.exit != 0 {
		t.Fatalf("container exited %d, want 0\njournal:\n%s\nconsole:\n%s", b.exit, b.dump(t), tailOf(b.console, 3000))
	}
	return b
}

func (b *bootedUnits) entries(t *testing.T, match ...string) []map[string]string {
	t.Helper()
	return (&harness.Journald{JournalDir: b.journal}).Entries(t, match...)
}

func (b *bootedUnits) dump(t *testing.T) string {
	var s strings.Builder
	for _, e := range b.entries(t) {
		if u := e["_SYSTEMD_UNIT"] + e["UNIT"]; strings.Contains(u, "pgarchive") || strings.Contains(u, "postgresqlBackup") {
			fmt.Fprintf(&s, "  %s: %s\n", u, e["MESSAGE"])
		}
	}
	return s.String()
}

type stubOutput struct {
	unit  string
	lines []string
	all   func() string
}

// stub returns what the stub printed in a unit; the unit must have run it.
func (b *bootedUnits) stub(t *testing.T, unit string) stubOutput {
	t.Helper()
	s := stubOutput{unit: unit, all: func() string { return b.dump(t) }}
	for _, e := range b.entries(t, "_SYSTEMD_UNIT="+unit) {
		s.lines = append(s.lines, e["MESSAGE"])
	}
	if len(s.lines) == 0 {
		t.Fatalf("%s printed nothing: did it run?\n%s", unit, b.dump(t))
	}
	return s
}

func (s stubOutput) expect(t *testing.T, parts ...string) {
	t.Helper()
	text := strings.Join(s.lines, "\n")
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Errorf("%s: no %q in\n%s", s.unit, p, text)
		}
	}
}

func (s stubOutput) expectArgs(t *testing.T, args string) {
	t.Helper()
	for _, l := range s.lines {
		if strings.HasPrefix(l, "ARGV ") {
			got := regexp.MustCompile(`\] \[`).ReplaceAllString(strings.TrimSuffix(strings.TrimPrefix(l, "ARGV ["), "]"), "\x00")
			parts := strings.Split(got, "\x00")
			// Global flags (--config FILE) come first; compare from the subcommand on.
			for i, p := range parts {
				if p == strings.Fields(args)[0] {
					parts = parts[i:]
					break
				}
			}
			if strings.Join(parts, " ") != args || (strings.Contains(args, plainURL) && !contains(parts, plainURL)) {
				t.Errorf("%s: arguments %q\nwant %s", s.unit, parts, args)
			}
			return
		}
	}
	t.Errorf("%s: no ARGV line in %v", s.unit, s.lines)
}

func (s stubOutput) expectGroup(t *testing.T, gid string) {
	t.Helper()
	for _, l := range s.lines {
		if m := regexp.MustCompile(`groups=([0-9 ]+)`).FindStringSubmatch(l); m != nil {
			if !contains(strings.Fields(m[1]), gid) {
				t.Errorf("%s runs with groups %s, want %s among them", s.unit, m[1], gid)
			}
			return
		}
	}
	t.Errorf("%s: no groups line", s.unit)
}

// lookup returns the numeric id of a user or group, from the copy of
// /etc/group the container sees for pgarchive-test.
func lookup(t *testing.T, db, name string) string {
	t.Helper()
	if name == "pgarchive-test" {
		return "64990"
	}
	out, err := exec.Command("getent", db, name).Output()
	if err != nil {
		t.Fatalf("getent %s %s: %v", db, name, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	return f[2]
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
