package walarchive

import (
	"fmt"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Window is how far back and forward a cluster can be recovered to from
// what the store holds: from the end of the oldest base backup whose WAL
// is archived, to the end of the unbroken WAL after the newest one.
type Window struct {
	Cluster walname.Cluster
	// From is the earliest recovery target: the oldest usable base
	// backup's end; zero without one.
	From       time.Time
	FromBackup string
	// To is the last segment recovery can reach without a gap from the
	// newest base backup, and ToTime when it was archived (the listing's
	// time) if it is the newest segment of all.
	To     string
	ToTime time.Time
	// Bases are the usable base backups, newest first, with the WAL each
	// needs to become consistent and the upstreams that lack part of it.
	Bases []BaseCoverage
	// Problems say what cuts the window short or leaves none.
	Problems []string
}

// BaseCoverage is one base backup's own WAL range.
type BaseCoverage struct {
	Key         string
	Timeline    uint32
	First, Last string   // the segments from its start to its stop position
	MissingOn   []string // upstreams that lack part of the range
}

// OK reports a window with nothing wrong.
func (w Window) OK() bool { return len(w.Problems) == 0 }

// Problems lists every window's problems, each named with its cluster:
// what status and the report count against the verdict.
func Problems(windows []Window) []string {
	var out []string
	for _, w := range windows {
		for _, p := range w.Problems {
			out = append(out, fmt.Sprintf("WAL of %s: %s", w.Cluster, p))
		}
	}
	return out
}

// RecoveryWindow judges inv against the cluster's base backups (newest
// first, as the catalog orders them; untrusted and future ones are
// skipped).
func RecoveryWindow(inv *Inventory, cat *catalog.Catalog) Window {
	w := Window{Cluster: inv.Cluster}
	db := inv.Cluster.BaseDatabase()
	var usable []*catalog.Archive
	for _, a := range cat.Archives {
		if a.Name.Database == db && a.Usable() && !a.Suspect() && a.Manifest != nil && a.Manifest.Base != nil {
			usable = append(usable, a)
		}
	}
	if len(usable) == 0 {
		w.Problems = append(w.Problems, fmt.Sprintf("WAL of %s is archived, but there is no usable base backup to replay it onto (pgarchive basebackup)", inv.Cluster))
		return w
	}
	for _, a := range usable {
		w.Bases = append(w.Bases, coverage(inv, a))
	}
	for i := len(usable) - 1; i >= 0; i-- { // oldest first
		if _, ok := reach(inv, usable[i]); ok {
			w.From, w.FromBackup = usable[i].Manifest.Base.Stopped, usable[i].Key
			break
		}
	}
	newest := usable[0]
	end, ok := reach(inv, newest)
	if !ok {
		b := newest.Manifest.Base
		w.Problems = append(w.Problems, fmt.Sprintf("the newest base backup %s needs WAL %s to %s on timeline %d, which is not all archived",
			newest.Key, b.StartLSN, b.StopLSN, b.Timeline))
		return w
	}
	w.To = walname.SegmentName(end.Timeline, end.Last, inv.SegSize)
	if w.To == inv.Newest {
		w.ToTime = inv.NewestTime
	}
	for _, g := range inv.Union.Gaps {
		if g.Timeline == end.Timeline && g.First > end.Last {
			w.Problems = append(w.Problems, fmt.Sprintf("WAL gap %s on every upstream: recovery stops at %s", g.Format(inv.SegSize), w.To))
			break
		}
	}
	return w
}

// coverage says which upstreams hold all of a's own WAL range.
func coverage(inv *Inventory, a *catalog.Archive) BaseCoverage {
	b := a.Manifest.Base
	c := BaseCoverage{Key: a.Key, Timeline: b.Timeline}
	start, stop, err := b.Range()
	if err != nil {
		return c
	}
	first, last := start.SegNo(inv.SegSize), stop.SegNo(inv.SegSize)
	c.First, c.Last = walname.SegmentName(b.Timeline, first, inv.SegSize), walname.SegmentName(b.Timeline, last, inv.SegSize)
	for _, u := range inv.Upstreams {
		held := false
		for _, r := range u.Runs {
			held = held || r.Timeline == b.Timeline && r.First <= first && last <= r.Last
		}
		if !held {
			c.MissingOn = append(c.MissingOn, u.Name)
		}
	}
	return c
}

// reach finds the run of archived segments (on any upstream) that holds
// base backup a's whole WAL range; ok is false when part of it is missing.
func reach(inv *Inventory, a *catalog.Archive) (walname.Range, bool) {
	b := a.Manifest.Base
	start, stop, err := b.Range()
	if err != nil {
		return walname.Range{}, false
	}
	first, last := start.SegNo(inv.SegSize), stop.SegNo(inv.SegSize)
	for _, r := range inv.Union.Runs {
		if r.Timeline == b.Timeline && r.First <= first && last <= r.Last {
			return r, true
		}
	}
	return walname.Range{}, false
}
