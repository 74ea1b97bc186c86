package heal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/verify"
)

// Options say what to heal and how.
type Options struct {
	// Upstreams are every upstream of the remote, in the catalog's order
	// (read-only members too: they can be sources).
	Upstreams []*remote.Upstream
	// Writable names the upstreams that may be written to.
	Writable map[string]bool
	// Quick trusts the listing: complete copies are not asked for their
	// backend hash, which local and SFTP upstreams compute by reading the
	// whole object. Damaged sources are still never copied: every byte
	// that moves is checked against the manifest's SHA-256.
	Quick  bool
	DryRun bool
	Log    *slog.Logger
}

// Run heals archives (from the catalog over opt.Upstreams). Every copy
// healed or not is logged naming the archive, the upstream and the source.
func Run(ctx context.Context, archives []*catalog.Archive, opt Options) *Result {
	res := &Result{}
	for _, a := range archives {
		if ctx.Err() != nil {
			break
		}
		res.Archives++
		res.tally(a, opt, healArchive(ctx, a, opt, res))
	}
	res.sortDatabases()
	return res
}

// healArchive heals a's copies and says what it left on each upstream.
func healArchive(ctx context.Context, a *catalog.Archive, opt Options, res *Result) []after {
	log := opt.Log.With("archive", a.Key, "database", a.Name.Database)
	left := make([]after, len(a.Copies))
	if a.Trust == catalog.TrustUntrusted {
		// Copying it would spread what may be a forgery to every upstream.
		res.Untrusted++
		log.Warn(fmt.Sprintf("heal: %s is %s: never copied", a.Key, a.Why()))
		return left
	}
	if len(a.CompleteCopies()) == 0 {
		if hasManifest(a) {
			res.Failed++
			why := "no copy's data matches its manifest"
			if a.ManifestErr != nil {
				why = a.ManifestErr.Error()
			}
			log.Error(fmt.Sprintf("heal: %s has no complete copy on any upstream (%s); nothing to heal from", a.Key, why))
			// Every writable upstream lacks it and got nothing.
			for i, u := range opt.Upstreams {
				left[i].failed = opt.Writable[u.Name] && a.State(i) != catalog.Unlisted
			}
		} else {
			// Data without a manifest everywhere: an upload that failed
			// everywhere, or one still running. Not an archive yet.
			log.Debug(fmt.Sprintf("heal: %s has no manifest anywhere; left alone", a.Key))
		}
		return left
	}
	copies := make([]Copy, len(a.Copies))
	for i, u := range opt.Upstreams {
		copies[i] = Copy{State: a.State(i), Writable: opt.Writable[u.Name], ReadOnly: u.Mode == remote.ReadOnly}
		if copies[i].State == catalog.Complete && !opt.Quick {
			h, err := backendHash(ctx, u, a.Key, a.Manifest)
			if err != nil {
				log.Warn(fmt.Sprintf("heal: %s on %s: could not read the backend's hash: %v", a.Key, u.Name, err), "upstream", u.Name)
			}
			copies[i].Hash = h
		}
		left[i].complete = copies[i].State == catalog.Complete && copies[i].Hash != HashBad
	}
	targets, sources := Plan(copies)
	if len(targets) == 0 {
		res.Healthy++
		return left
	}
	// The manifest and its signature travel as stored: a signature is over
	// exact bytes, which re-encoding could change.
	d := archive.Delivery{Key: a.Key, Manifest: a.Manifest, Body: a.Body, Sig: a.Sig}
	bad := map[int]bool{}
	for k := 0; k < len(targets); k++ {
		t := targets[k]
		tu := opt.Upstreams[t]
		ulog := log.With("upstream", tu.Name)
		why := copies[t].Why()
		if bad[t] {
			why = "damaged: its content did not match the manifest when read"
		}
		if opt.DryRun {
			res.Planned++
			ulog.Info(fmt.Sprintf("heal: would heal %s on %s (%s) from %s", a.Key, tu.Name, why, names(opt.Upstreams, sources, bad)))
			continue
		}
		from, out, err := healCopy(ctx, d, tu, t, sources, bad, opt, log)
		// A source found damaged is healed too, once the others are done.
		for s := range bad {
			if opt.Writable[opt.Upstreams[s].Name] && !slices.Contains(targets, s) {
				targets = append(targets, s)
			}
			if !left[s].healed {
				left[s].complete = false
			}
		}
		if err != nil {
			left[t].failed = true
			res.Failed++
			ulog.Error(fmt.Sprintf("heal: could not heal %s on %s (%s): %v", a.Key, tu.Name, why, err))
			continue
		}
		res.Healed++
		left[t] = after{complete: true, healed: true}
		check := "size checked"
		if out.Verified != rhash.None {
			check = "size and " + out.Verified.String() + " verified"
		}
		ulog.Info(fmt.Sprintf("healed %s on %s from %s (was %s; %s, sha256 matched, %s, %s)", a.Key, tu.Name, opt.Upstreams[from].Name,
			why, textfmt.Bytes(a.Manifest.Ciphertext.Size), check, out.Duration.Round(1e6)),
			"heal_source", opt.Upstreams[from].Name, "bytes", a.Manifest.Ciphertext.Size)
	}
	res.BadSources += len(bad)
	return left
}

// healCopy stores d on target from the first source whose bytes match the
// manifest. A source whose content differs is marked bad and skipped; one
// that fails to be read is skipped. An upload failure ends the attempt:
// the fault is the target's.
func healCopy(ctx context.Context, d archive.Delivery, target *remote.Upstream, t int, sources []int, bad map[int]bool, opt Options, log *slog.Logger) (int, archive.Delivered, error) {
	var skipped []string
	for _, s := range sources {
		if s == t || bad[s] {
			continue
		}
		su := opt.Upstreams[s]
		out, err := copyFrom(ctx, su, target, d)
		switch {
		case err == nil:
			return s, out, nil
		case errors.Is(err, archive.ErrContentMismatch):
			bad[s] = true
			log.Error(fmt.Sprintf("heal: %s on %s is damaged: %v; not used as a source", d.Key, su.Name, err), "upstream", su.Name)
			skipped = append(skipped, su.Name+": damaged")
		case errors.Is(err, archive.ErrSourceRead):
			log.Warn(fmt.Sprintf("heal: %s: reading the copy on %s failed: %v; trying the next source", d.Key, su.Name, err), "upstream", su.Name)
			skipped = append(skipped, su.Name+": "+err.Error())
		default:
			return s, out, err
		}
	}
	if len(skipped) == 0 {
		return -1, archive.Delivered{}, errors.New("no other upstream holds a good copy")
	}
	return -1, archive.Delivered{}, fmt.Errorf("no good source (%s)", strings.Join(skipped, "; "))
}

func copyFrom(ctx context.Context, src, dst *remote.Upstream, d archive.Delivery) (archive.Delivered, error) {
	obj, err := src.Fs.NewObject(ctx, d.Key)
	if err != nil {
		return archive.Delivered{}, fmt.Errorf("%w: %v", archive.ErrSourceRead, err)
	}
	rc, err := obj.Open(ctx)
	if err != nil {
		return archive.Delivered{}, fmt.Errorf("%w: %v", archive.ErrSourceRead, err)
	}
	defer rc.Close()
	return archive.Deliver(ctx, dst, d, rc)
}

func names(ups []*remote.Upstream, idx []int, bad map[int]bool) string {
	var out []string
	for _, i := range idx {
		if !bad[i] {
			out = append(out, ups[i].Name)
		}
	}
	return strings.Join(out, " or ")
}

func hasManifest(a *catalog.Archive) bool {
	for _, c := range a.Copies {
		if c.HasManifest {
			return true
		}
	}
	return false
}

// backendHash judges a complete copy by its backend's own hash, as keyless
// verify does.
func backendHash(ctx context.Context, u *remote.Upstream, key string, m *manifest.Manifest) (Hash, error) {
	t, err := verify.BackendHash(ctx, u, key, m)
	switch {
	case errors.Is(err, verify.ErrHashMismatch):
		return HashBad, nil
	case err != nil:
		return HashUnchecked, err
	case t == rhash.None:
		return HashUnchecked, nil
	}
	return HashOK, nil
}
