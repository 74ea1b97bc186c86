// Package walarchive is continuous archiving: wal-push stores each WAL file
// PostgreSQL hands to archive_command on every upstream (encrypted, with a
// manifest and signature as for dumps), and wal-fetch gives it back to
// restore_command, checked, or says "not found" only when every upstream
// said so.
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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// MaxFileSize bounds what wal-push reads: the largest wal_segment_size.
const MaxFileSize = 1 << 30

// PushOptions are wal-push's settings, resolved by the CLI.
type PushOptions struct {
	Path        string // %p: the file, relative to DataDir unless absolute
	DataDir     string // PostgreSQL's data directory (archive_command's working directory)
	Prefix      string
	Keys        *keys.Keys
	Signer      *sign.Signer
	Upstreams   []*remote.Upstream // the writable members
	Compression string             // "zstd" or "none"
	Durability  Durability
	// Backlog keeps the encrypted file for the upstreams that failed,
	// under DurabilityBacklog; nil otherwise.
	Backlog Backlog
	Log     *slog.Logger
	Version string
	Host    string
	Now     func() time.Time
}

// Backlog is where a pushed file waits for the upstreams that did not
// take it (internal/backlog through the CLI).
type Backlog interface {
	Keep(s archive.Sealed, pending, held []string, errs map[string]string) error
}

// Outcome is one upstream's result.
type Outcome struct {
	Upstream string
	Err      error
	// Already is true when the upstream held the same file before.
	Already bool
}

// PushResult is what Push did.
type PushResult struct {
	File     walname.File
	Cluster  walname.Cluster
	Key      string
	Outcomes []Outcome
	Backlog  bool // kept in the backlog for the failed upstreams
}

// ErrConflict marks a file already stored under the same name with other
// content: PostgreSQL must not be told it is archived, and someone has to
// look (two clusters sharing a system identifier, or a forged object).
var ErrConflict = errors.New("a different file is already archived under this name")

// Push archives one WAL file. It returns nil only once the file is durable
// under opt.Durability; the error names every upstream that failed.
func Push(ctx context.Context, opt PushOptions) (*PushResult, error) {
	name := filepath.Base(opt.Path)
	f, err := walname.Parse(name)
	if err != nil {
		return nil, err
	}
	c, err := walname.ReadCluster(opt.DataDir)
	if err != nil {
		return nil, err
	}
	path := opt.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(opt.DataDir, path)
	}
	plain, err := readWAL(path)
	if err != nil {
		return nil, err
	}
	res := &PushResult{File: f, Cluster: c, Key: c.Key(opt.Prefix, name)}
	log := opt.Log.With("wal", name, "archive", res.Key)
	sealed, m, err := seal(opt, c, f, plain)
	if err != nil {
		return res, err
	}
	if len(opt.Upstreams) == 0 {
		return res, errors.New("no writable upstream: every member of the remote is read-only")
	}
	res.Outcomes = make([]Outcome, len(opt.Upstreams))
	var wg sync.WaitGroup
	for i, u := range opt.Upstreams {
		res.Outcomes[i].Upstream = u.Name
		if u.Err != nil {
			res.Outcomes[i].Err = fmt.Errorf("unreachable: %w", u.Err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Outcomes[i].Already, res.Outcomes[i].Err = pushOne(ctx, u, sealed, m, c)
		}()
	}
	wg.Wait()
	return res, judge(opt, log, res, sealed)
}

// readWAL reads the whole file into a buffer of its exact size: WAL files
// are at most 1 GiB (16 MiB by default), and the SHA-256 must be known
// before any upstream is asked whether it already holds them. (Growing a
// buffer as io.ReadAll does costs a page fault per new page, which is most
// of a push's time on some virtual machines.)
func readWAL(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	n := fi.Size()
	if n <= 0 || n > MaxFileSize {
		return nil, fmt.Errorf("%s has %d bytes: not a WAL file", path, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(fh, b); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// zstdEncoder is shared: creating one costs more than compressing a
// mostly empty segment.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))

// seal compresses, encrypts, hashes, describes and signs the file.
func seal(opt PushOptions, c walname.Cluster, f walname.File, plain []byte) (archive.Sealed, *manifest.WAL, error) {
	sum := sha256.Sum256(plain)
	packed := plain
	if opt.Compression == "zstd" {
		packed = zstdEncoder.EncodeAll(plain, make([]byte, 0, zstdEncoder.MaxEncodedSize(len(plain))))
	}
	enc, err := crypt.New(opt.Keys.Recipients)
	if err != nil {
		return archive.Sealed{}, nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(enc.Size(int64(len(packed)))))
	w, err := enc.Start(&buf)
	if err == nil {
		_, err = w.Write(packed)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return archive.Sealed{}, nil, fmt.Errorf("encrypting %s: %w", f.Name, err)
	}
	sums, err := archive.CipherSums(opt.Upstreams, buf.Bytes())
	if err != nil {
		return archive.Sealed{}, nil, err
	}
	now := opt.Now().UTC().Truncate(time.Second)
	m := &manifest.WAL{Format: manifest.WALFormatVersion, Kind: manifest.WALKind,
		SystemID: strconv.FormatUint(c.SystemID, 10), Major: c.Major, File: f.Name, Created: now,
		Plaintext:  manifest.Plain{Size: int64(len(plain)), SHA256: hex.EncodeToString(sum[:]), Compression: opt.Compression},
		Ciphertext: manifest.Blob{Size: int64(buf.Len()), SHA256: sums[rhash.SHA256], HeaderSHA256: enc.HeaderSHA256()},
		Key:        manifest.Key{Recipients: opt.Keys.Described},
		Pgarchive:  manifest.Provenance{Version: opt.Version, Host: opt.Host}}
	m.Ciphertext.MD5, m.Ciphertext.CRC32 = sums[rhash.MD5], sums[rhash.CRC32]
	body, err := m.Marshal()
	if err != nil {
		return archive.Sealed{}, nil, err
	}
	s := archive.Sealed{Key: c.Key(opt.Prefix, f.Name), Data: buf.Bytes(), Sums: sums, Body: body, Created: now}
	if opt.Signer != nil {
		if s.Sig, err = opt.Signer.Sign(body); err != nil {
			return archive.Sealed{}, nil, fmt.Errorf("signing the manifest of %s: %w", f.Name, err)
		}
	}
	return s, m, nil
}

// pushOne stores s on u unless u holds the same file already. A manifest
// there with another plaintext is a conflict, never overwritten.
func pushOne(ctx context.Context, u *remote.Upstream, s archive.Sealed, m *manifest.WAL, c walname.Cluster) (bool, error) {
	theirs, _, err := readManifest(ctx, u, s.Key)
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return false, err
	case theirs.Matches(c, m.File) != nil || theirs.Plaintext.SHA256 != m.Plaintext.SHA256:
		return false, fmt.Errorf("%w: %s holds %s with SHA-256 %s, this one has %s; nothing was overwritten",
			ErrConflict, u.Name, s.Key, theirs.Plaintext.SHA256, m.Plaintext.SHA256)
	default:
		// The same file: done if its data is whole. (A copy whose data went
		// missing is replaced by ours, which has the same plaintext.)
		want := map[rhash.Type]string{rhash.SHA256: theirs.Ciphertext.SHA256}
		if theirs.Ciphertext.MD5 != "" {
			want[rhash.MD5] = theirs.Ciphertext.MD5
		}
		if theirs.Ciphertext.CRC32 != "" {
			want[rhash.CRC32] = theirs.Ciphertext.CRC32
		}
		if _, err := remote.Verify(ctx, u, s.Key, theirs.Ciphertext.Size, want); err == nil {
			return true, nil
		}
	}
	if _, err := archive.PutSealed(ctx, u, s); err != nil {
		return false, err
	}
	return false, nil
}

// judge applies the durability policy and logs one line per upstream that
// failed, with its name in the entry's fields.
func judge(opt PushOptions, log *slog.Logger, res *PushResult, s archive.Sealed) error {
	var failed, held []string
	errs := map[string]string{}
	var conflict error
	for _, o := range res.Outcomes {
		if o.Err == nil {
			held = append(held, o.Upstream)
			continue
		}
		failed = append(failed, o.Upstream)
		errs[o.Upstream] = o.Err.Error()
		log.Error(fmt.Sprintf("wal-push %s: upstream %s: %v", res.File.Name, o.Upstream, o.Err), "upstream", o.Upstream)
		if errors.Is(o.Err, ErrConflict) {
			conflict = o.Err
		}
	}
	if conflict != nil {
		return conflict
	}
	if len(failed) == 0 {
		log.Debug(fmt.Sprintf("wal-push %s: stored on %s", res.File.Name, strings.Join(held, ", ")))
		return nil
	}
	if opt.Durability == DurabilityBacklog && len(held) > 0 && opt.Backlog != nil {
		if err := opt.Backlog.Keep(s, failed, held, errs); err != nil {
			return fmt.Errorf("%s is on %s only, and the backlog could not keep it for %s: %w",
				res.File.Name, strings.Join(held, ", "), strings.Join(failed, ", "), err)
		}
		res.Backlog = true
		log.Warn(fmt.Sprintf("wal-push %s: stored on %s; kept in the backlog for %s", res.File.Name,
			strings.Join(held, ", "), strings.Join(failed, ", ")))
		return nil
	}
	return fmt.Errorf("%s is not archived on %s (policy %s): PostgreSQL will retry it", res.File.Name, strings.Join(failed, ", "), opt.Durability)
}

// errNotFound is an object that is not there.
var errNotFound = errors.New("not found")

// readManifest reads and parses the WAL manifest beside key on u, and
// returns its bytes too (what a signature covers). A data object without
// a manifest is a push cut short: errNotFound, as no object at all.
func readManifest(ctx context.Context, u *remote.Upstream, key string) (*manifest.WAL, []byte, error) {
	body, err := remote.ReadSmall(ctx, u, key+naming.ManifestSuffix, manifest.MaxSize)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, nil, errNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := manifest.ParseWAL(bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("%s%s: %w", key, naming.ManifestSuffix, err)
	}
	return m, body, nil
}
