package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// A notice goes out whatever the journal does: without a unit, with a
// journalctl that can't run, and with MONITOR_* of another unit (ignored,
// with a warning). The database comes from the unit name.
func TestGatherUnitFallbacks(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	n := GatherUnit(context.Background(), UnitRequest{Event: Failure, Host: "h", Getenv: env(nil), Now: now, Log: log})
	if !strings.Contains(n.JournalError, "no unit given") || !strings.Contains(logs.String(), "no unit given") {
		t.Fatalf("no unit: %+v\n%s", n, logs.String())
	}

	logs.Reset()
	missing := Journal{Path: filepath.Join(t.TempDir(), "no-journalctl")}
	n = GatherUnit(context.Background(), UnitRequest{Event: Failure, Host: "h", Unit: "postgresqlBackup-db1",
		Getenv: env(map[string]string{"MONITOR_UNIT": "prune.service", "MONITOR_SERVICE_RESULT": "exit-code"}),
		Now:    now, Journal: missing, Lines: 5, Log: log})
	if n.Unit != "postgresqlBackup-db1" || n.Database != "db1" || n.Result != "" {
		t.Fatalf("another unit's MONITOR_* was used: %+v", n)
	}
	if !strings.Contains(logs.String(), "MONITOR_UNIT): its MONITOR_* values are ignored") {
		t.Fatalf("no warning about MONITOR_UNIT:\n%s", logs.String())
	}
	if !strings.Contains(n.JournalError, "journalctl failed") {
		t.Fatalf("journal error not named: %q", n.JournalError)
	}

	// The same unit, spelt with and without .service, keeps MONITOR_*.
	n = GatherUnit(context.Background(), UnitRequest{Event: Failure, Unit: "postgresqlBackup-db1",
		Getenv: env(map[string]string{"MONITOR_UNIT": "postgresqlBackup-db1.service", "MONITOR_SERVICE_RESULT": "exit-code"}),
		Now:    now, Journal: missing, Log: log})
	if n.Result != "exit-code" {
		t.Fatalf("MONITOR_* of the same unit ignored: %+v", n)
	}
}

func TestBacklogDigest(t *testing.T) {
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	if BacklogDigest("", log) != nil {
		t.Fatal("no state directory must give no backlog")
	}
	b := BacklogDigest(t.TempDir(), log)
	if b == nil || b.Archives != 0 || b.Error != "" || b.Databases == nil {
		t.Fatalf("empty backlog: %+v", b)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if b := BacklogDigest(file, log); b == nil || b.Error == "" {
		t.Fatalf("unreadable backlog not named: %+v", b)
	}
	d := UnreadableDigest(time.Unix(100000, 0), time.Hour, errors.New("boom"), b)
	if d.Error != "reading the remote: boom" || d.Backlog != b || d.Until.Sub(d.Since) != time.Hour {
		t.Fatalf("digest: %+v", d)
	}
}
