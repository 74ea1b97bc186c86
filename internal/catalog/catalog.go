// Package catalog finds the archives on every upstream of a remote and says,
// per upstream, whether each copy is complete. The assembly from listings is
// pure (this file); scan.go does the listing and manifest reads.
//
// Completeness follows docs/format.md: a copy is complete when its manifest
// is present and its data object has the manifest's ciphertext size. Times
// come from the names, never from storage ModTime.
package catalog

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/sign"
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
	Untrusted         // whole, but its manifest carries no valid signature by a trusted key
	Differs           // whole by its own manifest, which differs from the archive's (see Archive.Manifest)
)

func (s State) String() string {
	return [...]string{"ok", "missing", "incomplete", "no-data", "wrong-size", "bad-manifest", "unlisted", "untrusted", "differs"}[s]
}

// Trust is what a reader may believe of an archive's manifest.
type Trust int

const (
	// TrustUnchecked: no trusted signer is configured, so nothing was checked.
	TrustUnchecked Trust = iota
	// TrustSigned: a manifest copy carries a valid signature by a trusted
	// key; it is the archive's Manifest.
	TrustSigned
	// TrustUntrusted: trust is configured and no copy's manifest carries a
	// valid signature by a trusted key (missing, invalid, another key's, or
	// a format 1 manifest, which pins no data). Never restored, drilled,
	// counted, copied, or deleted unless asked.
	TrustUntrusted
)

func (t Trust) String() string { return [...]string{"unchecked", "trusted", "untrusted"}[t] }

// Policy is how a reader judges what the store says.
type Policy struct {
	Trusted *sign.Trusted // nil: authenticity is not checked
	Now     time.Time     // the reader's clock; zero: time.Now()
	// MaxSkew is how far ahead of Now an archive's name may be before the
	// archive is Future.
	MaxSkew time.Duration
}

// Copy holds the facts of one upstream's copy of one archive: what its
// listing showed, and its own manifest, judged on its own (one upstream's
// wrong manifest must never decide for the others).
type Copy struct {
	HasData     bool
	DataSize    int64
	HasManifest bool
	HasSig      bool // a signature object sits beside the manifest
	// Manifest and Body are this copy's own manifest, as parsed and as
	// stored; nil when it was not read (pure tests: the archive's stands
	// in) or could not be (Err says why).
	Manifest *manifest.Manifest
	Body     []byte
	Err      error
	// Sig is the signature read beside it; Trusted says it is valid and
	// by a trusted key (TrustErr says why not). Only read with trust.
	Sig      []byte
	Trusted  bool
	TrustErr error
	signer   string
	manifest fs.Object // as listed; nil in pure tests
	sig      fs.Object
}

// Archive is one archive across all upstreams.
type Archive struct {
	Name   naming.Name
	Key    string // data object key relative to each upstream's root
	Copies []Copy // one per upstream, in the catalog's upstream order
	// Manifest is the archive's manifest, chosen among the copies' own
	// (see reference): the trusted one where trust is checked, else the
	// one most copies hold whole. nil when no copy's parsed (ManifestErr
	// says why) or none was read.
	Manifest    *manifest.Manifest
	ManifestErr error
	// Body and Sig are Manifest's bytes exactly as stored, and its
	// signature (nil when none was read), so that heal can copy both
	// unchanged.
	Body, Sig []byte
	// Trust says whether Manifest is vouched for; TrustErr says why not,
	// per upstream, and Signer names the key that signed a trusted one.
	Trust    Trust
	TrustErr error
	Signer   string
	// Future is true when the archive's name is further ahead of the
	// reader's clock than the policy allows: a wrong clock or a forgery
	// meant to look like the newest backup forever.
	Future bool

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
	}
	own := c.Manifest
	if own == nil && c.Err == nil {
		own = a.Manifest // not read one by one (pure tests)
	}
	switch {
	case own == nil:
		return BadManifest
	case c.DataSize != own.Ciphertext.Size:
		return WrongSize
	case a.Trust == TrustUntrusted || (a.Trust == TrustSigned && c.Body != nil && !c.Trusted):
		return Untrusted
	case c.Body != nil && a.Body != nil && !bytes.Equal(c.Body, a.Body):
		return Differs
	}
	return Complete
}

// Own is copy i's own manifest, or the archive's where copies were not
// read one by one.
func (a *Archive) Own(i int) *manifest.Manifest {
	if m := a.Copies[i].Manifest; m != nil {
		return m
	}
	return a.Manifest
}

// Usable reports whether a may stand for its database's newest backup:
// some copy is complete (trusted, where trust is checked) and its name is
// not in the future.
func (a *Archive) Usable() bool {
	return !a.Future && len(a.CompleteCopies()) > 0
}

// Suspect reports whether a is untrusted or future-dated: what readers
// refuse to rely on and say so.
func (a *Archive) Suspect() bool { return a.Future || a.Trust == TrustUntrusted }

// Why says in a few words what makes a suspect archive suspect.
func (a *Archive) Why() string {
	var parts []string
	if a.Trust == TrustUntrusted {
		s := "UNTRUSTED"
		if a.TrustErr != nil {
			s += " (" + a.TrustErr.Error() + ")"
		}
		parts = append(parts, s)
	}
	if a.Future {
		parts = append(parts, "FUTURE (named "+a.Name.Created.Format(time.RFC3339)+", ahead of this host's clock)")
	}
	return strings.Join(parts, ", ")
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
	// Checked is true when a trusted signer was configured, so every
	// archive is Trusted or Untrusted.
	Checked bool
	// History marks, per upstream, the union members that take no new
	// archives (:ro and :nc): what they hold is reported, but nothing new
	// is expected there, and what only they hold is not expected
	// elsewhere. nil: every upstream takes new archives.
	History []bool
}

// IsHistory reports whether upstream i takes no new archives.
func (c *Catalog) IsHistory(i int) bool { return i < len(c.History) && c.History[i] }

// Expected reports whether copy i of a should be there: on an upstream that
// takes new archives, for an archive some such upstream holds whole (an
// archive only :ro or :nc members still hold is history, which prune
// removed everywhere else on purpose).
func (c *Catalog) Expected(a *Archive, i int) bool {
	if c.IsHistory(i) {
		return false
	}
	for j := range a.Copies {
		if !c.IsHistory(j) && a.State(j) != Missing && a.State(j) != Unlisted {
			return true
		}
	}
	return false
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
			key, isSig := strings.CutSuffix(o.Key, naming.SignatureSuffix)
			isManifest := false
			if !isSig {
				key, isManifest = strings.CutSuffix(key, naming.ManifestSuffix)
			}
			n, ok := parseKey(prefix, key)
			if !ok {
				c.Strays++
				continue
			}
			a := get(key, n)
			switch {
			case isSig:
				a.Copies[i].HasSig, a.Copies[i].sig = true, o.Handle
			case isManifest:
				a.Copies[i].HasManifest, a.Copies[i].manifest = true, o.Handle
			default:
				a.Copies[i].HasData, a.Copies[i].DataSize = true, o.Size
			}
		}
	}
	for _, a := range byKey {
		if !hasAny(a) && !hasData(a) {
			// Only a signature, left by a delete cut short: no archive.
			c.Strays++
			continue
		}
		c.Archives = append(c.Archives, a)
	}
	sort.Slice(c.Archives, func(i, j int) bool {
		a, b := c.Archives[i], c.Archives[j]
		if !naming.SameSlot(a.Name, b.Name) {
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

// Latest returns db's newest usable archive (see Usable), or nil. Newer
// archives without a complete copy are skipped: they are failed or running
// uploads, not restorable backups; so are untrusted and future-dated ones
// (SuspectNewer lists those).
func (c *Catalog) Latest(db string) *Archive {
	for _, a := range c.Archives {
		if a.Name.Database == db && a.Usable() {
			return a
		}
	}
	return nil
}

// SuspectNewer lists db's suspect archives (untrusted or future) that are
// newer than than, or all of db's suspect archives when than is nil.
func (c *Catalog) SuspectNewer(db string, than *Archive) []*Archive {
	var out []*Archive
	for _, a := range c.Archives { // newest first
		if than != nil && a == than {
			break
		}
		if a.Name.Database == db && a.Suspect() && hasAny(a) {
			out = append(out, a)
		}
	}
	return out
}

func hasData(a *Archive) bool {
	for _, c := range a.Copies {
		if c.HasData {
			return true
		}
	}
	return false
}

// hasAny reports whether any upstream holds a manifest of a.
func hasAny(a *Archive) bool {
	for _, c := range a.Copies {
		if c.HasManifest {
			return true
		}
	}
	return false
}

// Judge applies the clock half of a policy (Future); the signature half is
// judged while manifests are read (see ReadManifests).
func (c *Catalog) Judge(pol Policy) {
	now := pol.Now
	if now.IsZero() {
		now = time.Now()
	}
	limit := now.Add(pol.MaxSkew)
	for _, a := range c.Archives {
		a.Future = a.Name.Created.After(limit)
	}
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

// ListFailures names each upstream that could not be listed, with why, as
// "upstream: error". Its absence makes every listing incomplete.
func (c *Catalog) ListFailures() []string {
	var bad []string
	for i, err := range c.ListErrs {
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", c.Upstreams[i], err))
		}
	}
	return bad
}
