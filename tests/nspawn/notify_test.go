package nspawn_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/notify"
	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// Exit statuses of a notify boot: the handler unit's SuccessAction= and
// FailureAction= end the container.
const (
	exitNotified     = 3 // the handler ran and delivered
	exitNotifyFailed = 4 // the handler ran and failed
)

// notifyHardening is the sandbox nix/hardening.nix gives pgarchive's own
// units, so that journalctl and the webhook are shown to work inside it:
// a transient user that may read the journal through systemd-journal.
const notifyHardening = `DynamicUser=yes
SupplementaryGroups=systemd-journal
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
UMask=0077
`

// TestNotifyUnderSystemd boots real systemd with a backup unit whose
// OnFailure=/OnSuccess= starts a pgarchive-notify-<event>@%n.service
// template (as the NixOS module renders them): systemd passes the MONITOR_*
// variables, the handler reads the watched run's journal by invocation id
// under DynamicUser=, gets the webhook URL through LoadCredential= and posts
// to an HTTP server this test runs on the host's loopback (the container
// shares the host's network).
func TestNotifyUnderSystemd(t *testing.T) {
	harness.NeedRoot(t)
	nspawn := nixeval.Need(t, "systemd-nspawn", "apt-get install -y systemd-container")
	harness.Need(t, "journalctl", "age")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	_, recipient := harness.AgeKeygen(t, false)

	var mu sync.Mutex
	var bodies [][]byte
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, paths = append(bodies, b), append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer srv.Close()
	const secret = "/services/TNSPAWN/BNSPAWN/nspawnS3cret"

	secrets := t.TempDir()
	writeFile(t, filepath.Join(secrets, "webhook-url"), srv.URL+secret+"\n", 0o600)
	dumps := t.TempDir()
	writeFile(t, filepath.Join(dumps, "db1.sql.gz"), string(harness.RandomDump(7, 30_000, true)), 0o600)
	deadPort := strconv.Itoa(harness.FreePort(t))

	boot := func(t *testing.T, event string, upstreams string) (notify.Notice, []map[string]string) {
		t.Helper()
		mu.Lock()
		bodies, paths = nil, nil
		mu.Unlock()
		if event == "failure" {
			upstreams += " dead:bucket"
		}
		writeFile(t, filepath.Join(secrets, "rclone.conf"), "[dead]\ntype = s3\nprovider = Minio\nendpoint = http://127.0.0.1:"+deadPort+
			"\naccess_key_id = x\nsecret_access_key = y\nlow_level_retries = 1\n\n"+
			harness.UnionSection(harness.UnionName, strings.Fields(upstreams)...), 0o600)
		b := bootNotify(t, nspawn, bin, secrets, dumps, recipient, event)
		entries := (&harness.Journald{JournalDir: b.journal}).Entries(t)
		if b.exit != exitNotified {
			t.Fatalf("container exited %d, want %d (handler delivered)\njournal:\n%s\nconsole tail:\n%s",
				b.exit, exitNotified, messages(entries), tail(b.console, 3000))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bodies) != 1 || paths[0] != secret {
			t.Fatalf("the webhook got %d requests (paths %q), want 1 on the secret path", len(bodies), paths)
		}
		var n notify.Notice
		if err := json.Unmarshal(bodies[0], &n); err != nil {
			t.Fatalf("%v\n%s", err, bodies[0])
		}
		t.Logf("notice: %s", bodies[0])
		for _, e := range entries {
			if strings.Contains(e["MESSAGE"], "nspawnS3cret") {
				t.Errorf("the journal shows the webhook URL: %s", e["MESSAGE"])
			}
		}
		return n, entries
	}

	t.Run("OnFailure", func(t *testing.T) {
		n, entries := boot(t, "failure", "/srv/good")
		// The run systemd reported on: pgarchive's entries carry its id.
		var inv string
		for _, e := range entries {
			if e["_SYSTEMD_UNIT"] == "postgresqlBackup-db1.service" && e["PGARCHIVE_UPSTREAM"] == "dead:bucket" {
				inv = e["_SYSTEMD_INVOCATION_ID"]
			}
		}
		if inv == "" {
			t.Fatalf("no pgarchive error entry of the backup unit in the journal:\n%s", messages(entries))
		}
		if n.Event != "failure" || n.Unit != "postgresqlBackup-db1.service" || n.InvocationID != inv ||
			n.Result != "exit-code" || n.ExitCode != "exited" || n.ExitStatus != "1" || n.Database != "db1" || n.JournalError != "" {
			t.Errorf("notice (want MONITOR_* of run %s): %+v", inv, n)
		}
		if len(n.FailedUpstreams) != 1 || n.FailedUpstreams[0] != "dead:bucket" {
			t.Errorf("failed_upstreams = %v", n.FailedUpstreams)
		}
		if j := strings.Join(n.Journal, "\n"); !strings.Contains(j, "NOT stored on dead:bucket") || !strings.Contains(j, "stored db1/") {
			t.Errorf("journal lines lack the run's outcome:\n%s", j)
		}
		// Without the invocation id (as when run by hand) the unit's newest
		// run is read by name: systemd's start message marks where it
		// begins.
		var byName *notify.Notice
		starts := 0
		for _, e := range entries {
			if e["MESSAGE_ID"] == "7d4958e842da4a758f6c1cdc7b36dcc5" && e["UNIT"] == "postgresqlBackup-db1.service" {
				starts++
			}
			if e["_SYSTEMD_UNIT"] == "pgarchive-notify-failure@postgresqlBackup-db1.service.service" && strings.HasPrefix(e["MESSAGE"], "{") {
				byName = &notify.Notice{}
				if err := json.Unmarshal([]byte(e["MESSAGE"]), byName); err != nil {
					t.Fatalf("--dry-run output: %v\n%s", err, e["MESSAGE"])
				}
			}
		}
		if starts != 1 {
			t.Errorf("%d start messages (MESSAGE_ID 7d4958e8...) for the backup unit, want 1", starts)
		}
		if byName == nil {
			t.Fatalf("no --dry-run notice in the handler's journal:\n%s", messages(entries))
		}
		if byName.InvocationID != "" || len(byName.FailedUpstreams) != 1 || byName.FailedUpstreams[0] != "dead:bucket" ||
			byName.ExitStatus != "1" || len(byName.Journal) == 0 || !strings.Contains(byName.Journal[0], "Starting postgresqlBackup-db1.service") && len(byName.Journal) < 10 {
			t.Errorf("notice read by unit name: %+v", byName)
		}

		// The handler read the run by invocation id, not by unit name.
		used := false
		for _, e := range entries {
			if e["_SYSTEMD_UNIT"] == "pgarchive-notify-failure@postgresqlBackup-db1.service.service" &&
				strings.Contains(e["MESSAGE"], "journal entries by invocation "+inv) {
				used = true
			}
		}
		if !used {
			t.Errorf("the handler did not log reading invocation %s:\n%s", inv, messages(entries))
		}
	})

	t.Run("OnSuccess", func(t *testing.T) {
		n, _ := boot(t, "success", "/srv/good /srv/good2")
		if n.Event != "success" || n.Unit != "postgresqlBackup-db1.service" || n.InvocationID == "" ||
			n.Result != "success" || n.ExitStatus != "0" || n.Database != "db1" || len(n.FailedUpstreams) != 0 {
			t.Errorf("notice: %+v", n)
		}
		if j := strings.Join(n.Journal, "\n"); !strings.Contains(j, "to all 2 upstreams") {
			t.Errorf("journal lines lack the run's summary:\n%s", j)
		}
	})
}

// bootNotify writes the watched unit and the handler template and boots a
// container that runs the one and then the other.
func bootNotify(t *testing.T, nspawn, bin, secrets, dumps, recipient, event string) *bootResult {
	t.Helper()
	opt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(opt, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	linkOrCopy(t, bin, filepath.Join(opt, "bin", "pgarchive"))
	units := t.TempDir()
	hook := map[string]string{"failure": "OnFailure", "success": "OnSuccess"}[event]
	handler := "pgarchive-notify-" + event + "@"
	writeFile(t, filepath.Join(units, "postgresqlBackup-db1.service"), fmt.Sprintf(`[Unit]
Description=Backup of db1
%s=%s%%n.service

[Service]
Type=oneshot
ExecStart=%s/bin/pgarchive --rclone-config ${CREDENTIALS_DIRECTORY}/rclone.conf -r %s archive --database db1 --file %s/db1.sql.gz
LoadCredential=rclone.conf:%s/rclone.conf
`, hook, handler, optDir, recipient, dumpDir, keysDir), 0o644)
	writeFile(t, filepath.Join(units, handler+".service"), fmt.Sprintf(`[Unit]
Description=pgarchive: report the %[1]s of %%i
SuccessAction=exit
SuccessActionExitStatus=%[2]d
FailureAction=exit
FailureActionExitStatus=%[3]d

[Service]
Type=oneshot
ExecStart=%[4]s/bin/pgarchive --verbose notify --event %[1]s --unit %%i --webhook-url-file ${CREDENTIALS_DIRECTORY}/webhook-url --format json --journal-lines 10
ExecStart=/usr/bin/env -u MONITOR_INVOCATION_ID %[4]s/bin/pgarchive notify --event %[1]s --unit %%i --format json --journal-lines 10 --dry-run
ExecStart=+%[5]s --sync
LoadCredential=webhook-url:%[6]s/webhook-url
%[7]s`, event, exitNotified, exitNotifyFailed, optDir, harness.LookTool("journalctl"), keysDir, notifyHardening), 0o644)
	writeFile(t, filepath.Join(units, target), "[Unit]\nDescription=pgarchive notify test\nWants=postgresqlBackup-db1.service\n", 0o644)

	b := &bootResult{unit: "postgresqlBackup-db1", db: "db1", journal: t.TempDir()}
	good, good2 := t.TempDir(), t.TempDir()
	b.console, b.exit = runContainer(t, nspawnBoot{
		exe: nspawn, machine: fmt.Sprintf("pgarchive-notify-%d-%s", os.Getpid(), event),
		units: units, journal: b.journal, target: target, timeout: 4 * time.Minute,
		hint: fmt.Sprintf(" (did the %s handler never run?)", event),
		binds: []string{
			"--bind-ro=" + opt + ":" + optDir,
			"--bind-ro=" + secrets + ":" + keysDir,
			"--bind-ro=" + dumps + ":" + dumpDir,
			"--bind=" + good + ":/srv/good",
			"--bind=" + good2 + ":/srv/good2",
		},
	})
	return b
}
