// Package retention decides which archives of one database a prune keeps.
// It is pure planning: no listing, no deleting, so the policy can be tested
// exhaustively and shown as a dry run before anything is removed.
//
// The keep rules follow restic's `forget`: --keep-last N keeps the N newest
// archives; --keep-hourly/daily/weekly/monthly/yearly N walk the archives
// newest first and keep the newest archive of each distinct hour, day, ISO
// week, month or year (in UTC, because archive names are UTC) until N such
// periods have been used; -1 means no limit. An archive is kept if any rule
// keeps it.
//
// Deliberate differences from restic:
//
//   - --keep-within counts back from now, not from the newest archive.
//     restic's choice protects old snapshots when backups have stopped; here
//     that job is done by the newest-complete rule below, and counting from
//     now makes "keep two days" mean what an operator reads.
//   - restic (since 0.17) also keeps the oldest snapshot while a bucket rule
//     has periods left over. That rule is not implemented: each bucket rule
//     keeps exactly what its description says, which keeps dry runs easy to
//     check by hand.
//   - Safety rules restic does not need: the newest complete archive is
//     always kept, whatever the policy, so a prune can never leave a database
//     without a restorable backup. Incomplete archives (no manifest, see
//     docs/format.md) are never what a rule keeps, because they cannot be
//     restored; they are removed when older than the newest complete archive
//     (failed uploads) and kept when newer (possibly still uploading).
//   - A policy with no keep rule is refused (ErrEmptyPolicy) instead of
//     planning to remove everything but the newest archive.
package retention

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Item is one archive of one database, as the caller found it.
type Item struct {
	ID       string    // what the caller deletes by, e.g. the data object key
	Time     time.Time // from the archive name; bucketed in UTC
	Seq      int       // orders archives within one second (docs/format.md)
	Complete bool      // has a complete copy, so it can be restored
}

// Policy holds the keep rules. Zero disables a rule; -1 makes a count rule
// unlimited.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       time.Duration
}

// Decision is one item with why it is kept or removed.
type Decision struct {
	Item
	Reasons []string
}

// Plan splits the items; both lists are newest first.
type Plan struct {
	Keep   []Decision
	Remove []Decision
}

// Reasons that are not a rule's own label, exported so callers and tests can
// recognise them.
const (
	ReasonNewestComplete = "newest complete archive"
	ReasonUploading      = "newer than the newest complete archive (maybe uploading)"
	ReasonNoPolicy       = "no policy keeps it"
	ReasonIncomplete     = "incomplete, older than the newest complete archive"
)

// ErrEmptyPolicy is returned for a policy without any keep rule: planning it
// would remove everything but the newest archive, which is never what an
// operator who forgot a flag meant.
var ErrEmptyPolicy = errors.New("retention: no keep rule given (need at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within)")

// Validate rejects counts below -1, a negative Within, and an empty policy.
func (p Policy) Validate() error {
	for _, c := range p.counts() {
		if c.n < -1 {
			return fmt.Errorf("retention: keep-%s %d: must be -1 (unlimited), 0 (off) or positive", c.name, c.n)
		}
	}
	if p.Within < 0 {
		return fmt.Errorf("retention: keep-within %s: must not be negative", p.Within)
	}
	if p == (Policy{}) {
		return ErrEmptyPolicy
	}
	return nil
}

type count struct {
	name string
	n    int
}

func (p Policy) counts() []count {
	return []count{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily},
		{"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}}
}

// bucket rules, in the order their reasons are listed.
type bucket struct {
	name  string
	left  int // periods still to use; -1 for unlimited
	label func(time.Time) string
	last  string
}

func (p Policy) buckets() []*bucket {
	return []*bucket{
		{name: "hourly", left: p.Hourly, label: func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{name: "daily", left: p.Daily, label: func(t time.Time) string { return t.Format("2006-01-02") }},
		{name: "weekly", left: p.Weekly, label: func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{name: "monthly", left: p.Monthly, label: func(t time.Time) string { return t.Format("2006-01") }},
		{name: "yearly", left: p.Yearly, label: func(t time.Time) string { return t.Format("2006") }},
	}
}

// Newer orders items newest first: by time, then sequence, then ID so that
// the plan does not depend on the caller's order even for odd inputs.
func Newer(a, b Item) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.ID > b.ID
}

// Plan decides every item. Items must have distinct IDs: the caller deletes
// by ID, so a duplicate could make it delete something the plan keeps.
func (p Policy) Plan(items []Item, now time.Time) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if seen[it.ID] {
			return Plan{}, fmt.Errorf("retention: archive %q listed twice", it.ID)
		}
		seen[it.ID] = true
	}
	sorted := append([]Item(nil), items...)
	sort.Slice(sorted, func(i, j int) bool { return Newer(sorted[i], sorted[j]) })

	newest := -1
	for i, it := range sorted {
		if it.Complete {
			newest = i
			break
		}
	}
	buckets := p.buckets()
	cutoff := now.Add(-p.Within)
	within := "within " + shortDuration(p.Within)
	var plan Plan
	rank := 0
	for i, it := range sorted {
		var why []string
		switch {
		case !it.Complete && (newest < 0 || i < newest):
			why = []string{ReasonUploading}
		case !it.Complete:
			plan.Remove = append(plan.Remove, Decision{it, []string{ReasonIncomplete}})
			continue
		default:
			rank++
			if p.Last == -1 || rank <= p.Last {
				why = append(why, fmt.Sprintf("last %d", rank))
			}
			utc := it.Time.UTC()
			for _, b := range buckets {
				if b.left == 0 {
					continue
				}
				if l := b.label(utc); l != b.last {
					b.last = l
					if b.left > 0 {
						b.left--
					}
					why = append(why, b.name+" "+l)
				}
			}
			if p.Within > 0 && it.Time.After(cutoff) {
				why = append(why, within)
			}
			if i == newest {
				why = append(why, ReasonNewestComplete)
			}
		}
		if len(why) == 0 {
			plan.Remove = append(plan.Remove, Decision{it, []string{ReasonNoPolicy}})
		} else {
			plan.Keep = append(plan.Keep, Decision{it, why})
		}
	}
	return plan, nil
}

// shortDuration drops the zero tails time.Duration prints ("48h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
