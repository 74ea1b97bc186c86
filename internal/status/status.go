// Package status judges, per database and upstream, whether a recent
// complete archive is there: the monitoring check behind `pgarchive
// status`. It is pure: a catalog and a clock in, a report out.
//
// Ages come from archive names (the time the archive was made), never from
// storage timestamps, which S3 can fake and copies reset.
package status

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// State is the verdict for one database on one upstream.
type State string

const (
	OK       State = "OK"       // a complete archive no older than the limit
	Stale    State = "STALE"    // complete archives, but the newest is too old
	Missing  State = "MISSING"  // no complete archive of the database there at all
	Unlisted State = "UNLISTED" // the upstream could not be listed: nothing is known
	// Untrusted: an archive there carries no valid signature by a trusted
	// key. Whatever else holds, someone may be planting backups.
	Untrusted State = "UNTRUSTED"
	// Future: an archive there is named ahead of this host's clock (by more
	// than the allowed skew): a wrong clock, or a forgery meant to silence
	// freshness checks.
	Future State = "FUTURE"
)

// Entry is one database on one upstream.
type Entry struct {
	Database string
	Upstream string
	State    State
	// Newest is the newest archive with a complete copy on this upstream;
	// nil when there is none (or the upstream is unlisted).
	Newest *catalog.Archive
	Age    time.Duration // Now minus Newest's creation time; negative if it is from the future
	// Archives counts the database's complete archives on this upstream
	// (trusted, where trust is checked, and not future-dated).
	Archives int
	Err      error // why the upstream could not be listed
	// Suspects are the untrusted and future-dated archives there.
	Suspects []*catalog.Archive
	// History is true for a union member that takes no new archives (:ro,
	// :nc): its entry reports what it holds and is OK unless an archive
	// there is untrusted or future-dated.
	History bool
	// MaxAge is the limit this entry was judged by (0: none); reports of
	// dumps and base backups merged into one keep their own limits.
	MaxAge time.Duration
}

// Report is one check of every database on every upstream.
type Report struct {
	Now     time.Time
	MaxAge  time.Duration // 0: age is not judged
	Entries []Entry       // by database, then in the catalog's upstream order
}

// Check judges each database on each upstream of c. databases are the ones
// expected (a name without any archive is MISSING everywhere); when empty,
// every database found in c is checked. maxAge 0 turns the age limit off.
func Check(c *catalog.Catalog, databases []string, now time.Time, maxAge time.Duration) Report {
	dbs := databases
	if len(dbs) == 0 {
		dbs = c.Databases()
	}
	dbs = slices.Clone(dbs)
	sort.Strings(dbs)
	dbs = slices.Compact(dbs)

	r := Report{Now: now, MaxAge: maxAge}
	for _, db := range dbs {
		for i, up := range c.Upstreams {
			e := Entry{Database: db, Upstream: up, MaxAge: maxAge}
			if i < len(c.ListErrs) && c.ListErrs[i] != nil {
				e.State, e.Err = Unlisted, c.ListErrs[i]
				r.Entries = append(r.Entries, e)
				continue
			}
			untrusted, future := false, false
			for _, a := range c.Archives { // newest first
				if a.Name.Database != db {
					continue
				}
				st := a.State(i)
				if a.Suspect() && (st == catalog.Complete || st == catalog.Untrusted) {
					e.Suspects = append(e.Suspects, a)
					untrusted = untrusted || st == catalog.Untrusted
					future = future || a.Future
					continue
				}
				if st != catalog.Complete {
					continue
				}
				e.Archives++
				if e.Newest == nil {
					e.Newest = a
				}
			}
			if e.Newest != nil {
				e.Age = now.Sub(e.Newest.Name.Created)
			}
			switch {
			case untrusted:
				e.State = Untrusted
			case future:
				e.State = Future
			case c.IsHistory(i):
				// :ro and :nc members take no new archives: what they hold
				// is reported, never judged stale or missing.
				e.State, e.History = OK, true
			case e.Newest == nil:
				e.State = Missing
			default:
				e.State = OK
				if maxAge > 0 && e.Age > maxAge {
					e.State = Stale
				}
			}
			r.Entries = append(r.Entries, e)
		}
	}
	return r
}

// OK reports whether every entry is OK. A report without entries (no
// database archived and none named) is not OK: a check that sees nothing
// must not pass.
func (r Report) OK() bool {
	if len(r.Entries) == 0 {
		return false
	}
	for _, e := range r.Entries {
		if e.State != OK {
			return false
		}
	}
	return true
}

// Counts tallies the entries by state.
func (r Report) Counts() map[State]int {
	n := map[State]int{}
	for _, e := range r.Entries {
		n[e.State]++
	}
	return n
}

// Databases lists the databases checked, sorted.
func (r Report) Databases() []string {
	var out []string
	for _, e := range r.Entries {
		if len(out) == 0 || out[len(out)-1] != e.Database {
			out = append(out, e.Database)
		}
	}
	return out
}

// Summary is one line for a monitoring system's status text, e.g.
// "OK: 2 databases on 3 upstreams, newest archives within 26h0m0s" or
// "STALE: 1 stale, 1 missing of 6 (db1 on minio-b: 30h12m old; ...)".
// It names the worst state first, as Nagios-style checks put it.
func (r Report) Summary() string {
	dbs := len(r.Databases())
	ups := 0
	if dbs > 0 {
		ups = len(r.Entries) / dbs
	}
	if len(r.Entries) == 0 {
		return "MISSING: no archives found and no --database named"
	}
	if r.OK() {
		s := fmt.Sprintf("OK: %s on %s", textfmt.Plural(dbs, "database"), textfmt.Plural(ups, "upstream"))
		if r.MaxAge > 0 {
			s += ", newest archives within " + HumanAge(r.MaxAge)
		}
		return s
	}
	n := r.Counts()
	worst := OK
	var parts []string
	for _, st := range []State{Untrusted, Future, Missing, Unlisted, Stale} {
		if n[st] > 0 {
			if worst == OK {
				worst = st
			}
			parts = append(parts, fmt.Sprintf("%d %s", n[st], strings.ToLower(string(st))))
		}
	}
	var bad []string
	for _, e := range r.Entries {
		if e.State != OK {
			bad = append(bad, e.Database+" on "+e.Upstream+": "+e.Detail(e.MaxAge))
		}
	}
	const maxNamed = 5
	if len(bad) > maxNamed {
		bad = append(bad[:maxNamed], fmt.Sprintf("%d more", len(bad)-maxNamed))
	}
	return fmt.Sprintf("%s: %s of %d (%s)", worst, strings.Join(parts, ", "), len(r.Entries), strings.Join(bad, "; "))
}

// Detail says in a few words why an entry has its state.
func (e Entry) Detail(maxAge time.Duration) string {
	switch e.State {
	case Unlisted:
		return fmt.Sprintf("could not list: %v", e.Err)
	case Missing:
		return "no complete archive"
	case Stale:
		return fmt.Sprintf("newest is %s old, over %s", HumanAge(e.Age), HumanAge(maxAge))
	case OK:
		if e.History {
			if e.Newest == nil {
				return "read-only member (takes no new archives), holds none"
			}
			return fmt.Sprintf("read-only member (takes no new archives), newest %s old", HumanAge(e.Age))
		}
	case Untrusted, Future:
		// A few by name: a store flooded with forgeries must not turn the
		// check's one line into megabytes (list names them all).
		const named = 3
		var names []string
		for i, a := range e.Suspects {
			if i == named {
				names = append(names, fmt.Sprintf("and %d more (pgarchive list)", len(e.Suspects)-named))
				break
			}
			names = append(names, a.Name.Base()+" "+a.Why())
		}
		return strings.Join(names, "; ")
	}
	return HumanAge(e.Age) + " old"
}

// HumanAge renders a duration in its two largest units: 45s, 12m5s, 3h12m,
// 2d4h. Negative ages (an archive named in the future: a skewed clock)
// get a minus sign.
func HumanAge(d time.Duration) string {
	if d < 0 {
		return "-" + HumanAge(-d)
	}
	s := int64(d / time.Second)
	const day = 24 * 3600
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return twoUnits(s/60, "m", s%60, "s")
	case s < day:
		return twoUnits(s/3600, "h", s%3600/60, "m")
	}
	return twoUnits(s/day, "d", s%day/3600, "h")
}

func twoUnits(a int64, ua string, b int64, ub string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, ua)
	}
	return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
}

// Verdict is the overall judgement status gives (its first line and exit
// status) and the report's header repeats: the archives' report and the
// WAL recovery windows' problems together.
type Verdict struct {
	OK       bool
	Summary  string   // one line, the worst first
	Problems []string // each entry that is not OK, then each WAL problem, in words
}

// Judge combines a report with the WAL problems found (each prefixed with
// its cluster by the caller).
func Judge(r Report, walProblems []string) Verdict {
	v := Verdict{OK: r.OK() && len(walProblems) == 0, Summary: r.Summary()}
	for _, e := range r.Entries {
		if e.State != OK {
			v.Problems = append(v.Problems, fmt.Sprintf("%s on %s is %s: %s", e.Database, e.Upstream, e.State, e.Detail(e.MaxAge)))
		}
	}
	v.Problems = append(v.Problems, walProblems...)
	if r.OK() && len(walProblems) > 0 {
		v.Summary = "WAL: " + textfmt.Plural(len(walProblems), "problem") + " with the recovery window: " + walProblems[0]
	}
	return v
}

// ExitStatus is status's exit status for the verdict: 0 OK, 1 not.
func (v Verdict) ExitStatus() int {
	if v.OK {
		return 0
	}
	return 1
}
