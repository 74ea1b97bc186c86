package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/tee"
)

// Delivery is an archive that already exists elsewhere (in the backlog, or
// on another upstream) and is to be stored on one more upstream: the same
// ciphertext, the same manifest.
type Delivery struct {
	Key      string             // data object key
	Manifest *manifest.Manifest // what the ciphertext must match
	Body     []byte             // the manifest exactly as the other upstreams hold it
	Sig      []byte             // its signature, nil when the archive is unsigned
}

// Delivered is what Deliver did.
type Delivered struct {
	Verified rhash.Type // hash the upstream confirmed, rhash.None if only the size
	Duration time.Duration
}

// ErrContentMismatch marks ciphertext that is not what the manifest
// describes: the source is damaged, and the copy made from it was not
// given a manifest.
var ErrContentMismatch = errors.New("content differs from the manifest")

// ErrSourceRead marks a source that failed while being read (a network
// error, say): it may well be intact, but nothing was stored from it.
var ErrSourceRead = errors.New("reading the source failed")

// Deliver stores d on u from r, which yields the ciphertext. The rules that
// make a manifest mean "complete" hold here as in Run:
//   - a manifest already on u is removed first, so data being replaced never
//     sits under a manifest;
//   - the SHA-256 and size of what was read must match the manifest;
//   - u must then report the object's size (and hash, where it offers one)
//     as uploaded;
//   - only then is the manifest put.
//
// An error wrapping ErrContentMismatch or ErrSourceRead blames r, any other
// error u.
func Deliver(ctx context.Context, u *remote.Upstream, d Delivery, r io.Reader) (Delivered, error) {
	start := time.Now()
	m := d.Manifest
	size := m.Ciphertext.Size
	mkey := d.Key + naming.ManifestSuffix
	if err := remote.Remove(ctx, u, mkey); err != nil {
		return Delivered{}, fmt.Errorf("removing the manifest of the copy to be replaced: %w", err)
	}
	hs, err := cipherHashers([]*remote.Upstream{u}, size)
	if err != nil {
		return Delivered{}, err
	}
	sinks := make([]tee.Sink, 0, len(hs)+1)
	for _, h := range hs {
		sinks = append(sinks, tee.Sink{W: h})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up := startUpload(ctx, u, d.Key, size, m.Created)
	pw := up.pw
	sinks = append(sinks, tee.Sink{W: pw, Optional: true})
	// A source longer than the manifest says must not pass as whole: read
	// one byte more than expected so the size check sees it.
	res, copyErr := tee.Copy(io.LimitReader(r, size+1), sinks, tee.DefaultOptions)
	if copyErr != nil || res.N != size {
		cancel() // abort the upload rather than let it finish short
	}
	pw.CloseWithError(copyErr)
	upErr := <-up.done
	switch {
	case copyErr != nil && !errors.Is(copyErr, tee.ErrAllOptionalFailed):
		return Delivered{}, fmt.Errorf("%w: %v", ErrSourceRead, copyErr)
	case res.N > size || (res.N < size && copyErr == nil):
		return Delivered{}, fmt.Errorf("%w: %s bytes, the manifest says %d", ErrContentMismatch, lengthLabel(res.N, size), size)
	case upErr != nil:
		return Delivered{}, fmt.Errorf("upload failed: %w", upErr)
	case copyErr != nil:
		return Delivered{}, fmt.Errorf("upload failed: %w", copyErr)
	}
	sums := map[rhash.Type]string{}
	for t, h := range hs {
		sums[t] = h.Hex()
	}
	if sums[rhash.SHA256] != m.Ciphertext.SHA256 {
		return Delivered{}, fmt.Errorf("%w: sha256 %s, the manifest says %s", ErrContentMismatch, sums[rhash.SHA256], m.Ciphertext.SHA256)
	}
	verified, err := seal(ctx, u, d.Key, size, sums, d.Body, d.Sig, m.Created)
	if err != nil {
		return Delivered{}, err
	}
	return Delivered{Verified: verified, Duration: time.Since(start)}, nil
}

func lengthLabel(n, size int64) string {
	if n > size {
		return fmt.Sprintf("more than %d", size)
	}
	return fmt.Sprint(n)
}
