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
		Format:   manifest.FormatVersion,
		Database: db,
		Archive:  n.Base(),
		Created:  n.Created,
		Dump:     manifest.Dump{Size: int64(len(data)) - 150, SHA256: hex.EncodeToString(dumpSum), Compression: "gzip", Source: "file"},
		Ciphertext: manifest.Blob{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), MD5: hex.EncodeToString(md[:]),
			HeaderSHA256: hex.EncodeToString(dumpSum)}, // fake data: no age header to pin
		Key:       manifest.Key{Recipients: []manifest.Recipient{{Kind: "x25519", Fingerprint: "sha256:" + hex.EncodeToString(dumpSum[:16])}}},
		Pgarchive: manifest.Provenance{Version: "test", Host: "history"},
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

// IrregularTimes makes archive times over the two years before now: every
// few days long ago, every several hours in the last two months, every hour
// or so in the last three days. Times within an hour of avoid (a keep-within
// cutoff) are left out, so that a pgarchive run a little later than the
// caller's clock cannot disagree with the caller about them.
func IrregularTimes(r *rand.Rand, now, avoid time.Time) []time.Time {
	var out []time.Time
	t := now.Add(-730 * 24 * time.Hour)
	for t.Before(now.Add(-10 * time.Minute)) {
		if d := t.Sub(avoid); d < -time.Hour || d > time.Hour {
			out = append(out, t.Truncate(time.Second))
		}
		var gap time.Duration
		switch age := now.Sub(t); {
		case age > 60*24*time.Hour:
			gap = time.Duration(48+r.IntN(170)) * time.Hour
		case age > 3*24*time.Hour:
			gap = time.Duration(360+r.IntN(1440)) * time.Minute
		default:
			gap = time.Duration(30+r.IntN(210)) * time.Minute
		}
		t = t.Add(gap + time.Duration(r.IntN(3600))*time.Second)
	}
	return out
}

// FakeHistory builds db's archives at the given times for two upstreams,
// with a mix of complete, failed, half-deleted and damaged copies, now and
// then a second archive in the same second; the newest is a failed (or still
// running) upload on both.
func FakeHistory(t testing.TB, r *rand.Rand, prefix, db string, times []time.Time) []FakeArchive {
	t.Helper()
	var out []FakeArchive
	for i, tm := range times {
		var copies []CopyKind
		switch n := r.IntN(100); {
		case i == len(times)-1:
			copies = []CopyKind{CopyDataOnly, CopyDataOnly}
		case n < 78:
			copies = []CopyKind{CopyComplete, CopyComplete}
		case n < 84:
			copies = []CopyKind{CopyComplete, CopyNone}
		case n < 88:
			copies = []CopyKind{CopyDataOnly, CopyComplete}
		case n < 93:
			copies = []CopyKind{CopyDataOnly, CopyDataOnly}
		case n < 96:
			copies = []CopyKind{CopyManifest, CopyNone}
		default:
			copies = []CopyKind{CopyWrongSize, CopyComplete}
		}
		out = append(out, NewFakeArchive(t, r, prefix, db, tm, 0, copies...))
		if r.IntN(60) == 0 && i < len(times)-1 {
			out = append(out, NewFakeArchive(t, r, prefix, db, tm, 1, CopyComplete, CopyComplete))
		}
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
