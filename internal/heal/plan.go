// Package heal copies archives to the upstreams that lack a good copy, from
// an upstream whose copy checks out. Only ciphertext moves: no key is needed,
// and a copy gets its manifest only once its SHA-256 matched the manifest on
// the way through and the target verified it (archive.Deliver).
//
// The choice of targets and sources (this file) is pure; heal.go does the
// reading and writing.
package heal

import "github.com/pgarchive/pgarchive/internal/catalog"

// Hash is what the backend's own hash said about a complete copy.
type Hash int

const (
	HashUnchecked Hash = iota // not compared: none recorded, none offered, or a quick run
	HashOK                    // matches the manifest
	HashBad                   // differs: the stored bytes are not the archive's
)

// Copy is what is known of one upstream's copy before healing.
type Copy struct {
	State    catalog.State
	Hash     Hash
	Writable bool // not a :ro or :nc union member
	ReadOnly bool // a :ro member: prune never deletes there
}

// Why a copy needs healing, for messages.
func (c Copy) Why() string {
	if c.State == catalog.Complete && c.Hash == HashBad {
		return "damaged: its backend hash differs from the manifest"
	}
	return c.State.String()
}

// Plan picks the copies to heal (targets) and the copies to heal them from
// (sources, best first). A target is a writable upstream whose copy is not
// complete (a damaged, unreadable or disagreeing manifest included) or
// whose backend hash contradicts the manifest; unlisted
// upstreams are left alone, since nothing is known about them. Sources are
// complete copies not known to be bad, those whose hash was confirmed first.
// An archive without any source has nothing to heal from.
//
// An archive that only read-only members still hold completely is not
// copied to upstreams that hold nothing of it: prune removed it everywhere
// it could, and bringing it back would undo every prune, night after night.
func Plan(copies []Copy) (targets, sources []int) {
	var unchecked []int
	onlyReadOnly := true
	for i, c := range copies {
		switch {
		case c.State == catalog.Complete && c.Hash == HashOK:
			sources = append(sources, i)
		case c.State == catalog.Complete && c.Hash == HashUnchecked:
			unchecked = append(unchecked, i)
		default:
			continue
		}
		onlyReadOnly = onlyReadOnly && c.ReadOnly
	}
	sources = append(sources, unchecked...)
	if len(sources) == 0 {
		return nil, nil
	}
	for i, c := range copies {
		if !c.Writable {
			continue
		}
		switch c.State {
		case catalog.Missing:
			if !onlyReadOnly {
				targets = append(targets, i)
			}
		case catalog.Incomplete, catalog.NoData, catalog.WrongSize,
			// Its own manifest is unreadable, differs from the archive's,
			// or lacks the trusted signature the archive's has: replaced
			// from a good copy, with the data it must describe.
			catalog.BadManifest, catalog.Differs, catalog.Untrusted:
			targets = append(targets, i)
		case catalog.Complete:
			if c.Hash == HashBad {
				targets = append(targets, i)
			}
		}
	}
	return targets, sources
}
