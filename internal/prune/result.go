package prune

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/retention"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// Result is what a prune did (or, dry, would do), per database and upstream;
// it renders as the --json output and carries the counts metrics need.
type Result struct {
	DryRun    bool       `json:"dry_run"`
	Now       time.Time  `json:"now"`
	Upstreams []string   `json:"upstreams"`
	Databases []Database `json:"databases"`
	// Uploads are the unfinished multipart uploads aborted (dry run: that
	// would be), each older than --abort-uploads-older-than.
	Uploads []Upload `json:"unfinished_uploads"`
}

// Database is one database's plan and outcome.
type Database struct {
	Database string    `json:"database"`
	Archives []Archive `json:"archives"` // keeps and removals newest first, then skipped ones
	Kept     int       `json:"kept"`
	Removed  int       `json:"removed"` // removed from every deletable upstream (dry run: planned)
	Failed   int       `json:"failed"`  // some deletion failed; the next prune tries again
	// ReadOnly counts archives the plan removes that only read-only union
	// members hold: nothing is deleted for them.
	ReadOnly int `json:"left_on_read_only"`
	// Skipped counts archives left out of the plan because their manifest
	// could not be read (Unjudged); their rows have action "skip".
	Skipped int `json:"skipped"`
	// Upstreams has one entry per upstream, in Result.Upstreams' order.
	Upstreams []UpstreamCount `json:"upstreams"`
	// Plan is the retention plan, for the dry run's table.
	Plan retention.Plan `json:"-"`
}

// Archive is one archive's decision and, for removals, what happened.
type Archive struct {
	Archive     string    `json:"archive"`
	Key         string    `json:"key"`
	Created     time.Time `json:"created"`
	Complete    bool      `json:"complete"`
	Action      string    `json:"action"` // "keep", "remove" or "skip"
	Reasons     []string  `json:"reasons"`
	RemovedFrom []string  `json:"removed_from,omitempty"` // upstreams its objects were deleted from
	LeftOn      []string  `json:"left_on,omitempty"`      // read-only upstreams still holding it
	Errors      []string  `json:"errors,omitempty"`
}

// UpstreamCount is one upstream's share of a database.
type UpstreamCount struct {
	Upstream string `json:"upstream"`
	// Kept counts kept archives with a complete copy on this upstream.
	Kept int `json:"kept"`
	// Removed counts archives whose objects here were all deleted (dry
	// run: would be).
	Removed int `json:"removed"`
	// Failed counts archives with a deletion here that failed.
	Failed int `json:"failed"`
}

// Totals sums over databases.
func (r *Result) Totals() (kept, removed, failed, readOnly, skipped int) {
	for _, d := range r.Databases {
		kept += d.Kept
		removed += d.Removed
		failed += d.Failed
		readOnly += d.ReadOnly
		skipped += d.Skipped
	}
	return kept, removed, failed, readOnly, skipped
}

// Summary is the one line logged at the end of a prune.
func (r *Result) Summary() string {
	kept, removed, failed, readOnly, skipped := r.Totals()
	dbs := textfmt.Plural(len(r.Databases), "database")
	ups := textfmt.Plural(len(r.Upstreams), "upstream")
	var ro string
	if readOnly > 0 {
		ro = fmt.Sprintf(", %d only on read-only upstreams (left alone)", readOnly)
	}
	if skipped > 0 {
		ro += fmt.Sprintf(", %d left alone (unreadable manifest, untrusted or future-dated)", skipped)
	}
	if n := len(r.Uploads); n > 0 {
		verb := "aborted"
		if r.DryRun {
			verb = "would abort"
		}
		ro += fmt.Sprintf(", %s %s", verb, textfmt.Plural(n, "unfinished upload"))
	}
	if r.DryRun {
		return fmt.Sprintf("prune --dry-run: %s on %s: would keep %s and remove %d%s; nothing deleted",
			dbs, ups, textfmt.Plural(kept, "archive"), removed, ro)
	}
	s := fmt.Sprintf("prune: %s on %s: kept %s, removed %d%s", dbs, ups, textfmt.Plural(kept, "archive"), removed, ro)
	if failed > 0 {
		s += fmt.Sprintf(", %d could not be removed completely (see above)", failed)
	}
	return s
}

// describe is the per-archive log line of a removal.
func (a Archive) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prune: removed %s (%s)", a.Archive, strings.Join(a.Reasons, ", "))
	if len(a.RemovedFrom) > 0 {
		fmt.Fprintf(&b, " from %s", strings.Join(a.RemovedFrom, ", "))
	}
	if len(a.LeftOn) > 0 {
		fmt.Fprintf(&b, "; read-only %s keeps its copy", strings.Join(a.LeftOn, ", "))
	}
	return b.String()
}
