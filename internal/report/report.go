// Package report builds the dashboard behind `pgarchive report`: from one
// catalog scan (and what status, prune's plan and the metrics directory say
// about it) a Report, which renders as one self-contained HTML page or as
// JSON. Building is pure: a catalog, a clock and the other inputs in, a
// Report out; nothing from the store reaches the page unescaped.
package report

import (
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/status"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// DefaultDays is the timeline's default length: five weeks show a weekly
// rhythm and a missing week next to complete ones.
const DefaultDays = 35

// Input is everything a report is built from.
type Input struct {
	Now     time.Time
	Days    int // the timeline's length; 0: DefaultDays
	Catalog *catalog.Catalog
	Status  status.Report // checked against the same catalog
	WAL     []walarchive.Window
	// Prune is prune's dry-run plan; nil when none was made, PruneNote
	// says why (no rules configured, an upstream unlisted).
	Prune     *prune.Result
	PruneNote string
	// Metrics is what the runs wrote to the metrics directory; nil without
	// one, MetricsNote says why.
	Metrics     *metrics.Snapshot
	MetricsNote string
}

// Report is the dashboard's content; its JSON form is `report --json`.
type Report struct {
	Generated  time.Time  `json:"generated"`
	OK         bool       `json:"ok"`
	ExitStatus int        `json:"exit_status"` // status's exit status for the same catalog
	Summary    string     `json:"summary"`     // status's summary line
	Problems   []string   `json:"problems"`    // what is wrong, one sentence each
	Days       int        `json:"days"`
	Dates      []string   `json:"dates"` // the timeline's days, oldest first (YYYY-MM-DD, UTC)
	Upstreams  []string   `json:"upstreams"`
	Databases  []Database `json:"databases"`
	WAL        []WAL      `json:"wal"`
	Notes      []string   `json:"notes"` // what the report could not show, and why
}

// Database is one database's panel.
type Database struct {
	Database  string    `json:"database"`
	Kind      string    `json:"kind"` // "dump" or "base backup"
	OK        bool      `json:"ok"`
	Upstreams []Verdict `json:"upstreams"` // status per upstream
	// Newest is the newest usable archive (complete somewhere, trusted
	// where trust is checked, not future-dated).
	Newest        *Mark `json:"newest,omitempty"`
	AgeSeconds    int64 `json:"age_seconds,omitempty"`
	MaxAgeSeconds int64 `json:"max_age_seconds"`
	Archives      int   `json:"archives"` // usable archives in the whole catalog
	// Timeline has one row per upstream, each with one cell per date.
	Timeline []Row `json:"timeline"`
	// MissingCopies are runs of consecutive archives an upstream lacks
	// while another holds them (over the whole catalog, newest first).
	MissingCopies []MissingRun `json:"missing_copies"`
	// Suspects are the untrusted and future-dated archives, by name.
	Suspects []Suspect   `json:"suspects"`
	Sizes    []SizePoint `json:"sizes"` // usable archives in the timeline's days, oldest first
	Size     *SizeTrend  `json:"size,omitempty"`
	Drill    *Drill      `json:"drill,omitempty"`
	Backlog  *Backlog    `json:"backlog,omitempty"`
	Prune    *PrunePlan  `json:"prune,omitempty"`
}

// Verdict is status's entry for the database on one upstream.
type Verdict struct {
	Upstream string `json:"upstream"`
	State    string `json:"state"`
	Detail   string `json:"detail"`
	History  bool   `json:"history,omitempty"` // a :ro or :nc member
}

// Row is one upstream's line of a timeline.
type Row struct {
	Upstream string   `json:"upstream"`
	Cells    [][]Mark `json:"cells"` // per date, the database's archives made that day
}

// Mark is one archive on one upstream (or, for Newest, the archive).
type Mark struct {
	Archive string    `json:"archive"`
	Created time.Time `json:"created"`
	State   string    `json:"state"` // catalog state, "future", or "not-expected"
}

// MissingRun is a stretch of archives one upstream lacks.
type MissingRun struct {
	Upstream string    `json:"upstream"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Archives int       `json:"archives"`
	First    string    `json:"first"` // oldest archive of the run
	Last     string    `json:"last"`  // newest archive of the run
}

// Suspect is an archive readers refuse to rely on.
type Suspect struct {
	Archive string    `json:"archive"`
	Created time.Time `json:"created"`
	Why     string    `json:"why"`
}

// SizePoint is one archive's dump size.
type SizePoint struct {
	Created time.Time `json:"created"`
	Bytes   int64     `json:"bytes"`
}

// SizeTrend compares the newest dump with the week before it: a sudden drop
// is what creeping corruption or a dropped table looks like.
type SizeTrend struct {
	Newest int64 `json:"newest_bytes"`
	// Median is the median of the dumps made in the 7 days before the
	// newest; 0 when there were none.
	Median int64 `json:"median_previous_week_bytes"`
	// Change is (Newest-Median)/Median; absent without a median.
	Change *float64 `json:"change,omitempty"`
	Drop   bool     `json:"drop"` // Change below -DropWarning
}

// DropWarning is the fall against the previous week's median that the page
// points out.
const DropWarning = 0.2

// Drill is the database's last restore drill, as its metrics file says.
type Drill struct {
	LastRun         time.Time  `json:"last_run"`
	Passed          bool       `json:"passed"`
	LastSuccess     *time.Time `json:"last_success,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	Checks          int        `json:"checks"`
	ChecksFailed    int        `json:"checks_failed"`
}

// Backlog is what the database has waiting for an upstream, as its archive
// runs' metrics file says.
type Backlog struct {
	Archives int   `json:"archives"`
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// PrunePlan is what the next prune would do with the database.
type PrunePlan struct {
	Keep   int           `json:"keep"`
	Remove []PruneRemove `json:"remove"`
	Skip   int           `json:"skip"`
}

// PruneRemove is one archive the next prune would remove.
type PruneRemove struct {
	Archive string `json:"archive"`
	Why     string `json:"why"`
}

// WAL is one cluster's recovery window.
type WAL struct {
	Cluster  string     `json:"cluster"`
	OK       bool       `json:"ok"`
	From     *time.Time `json:"from,omitempty"`
	To       string     `json:"to,omitempty"`
	ToTime   *time.Time `json:"to_time,omitempty"`
	Problems []string   `json:"problems"`
}

// Build assembles the report. The verdict is status's (status.Judge), so
// the page's header and the report's exit status always agree with
// `pgarchive status` on the same catalog.
func Build(in Input) *Report {
	days := in.Days
	if days <= 0 {
		days = DefaultDays
	}
	now := in.Now.UTC()
	v := status.Judge(in.Status, walarchive.Problems(in.WAL))
	// Lists are [] rather than null in JSON: scripts iterate them.
	r := &Report{
		Generated: now, OK: v.OK, ExitStatus: v.ExitStatus(), Summary: v.Summary, Problems: nonNil(v.Problems),
		Days: days, Upstreams: nonNil(in.Catalog.Upstreams), Databases: []Database{}, WAL: []WAL{}, Notes: []string{},
	}
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	for d := range days {
		r.Dates = append(r.Dates, first.AddDate(0, 0, d).Format(time.DateOnly))
	}
	for _, db := range in.Status.Databases() {
		r.Databases = append(r.Databases, buildDatabase(in, db, first, days))
	}
	for _, w := range in.WAL {
		r.WAL = append(r.WAL, walOf(w))
	}
	if in.MetricsNote != "" {
		r.Notes = append(r.Notes, in.MetricsNote)
	}
	if in.Metrics != nil {
		for _, err := range in.Metrics.Errs {
			r.Notes = append(r.Notes, err.Error())
		}
	}
	if in.PruneNote != "" {
		r.Notes = append(r.Notes, in.PruneNote)
	}
	return r
}

func buildDatabase(in Input, db string, first time.Time, days int) Database {
	d := Database{Database: db, Kind: "dump", OK: true}
	if _, base := walname.ParseBaseDatabase(db); base {
		d.Kind = "base backup"
	}
	for _, e := range in.Status.Entries {
		if e.Database != db {
			continue
		}
		d.OK = d.OK && e.State == status.OK
		d.MaxAgeSeconds = int64(e.MaxAge / time.Second)
		d.Upstreams = append(d.Upstreams, Verdict{Upstream: e.Upstream, State: string(e.State), Detail: e.Detail(e.MaxAge), History: e.History})
	}
	var archives []*catalog.Archive // newest first, as the catalog keeps them
	for _, a := range in.Catalog.Archives {
		if a.Name.Database == db {
			archives = append(archives, a)
		}
	}
	for _, a := range archives {
		if a.Suspect() {
			d.Suspects = append(d.Suspects, Suspect{Archive: a.Name.Base(), Created: a.Name.Created, Why: a.Why()})
			continue
		}
		if !a.Usable() {
			continue
		}
		d.Archives++
		if d.Newest == nil {
			d.Newest = &Mark{Archive: a.Name.Base(), Created: a.Name.Created, State: "ok"}
			d.AgeSeconds = int64(in.Now.Sub(a.Name.Created) / time.Second)
		}
	}
	d.Timeline = timeline(in.Catalog, archives, first, days)
	d.MissingCopies = nonNil(missingRuns(in.Catalog, archives))
	d.Suspects = nonNil(d.Suspects)
	d.Sizes, d.Size = sizes(archives, first)
	d.Sizes = nonNil(d.Sizes)
	if in.Metrics != nil {
		if m, ok := in.Metrics.Drills[db]; ok {
			d.Drill = &Drill{LastRun: m.LastRun, Passed: m.OK, DurationSeconds: m.Duration.Seconds(), Checks: m.Checks, ChecksFailed: m.Failed}
			if !m.LastSuccess.IsZero() {
				d.Drill.LastSuccess = &m.LastSuccess
			}
		}
		if b, ok := in.Metrics.Backlog[db]; ok {
			d.Backlog = &Backlog{Archives: b.Archives, Bytes: b.Bytes, MaxBytes: b.MaxBytes}
		}
	}
	if in.Prune != nil {
		for _, p := range in.Prune.Databases {
			if p.Database == db {
				d.Prune = prunePlan(p)
			}
		}
	}
	return d
}
