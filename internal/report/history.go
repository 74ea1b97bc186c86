package report

import (
	"slices"
	"sort"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/walarchive"
)

// The pieces of a database's panel made from its archives (newest first,
// as the catalog keeps them), and the panel's other parts.

// markState is copy i's state in words; copies a read-only member was
// never expected to hold are not missing.
func markState(c *catalog.Catalog, a *catalog.Archive, i int) string {
	st := a.State(i)
	switch {
	case a.Future && st != catalog.Missing && st != catalog.Unlisted:
		return "future"
	case st == catalog.Missing && !c.Expected(a, i):
		return "not-expected"
	}
	return st.String()
}

func timeline(c *catalog.Catalog, archives []*catalog.Archive, first time.Time, days int) []Row {
	rows := make([]Row, len(c.Upstreams))
	for i, up := range c.Upstreams {
		rows[i] = Row{Upstream: up, Cells: make([][]Mark, days)}
		for d := range rows[i].Cells {
			rows[i].Cells[d] = []Mark{}
		}
	}
	for k := len(archives) - 1; k >= 0; k-- { // oldest first within a day
		a := archives[k]
		day := int(a.Name.Created.UTC().Sub(first) / (24 * time.Hour))
		if a.Name.Created.Before(first) || day >= days {
			continue // outside the window (a future-dated name beyond today is listed as a suspect)
		}
		for i := range c.Upstreams {
			rows[i].Cells[day] = append(rows[i].Cells[day], Mark{Archive: a.Name.Base(), Created: a.Name.Created, State: markState(c, a, i)})
		}
	}
	return rows
}

// missingRuns finds, per upstream, the stretches of consecutive archives
// that some upstream holds whole and this one lacks entirely (where it is
// expected to hold them).
func missingRuns(c *catalog.Catalog, archives []*catalog.Archive) []MissingRun {
	var out []MissingRun
	for i, up := range c.Upstreams {
		var run *MissingRun
		flush := func() {
			if run != nil {
				out = append(out, *run)
				run = nil
			}
		}
		for _, a := range archives { // newest first
			missing := a.State(i) == catalog.Missing && c.Expected(a, i) && len(a.CompleteCopies()) > 0
			if !missing {
				flush()
				continue
			}
			if run == nil {
				run = &MissingRun{Upstream: up, To: a.Name.Created, Last: a.Name.Base()}
			}
			run.From, run.First = a.Name.Created, a.Name.Base()
			run.Archives++
		}
		flush()
	}
	return out
}

// sizes lists the dump sizes of usable archives since first (oldest first)
// and compares the newest with the median of the week before it.
func sizes(archives []*catalog.Archive, first time.Time) ([]SizePoint, *SizeTrend) {
	var pts []SizePoint
	var newest *catalog.Archive
	var week []int64
	for _, a := range archives { // newest first
		if !a.Usable() || a.Manifest == nil {
			continue
		}
		switch {
		case newest == nil:
			newest = a
		case newest.Name.Created.Sub(a.Name.Created) <= 7*24*time.Hour:
			week = append(week, a.Manifest.Dump.Size)
		}
		if !a.Name.Created.Before(first) {
			pts = append(pts, SizePoint{Created: a.Name.Created, Bytes: a.Manifest.Dump.Size})
		}
	}
	slices.Reverse(pts)
	if newest == nil {
		return pts, nil
	}
	t := &SizeTrend{Newest: newest.Manifest.Dump.Size, Median: median(week)}
	if t.Median > 0 {
		ch := float64(t.Newest-t.Median) / float64(t.Median)
		t.Change, t.Drop = &ch, ch < -DropWarning
	}
	return pts, t
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func median(vs []int64) int64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func prunePlan(p prune.Database) *PrunePlan {
	pp := &PrunePlan{Keep: p.Kept, Skip: p.Skipped, Remove: []PruneRemove{}}
	for _, a := range p.Archives {
		if a.Action == "remove" {
			why := "no rule keeps it"
			if len(a.Reasons) > 0 {
				why = a.Reasons[0]
			}
			pp.Remove = append(pp.Remove, PruneRemove{Archive: a.Archive, Why: why})
		}
	}
	return pp
}

func walOf(w walarchive.Window) WAL {
	out := WAL{Cluster: w.Cluster.String(), OK: w.OK(), To: w.To, Problems: w.Problems}
	if !w.From.IsZero() {
		out.From = &w.From
	}
	if !w.ToTime.IsZero() {
		out.ToTime = &w.ToTime
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	return out
}
