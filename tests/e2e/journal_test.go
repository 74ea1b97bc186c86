package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestJournald runs archive the way systemd runs ExecStartPost (stderr is a
// journal stream, JOURNAL_STREAM set, --log-target left at auto) against a
// real standalone journald, with one upstream that cannot be reached.
func TestJournald(t *testing.T) {
	harness.NeedRoot(t)
	harness.Need(t, "age", "journalctl")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	good, conf := halfDeadUnion(t, dir)
	idPath, _ := harness.AgeKeygen(t, false)
	secret := strings.TrimSpace(lastLine(mustRead(t, idPath)))
	dump := filepath.Join(dir, "db1.sql.gz")
	os.WriteFile(dump, harness.RandomDump(3, 100_000, true), 0o600)

	j := harness.StartJournald(t)
	exit := j.RunAsService(t, []string{"RCLONE_CONFIG=" + conf}, "postgresqlBackup-db1", bin,
		"--identity-file", idPath, "archive", "--database", "db1", "--file", dump)
	if exit == 0 {
		t.Fatal("a run with an unreachable upstream must fail")
	}
	entries := j.Entries(t, "PGARCHIVE_DATABASE=db1")
	if len(entries) < 3 {
		t.Fatalf("want per-upstream lines and a summary in the journal, got %d entries: %v", len(entries), entries)
	}
	var stored, failed, summary bool
	for _, e := range entries {
		if strings.Contains(e["MESSAGE"], secret) {
			t.Fatalf("the journal holds the identity: %v", e)
		}
		if e["SYSLOG_IDENTIFIER"] != "pgarchive" || e["PGARCHIVE_ARCHIVE"] == "" {
			t.Fatalf("entry lacks identifier or archive field: %v", e)
		}
		switch {
		case e["PGARCHIVE_UPSTREAM"] == good && e["PRIORITY"] == "6":
			stored = e["PGARCHIVE_BYTES"] != "" && len(e["PGARCHIVE_SHA256"]) == 64 && strings.Contains(e["MESSAGE"], "stored")
		case e["PGARCHIVE_UPSTREAM"] == "dead:bucket" && e["PRIORITY"] == "3":
			failed = strings.Contains(e["MESSAGE"], "dead:bucket")
		case e["PGARCHIVE_UPSTREAM"] == "" && e["PRIORITY"] == "3":
			summary = strings.Contains(e["MESSAGE"], "1 of 2 upstreams")
		}
	}
	if !stored || !failed || !summary {
		t.Fatalf("stored=%v failed=%v summary=%v in:\n%v", stored, failed, summary, entries)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// halfDeadUnion writes an rclone.conf whose union has a local folder
// (good) and an S3 upstream nobody listens for ("dead:bucket").
func halfDeadUnion(t *testing.T, dir string) (good, conf string) {
	good = filepath.Join(dir, "good")
	conf = harness.WriteRcloneConf(t, dir,
		"[dead]\ntype = s3\nprovider = Minio\nendpoint = http://127.0.0.1:"+strconv.Itoa(harness.FreePort(t))+"\naccess_key_id = x\nsecret_access_key = y\nlow_level_retries = 1\n",
		harness.UnionSection(harness.UnionName, good, "dead:bucket"))
	return good, conf
}

// TestWALPushJournal: wal-push run as postgresql.service runs its
// archive_command (a journal stream, --log-target auto), with one upstream
// that cannot be reached, exits 1 (PostgreSQL retries) with an error entry
// naming that upstream and the WAL file.
func TestWALPushJournal(t *testing.T) {
	harness.NeedRoot(t)
	harness.Need(t, "age", "journalctl")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	_, conf := halfDeadUnion(t, dir)
	_, recip := harness.AgeKeygen(t, false)
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "global"), 0o700)
	os.MkdirAll(filepath.Join(data, "pg_wal"), 0o700)
	ctl := make([]byte, 296)
	ctl[0] = 7
	os.WriteFile(filepath.Join(data, "global", "pg_control"), ctl, 0o600)
	os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("15\n"), 0o600)
	seg := "000000010000000000000003"
	os.WriteFile(filepath.Join(data, "pg_wal", seg), harness.RandomBytes(5, 16<<20), 0o600)

	j := harness.StartJournald(t)
	exit := j.RunAsService(t, []string{"RCLONE_CONFIG=" + conf}, "postgresql", bin,
		"--recipient", recip, "wal-push", "--pgdata", data, "pg_wal/"+seg)
	if exit != 1 {
		t.Fatalf("wal-push with an unreachable upstream: exit %d, want 1", exit)
	}
	found := false
	for _, e := range j.Entries(t, "PGARCHIVE_UPSTREAM=dead:bucket") {
		found = found || e["PRIORITY"] == "3" && e["PGARCHIVE_WAL"] == seg && strings.Contains(e["MESSAGE"], "dead:bucket")
	}
	if !found {
		t.Fatalf("no error entry naming dead:bucket and %s: %v", seg, j.Entries(t))
	}
}
