package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Events a notice can be about.
const (
	Failure = "failure"
	Success = "success"
	Summary = "summary"
)

// Formats of the webhook body.
const (
	FormatSlack = "slack"
	FormatJSON  = "json"
)

// Version of the JSON notice; it changes only when a field changes meaning
// or goes away (new fields may appear without it).
const Version = 1

// Notice is the JSON document --format json sends. Every field is always
// present (empty when unknown) so that receivers need no special cases;
// Summary is null except for summary notices. The field list is repeated in
// `pgarchive notify --help`: keep both in step.
type Notice struct {
	Version         int       `json:"version"`
	Event           string    `json:"event"`
	Host            string    `json:"host"`
	Time            time.Time `json:"time"`
	Unit            string    `json:"unit"`
	InvocationID    string    `json:"invocation_id"`
	Database        string    `json:"database"`
	Databases       []string  `json:"databases"`
	Result          string    `json:"result"`
	ExitCode        string    `json:"exit_code"`
	ExitStatus      string    `json:"exit_status"`
	FailedUpstreams []string  `json:"failed_upstreams"`
	Journal         []string  `json:"journal"`
	JournalError    string    `json:"journal_error"`
	Summary         *Digest   `json:"summary"`
}

// UnitFacts is what a failure or success notice is built from.
type UnitFacts struct {
	Event    string
	Host     string
	Now      time.Time
	Unit     string // --unit, else MONITOR_UNIT
	Database string // --database; else derived here
	Monitor  Monitor
	Entries  []Entry // the run's journal entries, oldest first
	// Lines is how many journal lines the notice carries, Width how long
	// each may be.
	Lines, Width int
	JournalError string
}

// UnitNotice assembles a failure or success notice. The database is the
// one given, else the one the unit's name implies, else the only one the
// journal names.
func UnitNotice(f UnitFacts) *Notice {
	dbs := Databases(f.Entries)
	db := f.Database
	if db == "" {
		db = DatabaseFromUnit(f.Unit)
	}
	if db == "" && len(dbs) == 1 {
		db = dbs[0]
	}
	return &Notice{
		Version: Version, Event: f.Event, Host: f.Host, Time: f.Now.UTC(),
		Unit: f.Unit, InvocationID: f.Monitor.InvocationID, Database: db, Databases: dbs,
		Result: f.Monitor.Result, ExitCode: f.Monitor.ExitCode, ExitStatus: f.Monitor.ExitStatus,
		FailedUpstreams: FailedUpstreams(f.Entries),
		Journal:         Lines(f.Entries, f.Lines, f.Width),
		JournalError:    f.JournalError,
	}
}

// SummaryNotice wraps a digest.
func SummaryNotice(host string, now time.Time, database string, d *Digest) *Notice {
	return &Notice{
		Version: Version, Event: Summary, Host: host, Time: now.UTC(), Database: database,
		Databases: d.Databases, FailedUpstreams: d.failedUpstreams(), Journal: []string{}, Summary: d,
	}
}

// Body renders the webhook request body in format.
func Body(n *Notice, format string) ([]byte, error) {
	switch format {
	case FormatJSON:
		return json.Marshal(n)
	case FormatSlack:
		return json.Marshal(map[string]string{"text": SlackText(n)})
	}
	return nil, fmt.Errorf("unknown format %q (want slack or json)", format)
}

// SlackText is the notice as Slack mrkdwn: a headline, the facts, and the
// journal lines in a code block. Slack reads &, < and > as markup, so they
// are escaped everywhere.
func SlackText(n *Notice) string {
	if n.Event == Summary {
		return slackSummary(n)
	}
	var b strings.Builder
	subject := n.Unit
	if subject == "" {
		subject = "pgarchive"
	}
	if n.Event == Failure {
		fmt.Fprintf(&b, ":x: *%s failed* on %s", esc(subject), code(n.Host))
	} else {
		fmt.Fprintf(&b, ":white_check_mark: *%s succeeded* on %s", esc(subject), code(n.Host))
	}
	if db := n.Database; db != "" {
		fmt.Fprintf(&b, "\n*Database:* %s", code(db))
	} else if len(n.Databases) > 0 {
		fmt.Fprintf(&b, "\n*Databases:* %s", codes(n.Databases))
	}
	if r := resultText(n); r != "" {
		fmt.Fprintf(&b, "\n*Result:* %s", esc(r))
	}
	if len(n.FailedUpstreams) > 0 {
		fmt.Fprintf(&b, "\n*Failed upstreams:* %s", codes(n.FailedUpstreams))
	}
	if n.JournalError != "" {
		fmt.Fprintf(&b, "\n*Journal:* %s", esc(n.JournalError))
	}
	if lines := slackLines(n.Journal); len(lines) > 0 {
		fmt.Fprintf(&b, "\n*Last %d journal lines:*\n```\n", len(lines))
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteString("```")
	}
	return b.String()
}

// slackJournalMax keeps a message well below Slack's 40,000 characters,
// past which it cuts the text.
const slackJournalMax = 30000

// slackLines escapes the lines for a code block and drops the oldest that
// do not fit.
func slackLines(lines []string) []string {
	var out []string
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		l := esc(strings.ReplaceAll(lines[i], "```", "'''"))
		if total += len(l) + 1; total > slackJournalMax {
			break
		}
		out = append(out, l)
	}
	slices.Reverse(out)
	return out
}

// resultText reads systemd's result fields: "exit-code (status 1)".
func resultText(n *Notice) string {
	r := n.Result
	var st string
	switch {
	case n.ExitStatus == "":
	case n.ExitCode == "killed" || n.ExitCode == "dumped":
		st = "signal " + n.ExitStatus
	default:
		st = "status " + n.ExitStatus
	}
	switch {
	case r == "" && st == "":
		return ""
	case r == "":
		return st
	case st == "":
		return r
	}
	return r + " (" + st + ")"
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func esc(s string) string { return slackEscaper.Replace(s) }

// code sets s in backticks, which it must not contain itself.
func code(s string) string {
	if s == "" {
		return "`?`"
	}
	return "`" + esc(strings.ReplaceAll(s, "`", "'")) + "`"
}

func codes(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = code(s)
	}
	return strings.Join(parts, ", ")
}
