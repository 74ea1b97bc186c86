// Package catalog finds the archives on every upstream of a remote and says,
// per upstream, whether each copy is complete. The assembly from listings is
// pure (this file); scan.go does the listing and manifest reads.
//
// Completeness follows docs/format.md: a copy is complete when its manifest
// is present and its data object has the manifest's ciphertext size. Times
// come from the names, never from storage ModTime.
package catalog

import (
	"path"
	"sort"
	"strings"

	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
)

// Object is one entry of an upstream's listing, relative to its root.
type Object struct {
	Key  string
	Size int64
	// Handle is the listed object, when there is one, so that reading a
	// manifest needs no second lookup (a HEAD on S3).
	Handle fs.Object
}

// State is what one upstream holds of one archive.
type State int

const (
	Complete    State = iota
	Missing           // neither data nor manifest
	Incomplete        // data without manifest: an upload that failed or is still running
	NoData            // manifest without data: deleted or half-pruned
	WrongSize         // data size differs from the manifest's
	BadManifest       // no copy of the manifest could be read and validated
	Unlisted          // the upstream could not be listed
)

func (s State) String() string {
	return [...]string{"ok", "missing", "incomplete", "no-data", "wrong-size", "bad-manifest", "unlisted"}[s]
}

// Copy holds the raw facts of one upstream's listing for one archive.
type Copy struct {
	HasData     bool
	DataSize    int64
	HasManifest bool
	manifest    fs.Object // as listed; nil in pure tests
}

// Archive is one archive across all upstreams.
type Archive struct {
	Name   naming.Name
	Key    string // data object key relative to each upstream's root
	Copies []Copy // one per upstream, in the catalog's upstream order
	// Manifest is the first copy of the manifest that parsed and matched the
	// name; nil when none did (ManifestErr says why) or none was read.
	Manifest    *manifest.Manifest
	ManifestErr error

	listed []bool // per upstream: was the upstream listed at all
}

// State judges copy i.
func (a *Archive) State(i int) State {
	c := a.Copies[i]
	switch {
	case !a.listed[i]:
		return Unlisted
	case !c.HasData && !c.HasManifest:
		return Missing
	case !c.HasManifest:
		return Incomplete
	case !c.HasData:
		return NoData
	case a.Manifest == nil:
		return BadManifest
	case c.DataSize != a.Manifest.Ciphertext.Size:
		return WrongSize
	}
	return Complete
}

// CompleteCopies lists the upstream indexes holding a complete copy.
func (a *Archive) CompleteCopies() []int {
	var out []int
	for i := range a.Copies {
		if a.State(i) == Complete {
			out = append(out, i)
		}
	}
	return out
}

// Healthy reports whether every upstream holds a complete copy.
func (a *Archive) Healthy() bool {
	return len(a.CompleteCopies()) == len(a.Copies)
}

// Catalog is every archive found under a prefix.
type Catalog struct {
	Upstreams []string // names, as rclone.conf spells them
	ListErrs  []error  // per upstream; nil when listed
	Archives  []*Archive
	Strays    int // objects that are neither archives nor manifests, ignored
}

// Assemble groups listings (one per upstream, nil with listErrs[i] set when
// the upstream could not be listed) into archives, newest first. Keys that
// do not follow the layout are counted as strays and otherwise ignored, so a
// foreign file in the bucket is never taken for an archive.
func Assemble(prefix string, upstreams []string, listings [][]Object, listErrs []error) *Catalog {
	c := &Catalog{Upstreams: upstreams, ListErrs: listErrs}
	byKey := map[string]*Archive{}
	get := func(key string, n naming.Name) *Archive {
		a := byKey[key]
		if a == nil {
			a = &Archive{Name: n, Key: key, Copies: make([]Copy, len(upstreams)), listed: make([]bool, len(upstreams))}
			for i := range upstreams {
				a.listed[i] = listErrs[i] == nil
			}
			byKey[key] = a
		}
		return a
	}
	for i, objs := range listings {
		for _, o := range objs {
			key, isManifest := strings.CutSuffix(o.Key, naming.ManifestSuffix)
			n, ok := parseKey(prefix, key)
			if !ok {
				c.Strays++
				continue
			}
			a := get(key, n)
			if isManifest {
				a.Copies[i].HasManifest, a.Copies[i].manifest = true, o.Handle
			} else {
				a.Copies[i].HasData, a.Copies[i].DataSize = true, o.Size
			}
		}
	}
	for _, a := range byKey {
		c.Archives = append(c.Archives, a)
	}
	sort.Slice(c.Archives, func(i, j int) bool {
		a, b := c.Archives[i], c.Archives[j]
		if !a.Name.Created.Equal(b.Name.Created) || a.Name.Seq != b.Name.Seq {
			return naming.Less(b.Name, a.Name)
		}
		// Same time in two databases: a stable, readable order.
		return a.Key < b.Key
	})
	return c
}

// parseKey accepts exactly [prefix/]<db>/<archive name of db>.
func parseKey(prefix, key string) (naming.Name, bool) {
	rel := key
	if prefix != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(key, prefix+"/"); !ok {
			return naming.Name{}, false
		}
	}
	dir, base := path.Split(rel)
	n, err := naming.Parse(base)
	if err != nil || dir != n.Database+"/" {
		return naming.Name{}, false
	}
	return n, true
}

// Databases lists the databases with at least one archive, sorted.
func (c *Catalog) Databases() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range c.Archives {
		if !seen[a.Name.Database] {
			seen[a.Name.Database] = true
			out = append(out, a.Name.Database)
		}
	}
	sort.Strings(out)
	return out
}

// Latest returns db's newest archive that has at least one complete copy,
// or nil. Newer archives without a complete copy are skipped: they are
// failed or running uploads, not restorable backups.
func (c *Catalog) Latest(db string) *Archive {
	for _, a := range c.Archives {
		if a.Name.Database == db && len(a.CompleteCopies()) > 0 {
			return a
		}
	}
	return nil
}

// Find returns the archive whose key or base name is ref, or nil.
func (c *Catalog) Find(ref string) *Archive {
	for _, a := range c.Archives {
		if a.Key == ref || a.Name.Base() == ref || a.Key+naming.ManifestSuffix == ref {
			return a
		}
	}
	return nil
}
