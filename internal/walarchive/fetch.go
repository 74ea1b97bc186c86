package walarchive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// FetchOptions are wal-fetch's settings.
type FetchOptions struct {
	File       string // %f: the WAL file name PostgreSQL asks for
	Dest       string // %p: where to put it, relative to DataDir unless absolute
	DataDir    string // the data directory being recovered (restore_command's working directory)
	Prefix     string
	Upstreams  []*remote.Upstream // every member, read-only ones too
	Identities *keys.Identities
	// Trusted, when set, accepts only files whose manifest a trusted key
	// signed; nil accepts unsigned ones (the CLI warns).
	Trusted *sign.Trusted
	Log     *slog.Logger
}

// ErrNotFound is returned only when every upstream answered that it does
// not hold the file: the one outcome that may end recovery.
var ErrNotFound = errors.New("not archived on any upstream")

// Fetch restores one WAL file. Any error but ErrNotFound must abort
// recovery: an upstream that could not answer, or a copy that is not
// what its manifest and signature say, may hide a file that exists.
func Fetch(ctx context.Context, opt FetchOptions) (string, error) {
	f, err := walname.Parse(opt.File)
	if err != nil {
		return "", err
	}
	c, err := walname.ReadCluster(opt.DataDir)
	if err != nil {
		return "", err
	}
	key := c.Key(opt.Prefix, f.Name)
	var errs []error
	missing := 0
	for _, u := range opt.Upstreams {
		if u.Err != nil {
			errs = append(errs, fmt.Errorf("%s: unreachable: %w", u.Name, u.Err))
			continue
		}
		plain, err := fetchOne(ctx, u, c, f, key, opt)
		if errors.Is(err, errNotFound) {
			missing++
			continue
		}
		if err != nil {
			opt.Log.Warn(fmt.Sprintf("wal-fetch %s: upstream %s: %v", f.Name, u.Name, err), "upstream", u.Name, "wal", f.Name)
			errs = append(errs, fmt.Errorf("%s: %w", u.Name, err))
			continue
		}
		dest := opt.Dest
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(opt.DataDir, dest)
		}
		if err := atomicfile.WriteBytes(dest, plain, atomicfile.Options{}); err != nil {
			return "", err
		}
		return u.Name, nil
	}
	if missing == len(opt.Upstreams) {
		return "", fmt.Errorf("%s of %s: %w", f.Name, c, ErrNotFound)
	}
	return "", fmt.Errorf("%s of %s: no upstream gave a good copy (%d said not found): %w", f.Name, c, missing, errors.Join(errs...))
}

// fetchOne reads u's copy and checks everything the manifest promises:
// its signature (with trust), that it is this file of this cluster, the
// ciphertext's SHA-256 and header, the plaintext's size and SHA-256.
func fetchOne(ctx context.Context, u *remote.Upstream, c walname.Cluster, f walname.File, key string, opt FetchOptions) ([]byte, error) {
	m, body, err := readManifest(ctx, u, key)
	if err != nil {
		return nil, err
	}
	if err := m.Matches(c, f.Name); err != nil {
		return nil, err
	}
	if opt.Trusted != nil {
		sig, err := remote.ReadSmall(ctx, u, key+naming.SignatureSuffix, sign.MaxSignatureSize)
		if errors.Is(err, remote.ErrNotFound) {
			return nil, errors.New("UNTRUSTED: the manifest is not signed")
		}
		if err != nil {
			return nil, err
		}
		if _, err := opt.Trusted.Check(body, sig); err != nil {
			return nil, fmt.Errorf("UNTRUSTED: %w", err)
		}
	}
	data, err := remote.ReadSmall(ctx, u, key, m.Ciphertext.Size)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return Open(m, data, opt.Identities)
}

// Open checks ciphertext data against m and returns the WAL file.
func Open(m *manifest.WAL, data []byte, ids *keys.Identities) ([]byte, error) {
	if int64(len(data)) != m.Ciphertext.Size {
		return nil, fmt.Errorf("data has %d bytes, the manifest says %d", len(data), m.Ciphertext.Size)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.Ciphertext.SHA256 {
		return nil, fmt.Errorf("data has SHA-256 %x, the manifest says %s", sum, m.Ciphertext.SHA256)
	}
	src, err := crypt.CheckHeader(bytes.NewReader(data), m.Ciphertext.HeaderSHA256)
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(src, ids.List...)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	dec, err := dumpcheck.Decompress(m.Plaintext.Compression, r)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	plain, err := io.ReadAll(io.LimitReader(dec, m.Plaintext.Size+1))
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	if int64(len(plain)) != m.Plaintext.Size {
		return nil, fmt.Errorf("decrypted file has %d bytes, the manifest says %d", len(plain), m.Plaintext.Size)
	}
	if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != m.Plaintext.SHA256 {
		return nil, fmt.Errorf("decrypted file has SHA-256 %x, the manifest says %s", sum, m.Plaintext.SHA256)
	}
	return plain, nil
}
