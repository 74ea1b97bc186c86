package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

func TestStderrLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(Stderr, slog.LevelInfo, &buf))
	log.Info("db1: uploaded", "database", "db1", "bytes", 42)
	log.Error("minio-a: upload failed")
	log.Debug("hidden")
	want := "pgarchive: db1: uploaded\npgarchive: error: minio-a: upload failed\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestJournalFields(t *testing.T) {
	var got map[string]string
	var gotMsg string
	var gotPri journal.Priority
	h := New(Journal, slog.LevelInfo, nil)
	h.send = func(msg string, p journal.Priority, vars map[string]string) error {
		gotMsg, gotPri, got = msg, p, vars
		return nil
	}
	slog.New(h).With("database", "db1").Warn("partial", "upstream", "minio-a:", "sha256", "ab", "object", "x")
	if gotMsg != "x: partial" || gotPri != journal.PriWarning {
		t.Errorf("msg %q pri %d", gotMsg, gotPri)
	}
	for k, v := range map[string]string{
		"PGARCHIVE_DATABASE": "db1", "PGARCHIVE_UPSTREAM": "minio-a:", "PGARCHIVE_SHA256": "ab", "SYSLOG_IDENTIFIER": "pgarchive",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestJournalFailureFallsBackToStderr(t *testing.T) {
	var buf bytes.Buffer
	h := New(Journal, slog.LevelInfo, &buf)
	h.send = func(string, journal.Priority, map[string]string) error { return errors.New("socket gone") }
	slog.New(h).Info("still seen")
	if !strings.Contains(buf.String(), "still seen") {
		t.Errorf("fallback lost the line: %q", buf.String())
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"database": "PGARCHIVE_DATABASE", "up-stream.x": "PGARCHIVE_UP_STREAM_X", "ü": ""} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChoose(t *testing.T) {
	env := func(string) string { return "" }
	if tgt, err := Choose("stderr", env); err != nil || tgt != Stderr {
		t.Error("stderr")
	}
	if _, err := Choose("syslog", env); err == nil {
		t.Error("unknown target accepted")
	}
	if tgt, _ := Choose("auto", env); tgt != Stderr && !journal.Enabled() {
		t.Error("auto without systemd must be stderr")
	}
}

func TestAppendField(t *testing.T) {
	var b bytes.Buffer
	appendField(&b, "MESSAGE", "one line")
	appendField(&b, "PGARCHIVE_X", "two\nlines")
	want := "MESSAGE=one line\nPGARCHIVE_X\n\x09\x00\x00\x00\x00\x00\x00\x00two\nlines\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
