// Package prune applies retention plans (internal/retention) to every
// upstream of a remote: for each archive a plan removes, it deletes the
// manifest on every upstream before any data object, so that a prune cut
// short never leaves a copy that looks complete but is not.
//
// Deciding what to delete, and in which order, is pure (this file) and unit
// tested; prune.go does the I/O: a delete probe on every upstream it will
// touch, then the deletions.
package prune

import (
	"sort"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/retention"
)

// Items turns one database's archives into the planner's input. The time
// comes from the name (never storage ModTime); an archive counts as
// complete when any upstream holds a complete copy, because that copy alone
// can restore it.
func Items(archives []*catalog.Archive) []retention.Item {
	items := make([]retention.Item, 0, len(archives))
	for _, a := range archives {
		items = append(items, retention.Item{
			ID:       a.Key,
			Time:     a.Name.Created,
			Seq:      a.Name.Seq,
			Complete: len(a.CompleteCopies()) > 0,
		})
	}
	return items
}

// Unjudged splits off the archives whose manifest is there but could not be
// read or did not match its name. Planning them as incomplete would delete
// a restorable archive after a failed GET; planning them as complete would
// let an unreadable one stand in for the newest restorable archive. So they
// are left out of the plan and never deleted; verify reports them.
func Unjudged(archives []*catalog.Archive) (judged, unjudged []*catalog.Archive) {
	for _, a := range archives {
		listed := false
		for _, c := range a.Copies {
			listed = listed || c.HasManifest
		}
		if listed && a.Manifest == nil {
			unjudged = append(unjudged, a)
		} else {
			judged = append(judged, a)
		}
	}
	return judged, unjudged
}

// Target is one object to delete on one upstream.
type Target struct {
	Upstream int // index into the catalog's upstreams
	Key      string
}

// Removal is how one archive the plan removes gets deleted: first every
// manifest, then the data objects.
type Removal struct {
	Archive   *catalog.Archive
	Reasons   []string
	Manifests []Target
	Data      []Target
	// LeftOn lists upstreams that hold objects of the archive but may not
	// be deleted from (read-only union members): their copies stay.
	LeftOn []int
}

// Removals lists the deletions for plan.Remove, in the plan's order (newest
// first). Only objects the listing showed are targeted; deletable says per
// upstream whether prune may delete there.
func Removals(plan retention.Plan, archives []*catalog.Archive, deletable []bool) []Removal {
	byKey := make(map[string]*catalog.Archive, len(archives))
	for _, a := range archives {
		byKey[a.Key] = a
	}
	var out []Removal
	for _, d := range plan.Remove {
		a := byKey[d.ID]
		if a == nil {
			continue // the plan was made from these archives; nothing else can be deleted
		}
		r := Removal{Archive: a, Reasons: d.Reasons}
		for i, c := range a.Copies {
			if !c.HasManifest && !c.HasData && !c.HasSig {
				continue
			}
			if i >= len(deletable) || !deletable[i] {
				r.LeftOn = append(r.LeftOn, i)
				continue
			}
			if c.HasManifest {
				r.Manifests = append(r.Manifests, Target{i, a.Key + naming.ManifestSuffix})
			}
			if c.HasData {
				r.Data = append(r.Data, Target{i, a.Key})
			}
			if c.HasSig {
				// With the data: a signature outlives its manifest only
				// until the manifest's deletion is known to have worked.
				r.Data = append(r.Data, Target{i, a.Key + naming.SignatureSuffix})
			}
		}
		out = append(out, r)
	}
	return out
}

// DataAfter returns the data objects to delete once the manifest deletions
// have run: none on an upstream whose manifest could not be deleted, so
// that its copy stays complete rather than becoming a manifest without data.
func (r Removal) DataAfter(manifestFailed map[int]bool) []Target {
	var out []Target
	for _, t := range r.Data {
		if !manifestFailed[t.Upstream] {
			out = append(out, t)
		}
	}
	return out
}

// Touched lists, sorted, the upstreams any of the removals deletes on: the
// ones that must accept deletes before anything is deleted anywhere.
func Touched(rs []Removal) []int {
	seen := map[int]bool{}
	var out []int
	for _, r := range rs {
		for _, ts := range [][]Target{r.Manifests, r.Data} {
			for _, t := range ts {
				if !seen[t.Upstream] {
					seen[t.Upstream] = true
					out = append(out, t.Upstream)
				}
			}
		}
	}
	sort.Ints(out)
	return out
}

// KeptCopies counts, per upstream, the kept archives with a complete copy
// there: what the upstream holds for this database once the prune is done.
func KeptCopies(plan retention.Plan, archives []*catalog.Archive, upstreams int) []int {
	byKey := make(map[string]*catalog.Archive, len(archives))
	for _, a := range archives {
		byKey[a.Key] = a
	}
	out := make([]int, upstreams)
	for _, d := range plan.Keep {
		if a := byKey[d.ID]; a != nil {
			for _, i := range a.CompleteCopies() {
				out[i]++
			}
		}
	}
	return out
}

// OfDatabase picks db's archives from a catalog, keeping its order.
func OfDatabase(cat *catalog.Catalog, db string) []*catalog.Archive {
	var out []*catalog.Archive
	for _, a := range cat.Archives {
		if a.Name.Database == db {
			out = append(out, a)
		}
	}
	return out
}

// Suspects splits off the archives no retention rule may judge: untrusted
// ones (no valid signature by a trusted key) and future-dated ones. Counted
// toward a keep rule, a forgery named in the future would stand in for the
// newest backup and let every genuine one be deleted; so they are planned
// apart (judgeSuspects), never by the policy.
func Suspects(archives []*catalog.Archive) (judged, suspects []*catalog.Archive) {
	for _, a := range archives {
		if a.Suspect() {
			suspects = append(suspects, a)
		} else {
			judged = append(judged, a)
		}
	}
	return judged, suspects
}

// judgeSuspects says what happens to each suspect archive: skipped (listed,
// never deleted), or removed when removeUntrusted asks for untrusted ones.
// A future-dated archive is never deleted: it may be genuine, with the
// clock wrong on this host or the one that wrote it.
func judgeSuspects(suspects []*catalog.Archive, removeUntrusted bool) (skipped []Archive, remove []retention.Decision) {
	for _, a := range suspects {
		why := a.Why()
		if removeUntrusted && a.Trust == catalog.TrustUntrusted && !a.Future {
			remove = append(remove, retention.Decision{
				Item:    retention.Item{ID: a.Key, Time: a.Name.Created, Seq: a.Name.Seq},
				Reasons: []string{"--remove-untrusted: " + why}})
			continue
		}
		hint := "never counted, never deleted"
		if a.Trust == catalog.TrustUntrusted && !a.Future {
			hint += " (--remove-untrusted deletes it)"
		}
		skipped = append(skipped, Archive{Archive: a.Name.Base(), Key: a.Key, Created: a.Name.Created,
			Action: "skip", Reasons: []string{why + ": " + hint}})
	}
	return skipped, remove
}
