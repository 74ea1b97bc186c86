package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/hash"
	"github.com/rclone/rclone/fs/object"
)

// Exists reports whether key is already stored on u.
func Exists(ctx context.Context, u *Upstream, key string) (bool, error) {
	_, err := u.Fs.NewObject(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrorObjectNotFound), errors.Is(err, fs.ErrorDirNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Remove deletes key from u; a key that is not there is no error, so that
// an interrupted prune or heal can simply run again.
func Remove(ctx context.Context, u *Upstream, key string) error {
	obj, err := u.Fs.NewObject(ctx, key)
	if errors.Is(err, fs.ErrorObjectNotFound) || errors.Is(err, fs.ErrorDirNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return obj.Remove(ctx)
}

// Put uploads size bytes from r to key; size -1 streams an unknown length.
// No local copy is made: backends that can't stream unknown sizes fail.
func Put(ctx context.Context, u *Upstream, key string, r io.Reader, size int64, modTime time.Time) (fs.Object, error) {
	info := object.NewStaticObjectInfo(key, modTime, size, true, nil, u.Fs)
	if size >= 0 {
		return u.Fs.Put(ctx, r, info)
	}
	put := u.Fs.Features().PutStream
	if put == nil {
		return nil, fmt.Errorf("backend %s cannot upload a stream of unknown size; pass the dump with --file", u.Fs.Name())
	}
	return put(ctx, r, info)
}

// hashPreference orders the hashes pgarchive can check after an upload by
// cost: backends that offer several (local, SFTP) compute them by re-reading
// the data, where CRC-32 is ~30x cheaper than SHA-256 on CPUs without SHA
// extensions. SHA-256 is computed for the manifest anyway.
var hashPreference = []hash.Type{hash.CRC32, hash.SHA256, hash.SHA1, hash.MD5}

// VerifyHash picks the hash to compare after uploading size bytes (-1:
// unknown) to u, or hash.None when the backend will offer none for it.
func VerifyHash(u *Upstream, size int64) hash.Type {
	set := u.Fs.Hashes()
	for _, t := range hashPreference {
		if set.Contains(t) {
			if t == hash.MD5 && multipartS3(u, size) {
				// S3 multipart objects carry no whole-object MD5 (rclone
				// checks each part's Content-MD5 while uploading), so an
				// MD5 of the stream could never be compared: skip its cost.
				return hash.None
			}
			return t
		}
	}
	if t := set.GetOne(); t != hash.None {
		return t
	}
	return hash.None
}

// Verification is what Verify found.
type Verification struct {
	Hash    hash.Type // hash.None when the backend offered none for this object
	Checked bool
}

// Verify re-reads key's metadata from u and checks size and, where the
// backend offers it for this object, the hash (want holds the expected sums).
func Verify(ctx context.Context, u *Upstream, key string, size int64, want map[hash.Type]string) (Verification, error) {
	obj, err := u.Fs.NewObject(ctx, key)
	if err != nil {
		return Verification{}, fmt.Errorf("not found after upload: %w", err)
	}
	if obj.Size() != size {
		return Verification{}, fmt.Errorf("size after upload is %d, want %d", obj.Size(), size)
	}
	t := VerifyHash(u, size)
	v := Verification{Hash: t}
	exp, ok := want[t]
	if t == hash.None || !ok {
		return v, nil
	}
	got, err := obj.Hash(ctx, t)
	if err != nil {
		return v, fmt.Errorf("reading %s after upload: %w", t, err)
	}
	if got == "" {
		// e.g. S3 multipart objects: their parts were checked with
		// Content-MD5 during the upload, the whole has no MD5.
		return v, nil
	}
	if got != exp {
		return v, fmt.Errorf("%s after upload is %s, want %s", t, got, exp)
	}
	v.Checked = true
	return v, nil
}

// ErrNotFound is a key that is not stored (rclone's two ways of saying so).
var ErrNotFound = errors.New("not found")

// ReadSmall reads key from u whole, refusing more than max bytes: the one
// way small objects (manifests, signatures) are read from the store.
func ReadSmall(ctx context.Context, u *Upstream, key string, max int64) ([]byte, error) {
	obj, err := u.Fs.NewObject(ctx, key)
	if errors.Is(err, fs.ErrorObjectNotFound) || errors.Is(err, fs.ErrorDirNotFound) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return ReadObject(ctx, obj, max)
}

// ReadObject reads a listed object whole, refusing more than max bytes.
func ReadObject(ctx context.Context, obj fs.Object, max int64) ([]byte, error) {
	rc, err := obj.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", obj.Remote(), max)
	}
	return b, nil
}
