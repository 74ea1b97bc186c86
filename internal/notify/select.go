package notify

import (
	"sort"
	"strconv"
	"strings"
)

// Monitor is what systemd (>= 251) tells an OnFailure=/OnSuccess= handler
// about the unit that triggered it, through MONITOR_* variables.
type Monitor struct {
	Unit         string // MONITOR_UNIT
	InvocationID string // MONITOR_INVOCATION_ID: the triggering run
	Result       string // MONITOR_SERVICE_RESULT: success, exit-code, signal, timeout, core-dump, watchdog, ...
	ExitCode     string // MONITOR_EXIT_CODE: exited, killed or dumped
	ExitStatus   string // MONITOR_EXIT_STATUS: a number, or a signal name such as TERM
}

// MonitorFromEnv reads the MONITOR_* variables; all are empty outside a
// handler unit.
func MonitorFromEnv(getenv func(string) string) Monitor {
	return Monitor{
		Unit:         getenv("MONITOR_UNIT"),
		InvocationID: getenv("MONITOR_INVOCATION_ID"),
		Result:       getenv("MONITOR_SERVICE_RESULT"),
		ExitCode:     getenv("MONITOR_EXIT_CODE"),
		ExitStatus:   getenv("MONITOR_EXIT_STATUS"),
	}
}

// DatabaseFromUnit names the database of a NixOS postgresqlBackup unit:
// postgresqlBackup-<db>.service dumps <db>, postgresqlBackup.service
// (backupAll) dumps "all". Other units give "".
func DatabaseFromUnit(unit string) string {
	name := strings.TrimSuffix(unit, ".service")
	if name == "postgresqlBackup" {
		return "all"
	}
	if db, ok := strings.CutPrefix(name, "postgresqlBackup-"); ok && db != "" {
		return db
	}
	return ""
}

// unitStarting is systemd's MESSAGE_ID for "Starting <unit>..." (SD_MESSAGE_UNIT_STARTING).
const unitStarting = "7d4958e842da4a758f6c1cdc7b36dcc5"

// LastRun keeps the entries of the unit's newest run: those after systemd's
// last "Starting" message for it. A query by unit name (used when the
// invocation id is unknown) returns earlier runs too, and their failing
// upstreams must not be blamed on this one.
func LastRun(entries []Entry) []Entry {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Fields["MESSAGE_ID"] == unitStarting {
			return entries[i:]
		}
	}
	return entries
}

// FailedUpstreams names the upstreams that pgarchive's error entries
// (priority err or worse, with a PGARCHIVE_UPSTREAM field) blame, in the
// order they first failed.
func FailedUpstreams(entries []Entry) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, e := range entries {
		up := e.Fields["PGARCHIVE_UPSTREAM"]
		if e.Priority <= 3 && up != "" && !seen[up] {
			seen[up] = true
			out = append(out, up)
		}
	}
	return out
}

// Databases lists the databases pgarchive's entries name, sorted.
func Databases(entries []Entry) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, e := range entries {
		if db := e.Fields["PGARCHIVE_DATABASE"]; db != "" && !seen[db] {
			seen[db] = true
			out = append(out, db)
		}
	}
	sort.Strings(out)
	return out
}

// Lines renders the last n entries, each cut to width bytes.
func Lines(entries []Entry, n, width int) []string {
	if n < 0 {
		n = 0
	}
	if len(entries) > n {
		entries = entries[len(entries)-n:]
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, Line(e, width))
	}
	return out
}

// Query is one journalctl invocation to try.
type Query struct {
	Why  string   // for the log: what this query selects
	Args []string // after the common options
	// ByUnit queries return earlier runs too; LastRun trims them.
	ByUnit bool
}

// Queries plans the journal reads for a notice, best first: explicit
// matches alone when given; else the failed run's entries by invocation id
// (pgarchive's and its other processes' through _SYSTEMD_INVOCATION_ID,
// systemd's own messages about the run through INVOCATION_ID); else, or
// when that finds nothing, the unit's newest entries. limit bounds how many
// entries each query returns.
func Queries(matches []string, invocationID, unit string, limit int) []Query {
	n := func(more ...string) []string { return append([]string{"-n", strconv.Itoa(max(limit, 1))}, more...) }
	if len(matches) > 0 {
		return []Query{{Why: "matches " + strings.Join(matches, " "), Args: n(matches...)}}
	}
	var qs []Query
	if invocationID != "" {
		qs = append(qs, Query{Why: "invocation " + invocationID,
			Args: n("_SYSTEMD_INVOCATION_ID="+invocationID, "+", "INVOCATION_ID="+invocationID)})
	}
	if unit != "" {
		qs = append(qs, Query{Why: "unit " + unit, Args: n("-u", unit), ByUnit: true})
	}
	return qs
}
