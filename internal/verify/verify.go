// Package verify checks archives on every upstream. Without a key it
// compares what each upstream says about its copy (presence, manifest, size,
// and the backend's own hash where the manifest records that kind) with the
// manifest; deep verification downloads and decrypts every copy, which the
// age AEAD, the dump's SHA-256 and pg_dump's completion line then vouch for.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/restore"
)

// Options select the depth.
type Options struct {
	Deep       bool
	Identities *keys.Identities // required when Deep
	Log        *slog.Logger
}

// Problem is one thing wrong with one copy.
type Problem struct {
	Archive  string // data object key
	Upstream string
	Err      error
}

func (p Problem) String() string {
	return fmt.Sprintf("%s on %s: %v", p.Archive, p.Upstream, p.Err)
}

// Result sums a run up.
type Result struct {
	Archives int
	CopiesOK int
	Problems []Problem
}

// Run checks every copy of archives. It returns problems, not an error:
// an unreachable upstream is a problem of each archive it should hold.
func Run(ctx context.Context, ups []*remote.Upstream, c *catalog.Catalog, archives []*catalog.Archive, opt Options) *Result {
	res := &Result{Archives: len(archives)}
	for _, a := range archives {
		var ok []string
		for i, u := range ups {
			if a.State(i) == catalog.Missing && !c.Expected(a, i) {
				// A :ro or :nc member lacking a new archive, or a writable one
				// lacking what only such members still hold: as expected.
				continue
			}
			how, err := checkCopy(ctx, u, c, a, i, opt)
			if err != nil {
				p := Problem{Archive: a.Key, Upstream: u.Name, Err: err}
				res.Problems = append(res.Problems, p)
				opt.Log.Error(p.String(), "archive", a.Key, "upstream", u.Name)
				continue
			}
			res.CopiesOK++
			ok = append(ok, fmt.Sprintf("%s (%s)", u.Name, how))
		}
		if len(ok) > 0 {
			opt.Log.Info(fmt.Sprintf("%s: ok on %s", a.Key, strings.Join(ok, ", ")), "archive", a.Key)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return res
}

// checkCopy returns what vouched for the copy on upstream i.
func checkCopy(ctx context.Context, u *remote.Upstream, c *catalog.Catalog, a *catalog.Archive, i int, opt Options) (string, error) {
	switch st := a.State(i); st {
	case catalog.Complete:
	case catalog.Unlisted:
		return "", fmt.Errorf("upstream could not be listed: %v", c.ListErrs[i])
	case catalog.BadManifest:
		err := a.Copies[i].Err
		if err == nil {
			err = a.ManifestErr
		}
		return "", fmt.Errorf("manifest unreadable: %v", err)
	case catalog.WrongSize:
		return "", fmt.Errorf("data object has %d bytes, its manifest says %d", a.Copies[i].DataSize, a.Own(i).Ciphertext.Size)
	case catalog.Untrusted:
		if a.Trust == catalog.TrustSigned {
			return "", fmt.Errorf("its manifest is not vouched for here (%v); the archive's trusted manifest is on another upstream", a.Copies[i].TrustErr)
		}
		return "", fmt.Errorf("%s", a.Why())
	case catalog.Differs:
		return "", fmt.Errorf("%s", a.Disagreement(i, c.Upstreams))
	default:
		return "", fmt.Errorf("%s", describe(st))
	}
	// Judged by its own manifest, which the catalog read from this upstream.
	m := a.Own(i)
	t, err := BackendHash(ctx, u, a.Key, m)
	if err != nil {
		return "", err
	}
	how := "size"
	if t != hash.None {
		how += ", " + t.String()
	}
	if !opt.Deep {
		return how, nil
	}
	r := restore.Open(ctx, []restore.Copy{restore.CopyOn(u, a.Key)}, restore.Options{Manifest: m, Identities: opt.Identities})
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		if len(r.Failures) == 1 {
			err = r.Failures[0]
		}
		return "", fmt.Errorf("deep: %s", strings.TrimPrefix(err.Error(), u.Name+": "))
	}
	return how + ", decrypted", nil
}

func describe(s catalog.State) string {
	switch s {
	case catalog.Missing:
		return "missing (neither data nor manifest)"
	case catalog.Incomplete:
		return "incomplete: data without manifest (a failed or running upload)"
	case catalog.NoData:
		return "manifest without data object"
	}
	return s.String()
}

// cheapFirst orders the hashes a backend may be asked for by what they
// cost where they are computed by re-reading (local, SFTP); S3 offers only
// MD5, which is its ETag and free.
var cheapFirst = []hash.Type{hash.CRC32, hash.MD5, hash.SHA256}

// ErrHashMismatch means a backend's own hash of a copy contradicts the
// manifest: the stored bytes are not the archive's.
var ErrHashMismatch = errors.New("the stored data differs")

// BackendHash compares the backend's own hash of the copy of key on u with
// the manifest's, using the cheapest kind that both the manifest records
// and the backend offers, and returns the kind compared: hash.None when
// none could be (e.g. an S3 multipart object has no whole-object MD5). A
// mismatch is an error wrapping ErrHashMismatch; any other error means the
// hash could not be read. keyless verify and heal judge copies with it.
func BackendHash(ctx context.Context, u *remote.Upstream, key string, m *manifest.Manifest) (hash.Type, error) {
	want := map[hash.Type]string{hash.MD5: m.Ciphertext.MD5, hash.CRC32: m.Ciphertext.CRC32, hash.SHA256: m.Ciphertext.SHA256}
	set := u.Fs.Hashes()
	for _, t := range cheapFirst {
		if want[t] == "" || !set.Contains(t) {
			continue
		}
		obj, err := u.Fs.NewObject(ctx, key)
		if err != nil {
			return hash.None, err
		}
		got, err := obj.Hash(ctx, t)
		if err != nil {
			return hash.None, fmt.Errorf("reading %s: %w", t, err)
		}
		if got == "" {
			continue
		}
		if got != want[t] {
			return hash.None, fmt.Errorf("%s is %s, the manifest says %s: %w", t, got, want[t], ErrHashMismatch)
		}
		return t, nil
	}
	return hash.None, nil
}
