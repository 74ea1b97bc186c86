package catalog

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/hash"
	"github.com/rclone/rclone/fs/walk"
	"golang.org/x/sync/errgroup"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
)

// manifestReaders bounds concurrent manifest reads: each is one small GET,
// so latency, not bandwidth, decides how long a catalog of thousands takes.
const manifestReaders = 32

// Scan lists every upstream (concurrently, with the backend's recursive
// listing where it has one) under prefix, or under prefix/db when db is set,
// reads one manifest per archive (with its signature, when pol trusts
// signers) and judges every archive by pol.
func Scan(ctx context.Context, ups []*remote.Upstream, prefix, db string, pol Policy) (*Catalog, error) {
	dir := prefix
	if db != "" {
		dir = path.Join(prefix, db)
	}
	names := make([]string, len(ups))
	listings := make([][]Object, len(ups))
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		names[i] = u.Name
		if u.Err != nil {
			errs[i] = u.Err
			continue
		}
		wg.Add(1)
		go func(i int, u *remote.Upstream) {
			defer wg.Done()
			listings[i], errs[i] = list(ctx, u.Fs, dir)
		}(i, u)
	}
	wg.Wait()
	c := Assemble(prefix, names, listings, errs)
	c.History = make([]bool, len(ups))
	for i, u := range ups {
		c.History[i] = !u.Creates()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.Checked = pol.Trusted != nil
	ReadManifests(ctx, ups, c.Archives, pol.Trusted)
	c.Judge(pol)
	return c, ctx.Err()
}

// ListObjects lists every object below dir on u: a folder that does not
// exist yet is empty, a bucket that does not exist an error.
func ListObjects(ctx context.Context, u *remote.Upstream, dir string) ([]Object, error) {
	return list(ctx, u.Fs, dir)
}

func list(ctx context.Context, f fs.Fs, dir string) ([]Object, error) {
	var out []Object
	add := func(entries fs.DirEntries) {
		for _, e := range entries {
			if o, ok := e.(fs.Object); ok {
				out = append(out, Object{Key: o.Remote(), Size: o.Size(), Handle: o})
			}
		}
	}
	var err error
	if f.Features().ListR != nil {
		// One flat listing (S3 and other bucket stores): pages of 1,000 keys.
		err = walk.ListR(ctx, f, dir, true, -1, walk.ListObjects, func(entries fs.DirEntries) error {
			add(entries)
			return nil
		})
	} else {
		// Errors are kept, not returned to Walk, which would log them as
		// rclone errors (a missing folder is no error here) before we can
		// report them ourselves.
		var first error
		err = walk.Walk(ctx, f, dir, true, -1, func(_ string, entries fs.DirEntries, err error) error {
			if err != nil {
				if first == nil {
					first = err
				}
				return walk.ErrorSkipDir
			}
			add(entries)
			return nil
		})
		if err == nil {
			err = first
		}
	}
	if errors.Is(err, fs.ErrorDirNotFound) {
		return nil, missingBucket(ctx, f) // else nothing archived there yet
	}
	return out, err
}

// missingBucket tells a bucket that does not exist (a configuration error,
// which must not pass for "no archives yet") from a folder not created yet:
// on bucket stores whose upstream root is a bucket, it lists that root.
func missingBucket(ctx context.Context, f fs.Fs) error {
	if !f.Features().BucketBased || f.Root() == "" || strings.Contains(strings.Trim(f.Root(), "/"), "/") {
		return nil
	}
	if _, err := f.List(ctx, ""); errors.Is(err, fs.ErrorDirNotFound) {
		return fmt.Errorf("bucket %q does not exist", strings.Trim(f.Root(), "/"))
	}
	return nil
}

// ReadManifests reads, for each archive, every copy's own manifest and,
// with trusted signers, the signature beside it, then chooses the archive's
// manifest among them (see reference).
func ReadManifests(ctx context.Context, ups []*remote.Upstream, archives []*Archive, trusted *sign.Trusted) {
	names := make([]string, len(ups))
	for i, u := range ups {
		names[i] = u.Name
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestReaders)
	for _, a := range archives {
		g.Go(func() error {
			first := -1 // the first copy read whole, which the others may match
			for i := range a.Copies {
				if !a.Copies[i].HasManifest {
					continue
				}
				if first >= 0 && sameAs(ctx, a, i, first, trusted != nil) {
					continue
				}
				readCopy(ctx, ups[i], a, i, trusted)
				if first < 0 && a.Copies[i].Manifest != nil {
					first = i
				}
			}
			a.reference(names, trusted != nil)
			return nil
		})
	}
	_ = g.Wait() // per-copy errors are kept in the copies
}

// sameAs takes copy j's reading for copy i when the listing already shows
// that i's manifest (and, with trust, signature) has the very bytes j's
// has: the same size and the same backend MD5, which S3 lists with every
// single-part object, so a healthy archive costs one GET, not one per
// upstream. Where the backend can't say, i is read in full. A forged
// manifest crafted to collide with j's MD5 would go unnoticed here, but
// lets nothing in: every reader checks data against the manifest read from
// j (its header pin and SHA-256), never against i's bytes.
func sameAs(ctx context.Context, a *Archive, i, j int, withSig bool) bool {
	ci, cj := &a.Copies[i], &a.Copies[j]
	if !sameBytes(ctx, ci.manifest, cj.Body) || (withSig && (!ci.HasSig || cj.Sig == nil || !sameBytes(ctx, ci.sig, cj.Sig))) {
		return false
	}
	ci.Manifest, ci.Body = cj.Manifest, cj.Body
	if withSig {
		ci.Sig, ci.signer, ci.Trusted, ci.TrustErr = cj.Sig, cj.signer, cj.Trusted, cj.TrustErr
	}
	return true
}

// sameBytes reports whether the listed object o holds exactly b, by its
// size and the MD5 its backend reports without a read of its own.
func sameBytes(ctx context.Context, o fs.Object, b []byte) bool {
	if o == nil || b == nil || o.Size() != int64(len(b)) || !o.Fs().Hashes().Contains(hash.MD5) || o.Fs().Features().SlowHash {
		return false
	}
	sum, err := o.Hash(ctx, hash.MD5)
	want := md5.Sum(b)
	return err == nil && sum == hex.EncodeToString(want[:])
}

// readCopy reads copy i's manifest and, with trust, its signature.
func readCopy(ctx context.Context, u *remote.Upstream, a *Archive, i int, trusted *sign.Trusted) {
	c := &a.Copies[i]
	m, body, err := readManifest(ctx, u, a, i)
	if err != nil {
		c.Err = err
		return
	}
	c.Manifest, c.Body = m, body
	if trusted != nil {
		c.Sig, c.signer, c.TrustErr = checkSignature(ctx, u, a, i, m, body, trusted)
		c.Trusted = c.TrustErr == nil
	}
}

// checkSignature judges the manifest body read from upstream i by the
// signature stored beside it there.
func checkSignature(ctx context.Context, u *remote.Upstream, a *Archive, i int, m *manifest.Manifest, body []byte, trusted *sign.Trusted) ([]byte, string, error) {
	if m.Format < 2 {
		return nil, "", fmt.Errorf("format %d manifest: unsigned (it pins no data)", m.Format)
	}
	if !a.Copies[i].HasSig {
		return nil, "", errors.New("no signature")
	}
	sig, err := readObject(ctx, u, a.Copies[i].sig, a.Key+naming.SignatureSuffix, sign.MaxSignatureSize)
	if err != nil {
		return nil, "", fmt.Errorf("reading the signature: %w", err)
	}
	signer, err := trusted.Check(body, sig)
	return sig, signer, err
}

// readManifest reads and validates a's manifest from u, upstream i of the
// catalog, checking that it describes a and not some other archive. It also
// returns the manifest's bytes as stored.
func readManifest(ctx context.Context, u *remote.Upstream, a *Archive, i int) (*manifest.Manifest, []byte, error) {
	body, err := readObject(ctx, u, a.Copies[i].manifest, a.Key+naming.ManifestSuffix, manifest.MaxSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := manifest.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if m.Archive != a.Name.Base() {
		return nil, nil, fmt.Errorf("manifest describes %s, not %s", m.Archive, a.Name.Base())
	}
	return m, body, nil
}

// readObject reads a small object whole, refusing one over max bytes (a
// hostile store must not exhaust memory). obj is the listed handle, or nil
// to look key up.
func readObject(ctx context.Context, u *remote.Upstream, obj fs.Object, key string, max int64) ([]byte, error) {
	if obj == nil {
		var err error
		if obj, err = u.Fs.NewObject(ctx, key); err != nil {
			return nil, err
		}
	}
	return remote.ReadObject(ctx, obj, max)
}
