package notify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 5, 1, 3, 20, 0, 0, time.UTC)

func failedRun() []Entry {
	return []Entry{
		entry(6, "MESSAGE", "db1: archiving /var/backup/postgresql/db1.sql.gz", "PGARCHIVE_DATABASE", "db1"),
		entry(6, "MESSAGE", "db1: stored db1/x.age on local:/srv", "PGARCHIVE_DATABASE", "db1", "PGARCHIVE_UPSTREAM", "local:/srv"),
		entry(3, "MESSAGE", "db1: db1/x.age NOT stored on minio-b:b: <refused> & gone", "PGARCHIVE_DATABASE", "db1", "PGARCHIVE_UPSTREAM", "minio-b:b"),
		entry(3, "MESSAGE", "db1: archive db1/x.age is complete on 1 of 2 upstreams; failed: minio-b:b", "PGARCHIVE_DATABASE", "db1"),
	}
}

func TestUnitNoticeDatabase(t *testing.T) {
	base := UnitFacts{Event: Failure, Host: "pg1", Now: now, Entries: failedRun(), Lines: 20, Width: 300}
	for _, c := range []struct {
		unit, flag, want string
		entries          []Entry
	}{
		{"postgresqlBackup-db1.service", "", "db1", nil},
		{"postgresqlBackup-db1.service", "other", "other", nil},
		{"postgresqlBackup.service", "", "all", nil},
		{"pgarchive-prune.service", "", "db1", nil}, // from the journal
		{"pgarchive-drill.service", "", "", append(failedRun(), entry(3, "PGARCHIVE_DATABASE", "db2"))},
	} {
		f := base
		f.Unit, f.Database = c.unit, c.flag
		if c.entries != nil {
			f.Entries = c.entries
		}
		if got := UnitNotice(f).Database; got != c.want {
			t.Errorf("unit %q, --database %q: database %q, want %q", c.unit, c.flag, got, c.want)
		}
	}
}

// TestJSONNotice pins the documented field set: receivers rely on every
// key being there.
func TestJSONNotice(t *testing.T) {
	n := UnitNotice(UnitFacts{Event: Failure, Host: "pg1", Now: now, Unit: "postgresqlBackup-db1.service",
		Monitor: Monitor{InvocationID: "inv", Result: "exit-code", ExitCode: "exited", ExitStatus: "1"},
		Entries: failedRun(), Lines: 2, Width: 300})
	body, err := Body(n, FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"database", "databases", "event", "exit_code", "exit_status", "failed_upstreams", "host", "invocation_id",
		"journal", "journal_error", "result", "summary", "time", "unit", "version"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("JSON keys %v, want %v (update --help and docs with any change)", keys, want)
	}
	if got["time"] != "2026-05-01T03:20:00Z" || got["summary"] != nil || got["exit_status"] != "1" || got["version"] != 1.0 {
		t.Errorf("fields: %s", body)
	}
	if j := got["journal"].([]any); len(j) != 2 || !strings.Contains(j[1].(string), "complete on 1 of 2") {
		t.Errorf("journal must hold the last 2 lines: %v", j)
	}
	if f := got["failed_upstreams"].([]any); len(f) != 1 || f[0] != "minio-b:b" {
		t.Errorf("failed_upstreams %v", f)
	}
	empty, _ := Body(UnitNotice(UnitFacts{Event: Success, Now: now}), FormatJSON)
	for _, k := range []string{`"databases":[]`, `"failed_upstreams":[]`, `"journal":[]`} {
		if !strings.Contains(string(empty), k) {
			t.Errorf("an empty notice must still carry %s: %s", k, empty)
		}
	}
}

func TestSlackNotice(t *testing.T) {
	n := UnitNotice(UnitFacts{Event: Failure, Host: "pg1", Now: now, Unit: "postgresqlBackup-db1.service",
		Monitor: Monitor{Result: "exit-code", ExitCode: "exited", ExitStatus: "1"}, Entries: failedRun(), Lines: 20, Width: 300})
	body, err := Body(n, FormatSlack)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		":x: *postgresqlBackup-db1.service failed* on `pg1`",
		"*Database:* `db1`",
		"*Result:* exit-code (status 1)",
		"*Failed upstreams:* `minio-b:b`",
		"*Last 4 journal lines:*\n```\n",
		"NOT stored on minio-b:b: &lt;refused&gt; &amp; gone\n",
	} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("Slack text lacks %q:\n%s", want, msg.Text)
		}
	}
	ok := SlackText(UnitNotice(UnitFacts{Event: Success, Host: "pg1", Now: now, Unit: "pgarchive-drill.service",
		Monitor: Monitor{Result: "success", ExitCode: "exited", ExitStatus: "0"}}))
	if !strings.HasPrefix(ok, ":white_check_mark: *pgarchive-drill.service succeeded* on `pg1`") || strings.Contains(ok, "```") {
		t.Errorf("success text: %s", ok)
	}
	if _, err := Body(n, "xml"); err == nil {
		t.Error("an unknown format must fail")
	}
}

func TestSlackKeepsBelowLimit(t *testing.T) {
	var es []Entry
	for i := range 200 {
		es = append(es, entry(6, "MESSAGE", fmt.Sprintf("%03d %s", i, strings.Repeat("&", 600))))
	}
	n := UnitNotice(UnitFacts{Event: Failure, Now: now, Unit: "u.service", Entries: es, Lines: 200, Width: 500})
	text := SlackText(n)
	if len(n.Journal) != 200 || len(text) > 40000 || !strings.Contains(text, "pgarchive: 199 &amp;") {
		t.Errorf("JSON keeps %d lines; Slack text has %d bytes and must end with the newest line", len(n.Journal), len(text))
	}
	if !strings.Contains(text, fmt.Sprintf("*Last %d journal lines:*", strings.Count(text, "\npgarchive: "))) {
		t.Errorf("the heading must count the lines shown:\n%.300s", text)
	}
}

func TestResultText(t *testing.T) {
	for _, c := range []struct{ result, code, status, want string }{
		{"exit-code", "exited", "2", "exit-code (status 2)"},
		{"signal", "killed", "TERM", "signal (signal TERM)"},
		{"timeout", "", "", "timeout"},
		{"", "exited", "1", "status 1"},
		{"", "", "", ""},
	} {
		if got := resultText(&Notice{Result: c.result, ExitCode: c.code, ExitStatus: c.status}); got != c.want {
			t.Errorf("%+v: %q, want %q", c, got, c.want)
		}
	}
}
