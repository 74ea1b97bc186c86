package heal

import (
	"sort"

	"github.com/pgarchive/pgarchive/internal/catalog"
)

// Result sums a run up.
type Result struct {
	Archives   int // archives looked at
	Healthy    int // archives every writable upstream holds intact
	Healed     int // copies stored
	Planned    int // dry run: copies that would be healed
	Failed     int // copies that could not be healed
	BadSources int // copies found damaged while being read
	Untrusted  int // archives left alone: no trusted signature (never copied)
	// Databases says, per database (sorted by name) and upstream, what the
	// run left: what metrics and alerts need, which the totals above mix.
	Databases []Database
}

// Database is one database's outcome.
type Database struct {
	Database  string
	Upstreams []UpstreamCount // one per upstream, in Options.Upstreams' order
}

// UpstreamCount is one database's outcome on one upstream.
type UpstreamCount struct {
	Upstream string
	Writable bool
	// Listed is false when the upstream could not be listed: nothing is
	// known of its copies, and the counts below say nothing.
	Listed bool
	Healed int // copies stored there
	Failed int // copies there that needed healing and could not be healed
	// Complete counts archives with a complete copy there after the run
	// (dry run: as found), not counting copies known to be damaged.
	Complete int
}

// after is what a run left of one archive on one upstream.
type after struct{ complete, healed, failed bool }

// tally adds one archive's outcome (one per upstream) to its database.
func (r *Result) tally(a *catalog.Archive, opt Options, left []after) {
	var d *Database
	for i := range r.Databases {
		if r.Databases[i].Database == a.Name.Database {
			d = &r.Databases[i]
		}
	}
	if d == nil {
		r.Databases = append(r.Databases, Database{Database: a.Name.Database})
		d = &r.Databases[len(r.Databases)-1]
		for i, u := range opt.Upstreams {
			d.Upstreams = append(d.Upstreams, UpstreamCount{Upstream: u.Name, Writable: opt.Writable[u.Name],
				Listed: a.State(i) != catalog.Unlisted})
		}
	}
	for i, l := range left {
		u := &d.Upstreams[i]
		if l.complete {
			u.Complete++
		}
		if l.healed {
			u.Healed++
		}
		if l.failed {
			u.Failed++
		}
	}
}

func (r *Result) sortDatabases() {
	sort.Slice(r.Databases, func(i, j int) bool { return r.Databases[i].Database < r.Databases[j].Database })
}
