package harness

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
)

// CopyKind is what one upstream holds of a generated archive.
type CopyKind int

const (
	CopyNone      CopyKind = iota
	CopyComplete           // data and manifest: a finished upload
	CopyDataOnly           // data without manifest: a failed upload
	CopyManifest           // manifest without data: a half-deleted copy
	CopyWrongSize          // manifest and data of another size: a damaged copy
)

// FakeArchive is a well-formed but undecryptable archive: random bytes as
// its data object and a manifest pgarchive's strict parser accepts, which
// describes that data's real size and hashes. Copies says what each upstream
// holds of it.
type FakeArchive struct {
	Name     naming.Name
	Key      string // data object key
	Data     []byte
	Manifest []byte
	Copies   []CopyKind
}

// NewFakeArchive builds db's archive created at t (seq orders archives of
// the same second) under prefix, with random content from r.
func NewFakeArchive(t testing.TB, r *rand.Rand, prefix, db string, created time.Time, seq int, copies ...CopyKind) FakeArchive {
	t.Helper()
	n, err := naming.New(db, created, ".gz")
	if err != nil {
		t.Fatal(err)
	}
	n.Seq = seq
	data := make([]byte, 200+r.IntN(400))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	dumpSum := make([]byte, 32)
	for i := range dumpSum {
		dumpSum[i] = byte(r.Uint32())
	}
	sum, md := sha256.Sum256(data), md5.Sum(data)
	m := manifest.Manifest{
		Format:     manifest.FormatVersion,
		Database:   db,
		Archive:    n.Base(),
		Created:    n.Created,
		Dump:       manifest.Dump{Size: int64(len(data)) - 150, SHA256: hex.EncodeToString(dumpSum), Compression: "gzip", Source: "file"},
		Ciphertext: manifest.Blob{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), MD5: hex.EncodeToString(md[:])},
		Key:        manifest.Key{Recipients: []manifest.Recipient{{Kind: "x25519", Fingerprint: "sha256:" + hex.EncodeToString(dumpSum[:16])}}},
		Pgarchive:  manifest.Provenance{Version: "test", Host: "history"},
	}
	js, err := m.Marshal()
	if err != nil {
		t.Fatalf("fake archive %s: %v", n.Base(), err)
	}
	return FakeArchive{Name: n, Key: n.Key(prefix), Data: data, Manifest: js, Copies: copies}
}

// Complete reports whether some upstream holds a complete copy.
func (a FakeArchive) Complete() bool {
	for _, c := range a.Copies {
		if c == CopyComplete {
			return true
		}
	}
	return false
}

// Objects returns what upstream i holds of the archive, by key.
func (a FakeArchive) Objects(i int) map[string][]byte {
	out := map[string][]byte{}
	if i >= len(a.Copies) {
		return out
	}
	switch a.Copies[i] {
	case CopyComplete:
		out[a.Key], out[a.Key+naming.ManifestSuffix] = a.Data, a.Manifest
	case CopyDataOnly:
		out[a.Key] = a.Data
	case CopyManifest:
		out[a.Key+naming.ManifestSuffix] = a.Manifest
	case CopyWrongSize:
		out[a.Key], out[a.Key+naming.ManifestSuffix] = a.Data[:len(a.Data)-1], a.Manifest
	}
	return out
}

// UpstreamKeys lists, sorted, every key upstream i holds of archives.
func UpstreamKeys(archives []FakeArchive, i int) []string {
	var keys []string
	for _, a := range archives {
		for k := range a.Objects(i) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Upload stores upstream i's share of archives on m, a few PUTs at a time.
func (m *MinIO) Upload(t testing.TB, archives []FakeArchive, i int) {
	t.Helper()
	objs := map[string][]byte{}
	for _, a := range archives {
		for k, v := range a.Objects(i) {
			objs[k] = v
		}
	}
	m.PutObjects(t, objs)
}

// PutObjects stores every object with plain PUTs, eight at a time.
func (m *MinIO) PutObjects(t testing.TB, objs map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	keys := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				if err := m.s3.put(ctx, m.Bucket, k, objs[k]); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("put %s: %w", k, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for k := range objs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if first != nil {
		t.Fatalf("minio %s: %v", m.Endpoint(), first)
	}
}
