package notify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/backlog"
)

// JournalLineSize is the most bytes of one journal line a notice carries.
const JournalLineSize = 500

// journalScan is how many entries are read to find the database and the
// failing upstreams, however few lines the notice shows.
const journalScan = 1000

// UnitRequest is a failure or success notice to gather.
type UnitRequest struct {
	Event, Host, Database string
	Unit                  string   // the unit asked about; "" for systemd's MONITOR_UNIT
	Matches               []string // journalctl matches that replace the unit's entries
	Lines                 int      // journal lines to include
	Getenv                func(string) string
	Now                   time.Time
	Journal               Journal
	Log                   *slog.Logger
}

// GatherUnit reads the unit's journal and builds its notice. Problems with
// the journal are logged and named in the notice, never fatal: the notice
// matters more than its details. The entries come from the first query
// that finds any: the failed run's invocation, else the unit's newest run,
// else exactly the given matches.
func GatherUnit(ctx context.Context, r UnitRequest) *Notice {
	mon := MonitorFromEnv(r.Getenv)
	unit := r.Unit
	switch {
	case unit == "":
		unit = mon.Unit
	case mon.Unit != "" && unitName(mon.Unit) != unitName(unit):
		r.Log.Warn(fmt.Sprintf("notify: --unit %s but systemd reports on %s (MONITOR_UNIT): its MONITOR_* values are ignored", unit, mon.Unit))
		mon = Monitor{}
	}
	f := UnitFacts{Event: r.Event, Host: r.Host, Now: r.Now, Unit: unit, Database: r.Database, Monitor: mon,
		Lines: r.Lines, Width: JournalLineSize}
	qs := Queries(r.Matches, mon.InvocationID, unit, journalScan)
	if len(qs) == 0 {
		f.JournalError = "no unit given (--unit, MONITOR_UNIT): journal not read"
		r.Log.Warn("notify: " + f.JournalError)
		return UnitNotice(f)
	}
	entries, q, warnings, err := r.Journal.Read(ctx, qs)
	for _, w := range warnings {
		r.Log.Warn("notify: " + w)
	}
	switch {
	case err != nil:
		f.JournalError = err.Error()
		r.Log.Warn("notify: " + f.JournalError)
	case len(entries) == 0:
		var whys []string
		for _, q := range qs {
			whys = append(whys, q.Why)
		}
		f.JournalError = "no journal entries found for " + strings.Join(whys, " or ")
		r.Log.Warn("notify: " + f.JournalError)
	default:
		r.Log.Debug(fmt.Sprintf("notify: %d journal entries by %s", len(entries), q.Why))
	}
	f.Entries = entries
	return UnitNotice(f)
}

// unitName completes a bare name the way systemctl does.
func unitName(u string) string {
	if strings.Contains(u, ".") {
		return u
	}
	return u + ".service"
}

// UnreadableDigest is the summary of a remote that could not be read: it
// names the error and still carries the backlog.
func UnreadableDigest(now time.Time, window time.Duration, err error, bl *Backlog) *Digest {
	return &Digest{Since: now.Add(-window).UTC(), Until: now.UTC(), Databases: []string{}, Stale: []string{},
		Upstreams: []UpstreamDigest{}, Error: "reading the remote: " + err.Error(), Backlog: bl}
}

// BacklogDigest reads the backlog in stateDir, or gives nil when there is
// none configured. A backlog that can't be read is named, and logged.
func BacklogDigest(stateDir string, log *slog.Logger) *Backlog {
	if stateDir == "" {
		return nil
	}
	b := &Backlog{Databases: []BacklogDatabase{}}
	u, err := backlog.Usage(stateDir)
	if err != nil {
		b.Error = err.Error()
		log.Warn("notify: backlog: " + b.Error)
		return b
	}
	b.Archives, b.Bytes = u.Archives, u.Bytes
	if !u.Oldest.IsZero() {
		t := u.Oldest.UTC()
		b.Oldest = &t
	}
	for name, d := range u.Databases {
		b.Databases = append(b.Databases, BacklogDatabase{Database: name, Archives: d.Archives, Bytes: d.Bytes, Oldest: d.Oldest.UTC()})
	}
	SortBacklog(b)
	return b
}
