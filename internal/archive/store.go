package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// This file is the one path by which an archive's copy comes to exist on an
// upstream, for new archives (Run, many upstreams at once) and for copies
// of existing ones (Deliver: backlog retry and heal) alike:
//
//  1. startUpload streams the ciphertext to the upstream's data object;
//  2. seal checks the stored object's size (and hash, where the backend
//     offers one) against what was streamed, and only then
//  3. putManifest writes the signature and the manifest, which is what
//     makes the copy count as complete for every reader.

// errUploadDone closes an upload's pipe once the upload returned: a writer
// still writing then learns that its bytes go nowhere.
var errUploadDone = errors.New("upload already finished")

// upload is one upstream's upload, fed through its pipe.
type upload struct {
	u    *remote.Upstream
	pw   *io.PipeWriter
	done chan error // receives the upload's result once
	end  time.Time  // when it returned; read after done
}

// startUpload begins storing what is written to the returned pipe as key
// on u. Closing the pipe with an error (or cancelling ctx) aborts the
// upload; rclone aborts an S3 multipart upload then.
func startUpload(ctx context.Context, u *remote.Upstream, key string, size int64, created time.Time) *upload {
	pr, pw := io.Pipe()
	up := &upload{u: u, pw: pw, done: make(chan error, 1)}
	go func() {
		_, err := remote.Put(ctx, u, key, pr, size, created)
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.CloseWithError(errUploadDone)
		}
		up.end = time.Now()
		up.done <- err
	}()
	return up
}

// seal verifies the object at key on u against size and sums, then puts
// the manifest (and signature). It returns the hash the upstream
// confirmed, rhash.None when it could check only the size.
func seal(ctx context.Context, u *remote.Upstream, key string, size int64, sums map[rhash.Type]string, body, sig []byte, created time.Time) (rhash.Type, error) {
	v, err := remote.Verify(ctx, u, key, size, sums)
	if err != nil {
		return rhash.None, fmt.Errorf("verification failed: %w", err)
	}
	if err := putManifest(ctx, u, key, body, sig, created); err != nil {
		return rhash.None, fmt.Errorf("manifest: %w", err)
	}
	if v.Checked {
		return v.Hash, nil
	}
	return rhash.None, nil
}

// putManifest stores the manifest of the archive at key, and first its
// signature when there is one, so a signed archive's manifest never
// appears without its signature. Each object is checked to have landed
// whole. An unsigned archive removes a stale signature left by an earlier
// copy: a signature must only ever sit beside the manifest it signs.
func putManifest(ctx context.Context, u *remote.Upstream, key string, body, sig []byte, created time.Time) error {
	put := func(k string, b []byte) error {
		if _, err := remote.Put(ctx, u, k, bytes.NewReader(b), int64(len(b)), created); err != nil {
			return err
		}
		_, err := remote.Verify(ctx, u, k, int64(len(b)), nil)
		return err
	}
	if sig == nil {
		if err := remote.Remove(ctx, u, key+naming.SignatureSuffix); err != nil {
			return fmt.Errorf("removing a stale signature: %w", err)
		}
	} else if err := put(key+naming.SignatureSuffix, sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return put(key+naming.ManifestSuffix, body)
}

// Sealed is an object small enough to be encrypted in memory before any
// upload (a WAL file): its ciphertext, hashes and manifest are all known
// when the first byte goes out.
type Sealed struct {
	Key     string
	Data    []byte                // the ciphertext
	Sums    map[rhash.Type]string // from CipherSums
	Body    []byte                // the manifest
	Sig     []byte                // its signature, nil unsigned
	Created time.Time
}

// CipherSums hashes data with SHA-256 and every hash one of ups verifies
// with, once for all of them.
func CipherSums(ups []*remote.Upstream, data []byte) (map[rhash.Type]string, error) {
	hs, err := cipherHashers(ups, int64(len(data)))
	if err != nil {
		return nil, err
	}
	out := map[rhash.Type]string{}
	for t, h := range hs {
		_, _ = h.Write(data)
		out[t] = h.Hex()
	}
	return out, nil
}

// PutSealed stores s on u by the one path: upload, verify, then the
// signature and the manifest. A manifest already there is removed first,
// so data being replaced never sits under a manifest.
func PutSealed(ctx context.Context, u *remote.Upstream, s Sealed) (rhash.Type, error) {
	if err := remote.Remove(ctx, u, s.Key+naming.ManifestSuffix); err != nil {
		return rhash.None, fmt.Errorf("removing the manifest of the copy to be replaced: %w", err)
	}
	up := startUpload(ctx, u, s.Key, int64(len(s.Data)), s.Created)
	_, werr := up.pw.Write(s.Data)
	up.pw.CloseWithError(werr)
	if err := <-up.done; err != nil {
		return rhash.None, fmt.Errorf("upload failed: %w", err)
	}
	return seal(ctx, u, s.Key, int64(len(s.Data)), s.Sums, s.Body, s.Sig, s.Created)
}
