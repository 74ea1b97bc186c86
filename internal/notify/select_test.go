package notify

import (
	"reflect"
	"strings"
	"testing"
)

func TestDatabaseFromUnit(t *testing.T) {
	for unit, want := range map[string]string{
		"postgresqlBackup-db1.service":    "db1",
		"postgresqlBackup-db1":            "db1",
		"postgresqlBackup-my-db.service":  "my-db",
		"postgresqlBackup.service":        "all",
		"postgresqlBackup-.service":       "",
		"pgarchive-drill.service":         "",
		"":                                "",
		"xpostgresqlBackup-db1.service":   "",
		"postgresqlBackup-db1.service.ok": "db1.service.ok",
	} {
		if got := DatabaseFromUnit(unit); got != want {
			t.Errorf("DatabaseFromUnit(%q) = %q, want %q", unit, got, want)
		}
	}
}

func entry(prio int, fields ...string) Entry {
	e := Entry{Priority: prio, Identifier: "pgarchive", Fields: map[string]string{}}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "MESSAGE" {
			e.Message = fields[i+1]
		} else {
			e.Fields[fields[i]] = fields[i+1]
		}
	}
	return e
}

func TestFailedUpstreams(t *testing.T) {
	es := []Entry{
		entry(6, "PGARCHIVE_UPSTREAM", "local:/a"),          // stored: not failed
		entry(3, "PGARCHIVE_UPSTREAM", "minio-b:b"),         // failed
		entry(4, "PGARCHIVE_UPSTREAM", "minio-c:c"),         // a warning only
		entry(2, "PGARCHIVE_UPSTREAM", "minio-a:a"),         // critical
		entry(3, "PGARCHIVE_UPSTREAM", "minio-b:b"),         // again
		entry(3, "MESSAGE", "complete on 1 of 3 upstreams"), // summary line, no upstream
	}
	if got, want := FailedUpstreams(es), []string{"minio-b:b", "minio-a:a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("FailedUpstreams = %v, want %v", got, want)
	}
	if got := FailedUpstreams(nil); got == nil || len(got) != 0 {
		t.Errorf("no entries must give an empty, non-nil list (JSON []), got %#v", got)
	}
}

func TestDatabasesAndLastRun(t *testing.T) {
	es := []Entry{
		entry(3, "PGARCHIVE_DATABASE", "old", "PGARCHIVE_UPSTREAM", "gone:x"),
		entry(6, "MESSAGE_ID", unitStarting),
		entry(6, "PGARCHIVE_DATABASE", "db2"),
		entry(3, "PGARCHIVE_DATABASE", "db1", "PGARCHIVE_UPSTREAM", "minio-b:b"),
	}
	if got := Databases(es); !reflect.DeepEqual(got, []string{"db1", "db2", "old"}) {
		t.Errorf("Databases = %v", got)
	}
	last := LastRun(es)
	if len(last) != 3 || !reflect.DeepEqual(FailedUpstreams(last), []string{"minio-b:b"}) {
		t.Errorf("LastRun kept %d entries blaming %v; the previous run's upstream must not count", len(last), FailedUpstreams(last))
	}
	if got := LastRun(es[2:]); len(got) != 2 {
		t.Errorf("without a start message every entry belongs to the run, got %d", len(got))
	}
}

func TestLines(t *testing.T) {
	var es []Entry
	for _, m := range []string{"one", "two", "three", strings.Repeat("x", 50)} {
		es = append(es, entry(6, "MESSAGE", m))
	}
	got := Lines(es, 2, 20)
	// 20 bytes, of which "…" takes 3.
	if want := []string{"pgarchive: three", "pgarchive: xxxxxx…"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	if got := Lines(es, 0, 20); len(got) != 0 || got == nil {
		t.Errorf("0 lines: %#v", got)
	}
}

func TestQueries(t *testing.T) {
	qs := Queries(nil, "0123abcd", "postgresqlBackup-db1.service", 500)
	want := [][]string{
		{"-n", "500", "_SYSTEMD_INVOCATION_ID=0123abcd", "+", "INVOCATION_ID=0123abcd"},
		{"-n", "500", "-u", "postgresqlBackup-db1.service"},
	}
	if len(qs) != 2 || !reflect.DeepEqual(qs[0].Args, want[0]) || !reflect.DeepEqual(qs[1].Args, want[1]) || qs[0].ByUnit || !qs[1].ByUnit {
		t.Errorf("Queries = %+v", qs)
	}
	qs = Queries([]string{"SYSLOG_IDENTIFIER=pgarchive"}, "0123abcd", "x.service", 0)
	if len(qs) != 1 || !reflect.DeepEqual(qs[0].Args, []string{"-n", "1", "SYSLOG_IDENTIFIER=pgarchive"}) {
		t.Errorf("explicit matches must replace the automatic ones: %+v", qs)
	}
	if qs := Queries(nil, "", "", 10); len(qs) != 0 {
		t.Errorf("nothing to select by: %+v", qs)
	}
}

func TestMonitorFromEnv(t *testing.T) {
	env := map[string]string{"MONITOR_UNIT": "u.service", "MONITOR_INVOCATION_ID": "id", "MONITOR_SERVICE_RESULT": "exit-code",
		"MONITOR_EXIT_CODE": "exited", "MONITOR_EXIT_STATUS": "1"}
	got := MonitorFromEnv(func(k string) string { return env[k] })
	if got != (Monitor{Unit: "u.service", InvocationID: "id", Result: "exit-code", ExitCode: "exited", ExitStatus: "1"}) {
		t.Errorf("MonitorFromEnv = %+v", got)
	}
}
