package notify

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// journalOutput is shaped like `journalctl -o json --all` output of a
// failed archive run (fields trimmed), plus the odd lines journalctl or a
// damaged journal can produce.
const journalOutput = `{"__REALTIME_TIMESTAMP":"1777604102000000","PRIORITY":"6","SYSLOG_IDENTIFIER":"systemd","_PID":"1","MESSAGE":"Starting postgresqlBackup-db1.service - Backup of db1...","MESSAGE_ID":"7d4958e842da4a758f6c1cdc7b36dcc5","UNIT":"postgresqlBackup-db1.service","INVOCATION_ID":"abc"}
{"__REALTIME_TIMESTAMP":"1777604103000000","PRIORITY":"3","SYSLOG_IDENTIFIER":"pgarchive","_PID":"812","MESSAGE":"db1: db1/db1_20260501T031502Z.sql.gz.age NOT stored on minio-b:bucket: connection refused","PGARCHIVE_DATABASE":"db1","PGARCHIVE_UPSTREAM":"minio-b:bucket","PGARCHIVE_ARCHIVE":"db1/db1_20260501T031502Z.sql.gz.age","_SYSTEMD_INVOCATION_ID":"abc"}

not json at all
{"MESSAGE":[104,105,255],"PRIORITY":"9","_COMM":"pg_dump","_PID":"813"}
{"MESSAGE":["first","second"],"SYSLOG_IDENTIFIER":[[97,98],"c"],"PGARCHIVE_BIG":null}
[1,2,3]
{"MESSAGE":"multi\nline\ttext"}
`

func TestParseJournal(t *testing.T) {
	entries, skipped, err := ParseJournal(strings.NewReader(journalOutput + "{" + strings.Repeat("x", maxJSONLine+10) + "}\n{\"MESSAGE\":\"after\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 3 { // "not json at all", the array and the over-long line
		t.Errorf("skipped %d lines, want 3", skipped)
	}
	if len(entries) != 6 {
		t.Fatalf("got %d entries, want 6: %+v", len(entries), entries)
	}
	e := entries[1]
	if e.Priority != 3 || e.Identifier != "pgarchive" || e.PID != "812" ||
		e.Fields["PGARCHIVE_UPSTREAM"] != "minio-b:bucket" || e.Fields["_SYSTEMD_INVOCATION_ID"] != "abc" ||
		!e.Time.Equal(time.Date(2026, 5, 1, 2, 55, 3, 0, time.UTC)) {
		t.Errorf("pgarchive entry parsed as %+v (time %s)", e, e.Time)
	}
	if entries[0].Fields["MESSAGE_ID"] != unitStarting || entries[0].Fields["UNIT"] != "postgresqlBackup-db1.service" {
		t.Errorf("systemd entry lost its fields: %+v", entries[0])
	}
	if e := entries[2]; e.Message != "hi\uFFFD" || e.Priority != 6 || e.Identifier != "pg_dump" {
		t.Errorf("binary message, bad priority and _COMM fallback: %+v", e)
	}
	if e := entries[3]; e.Message != "first second" || e.Identifier != "ab c" || e.Fields["PGARCHIVE_BIG"] != "" {
		t.Errorf("repeated fields: %+v", e)
	}
	if entries[5].Message != "after" {
		t.Errorf("the entry after an over-long line is lost: %+v", entries[5])
	}
}

func TestLine(t *testing.T) {
	at := time.Date(2026, 5, 1, 3, 15, 2, 0, time.UTC)
	cases := []struct {
		e     Entry
		width int
		want  string
	}{
		{Entry{Time: at, Priority: 3, Identifier: "pgarchive", PID: "812", Message: "db1: failed"}, 200,
			"2026-05-01T03:15:02Z pgarchive[812]: error: db1: failed"},
		{Entry{Priority: 4, Identifier: "pgarchive", Message: "slow"}, 200, "pgarchive: warning: slow"},
		{Entry{Priority: 6, Message: "a\nb\r\x1b[31mc"}, 200, "?: a b  [31mc"},
		{Entry{Priority: 6, Identifier: "x", Message: strings.Repeat("é", 100)}, 20, "x: ééééééé…"},
	}
	for _, c := range cases {
		if got := Line(c.e, c.width); got != c.want {
			t.Errorf("Line(%+v, %d) = %q, want %q", c.e, c.width, got, c.want)
		}
	}
}

// FuzzParseJournal: whatever journalctl (or a damaged journal) prints,
// parsing never fails on content, priorities stay syslog's, and every
// rendered line is bounded, one line, and valid UTF-8.
func FuzzParseJournal(f *testing.F) {
	f.Add(journalOutput, 40)
	f.Add(`{"MESSAGE":[0,10,13,226,128,168],"PRIORITY":"-1","__REALTIME_TIMESTAMP":"-5"}`, 3)
	f.Add(`{"MESSAGE":[["a"]],"_PID":[1,2],"PGARCHIVE_UPSTREAM":{"x":1}}`+"\n\n\r\n", 0)
	f.Fuzz(func(t *testing.T, out string, width int) {
		if width < 0 || width > 1000 {
			return
		}
		entries, skipped, err := ParseJournal(strings.NewReader(out))
		if err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		if len(entries)+skipped > strings.Count(out, "\n")+1 {
			t.Fatalf("%d entries and %d skipped from %d lines", len(entries), skipped, strings.Count(out, "\n")+1)
		}
		for _, e := range entries {
			if e.Priority < 0 || e.Priority > 7 {
				t.Fatalf("priority %d", e.Priority)
			}
			l := Line(e, width)
			if len(l) > width || !utf8.ValidString(l) || strings.ContainsAny(l, "\n\r\u2028\u2029") {
				t.Fatalf("Line(%+v, %d) = %q", e, width, l)
			}
		}
		FailedUpstreams(entries)
		Databases(entries)
		LastRun(entries)
	})
}
