package catalog

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/walk"
	"golang.org/x/sync/errgroup"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// manifestReaders bounds concurrent manifest reads: each is one small GET,
// so latency, not bandwidth, decides how long a catalog of thousands takes.
const manifestReaders = 32

// Scan lists every upstream (concurrently, with the backend's recursive
// listing where it has one) under prefix, or under prefix/db when db is set,
// and reads one manifest per archive.
func Scan(ctx context.Context, ups []*remote.Upstream, prefix, db string) (*Catalog, error) {
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ReadManifests(ctx, ups, c.Archives)
	return c, ctx.Err()
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
		return nil, nil // nothing archived there yet
	}
	return out, err
}

// ReadManifests fills in each archive's Manifest from the first upstream
// whose copy parses and matches the archive's name.
func ReadManifests(ctx context.Context, ups []*remote.Upstream, archives []*Archive) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestReaders)
	for _, a := range archives {
		g.Go(func() error {
			var errs []error
			for i, c := range a.Copies {
				if !c.HasManifest {
					continue
				}
				m, err := ReadManifest(ctx, ups[i], a, i)
				if err == nil {
					a.Manifest, a.ManifestErr = m, nil
					return nil
				}
				errs = append(errs, fmt.Errorf("%s: %w", ups[i].Name, err))
			}
			a.ManifestErr = errors.Join(errs...)
			return nil
		})
	}
	_ = g.Wait() // per-archive errors are kept in ManifestErr
}

// ReadManifest reads and validates a's manifest from u, upstream i of the
// catalog, checking that it describes a and not some other archive.
func ReadManifest(ctx context.Context, u *remote.Upstream, a *Archive, i int) (*manifest.Manifest, error) {
	obj := a.Copies[i].manifest
	if obj == nil {
		var err error
		if obj, err = u.Fs.NewObject(ctx, a.Key+naming.ManifestSuffix); err != nil {
			return nil, err
		}
	}
	rc, err := obj.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m, err := manifest.Parse(rc)
	if err != nil {
		return nil, err
	}
	if m.Archive != a.Name.Base() {
		return nil, fmt.Errorf("manifest describes %s, not %s", m.Archive, a.Name.Base())
	}
	return m, nil
}
