// Command genarchives writes N fake but well-formed archives into a local
// directory tree, in the layout of docs/format.md, for benchmarking
// `pgarchive list` over many archives (tests/bench/read.sh). It is not a
// test. Each archive is <db>/<db>_<stamp>.sql.gz.age, a few hundred random
// bytes (not decryptable), and its .manifest.json, which pgarchive's strict
// parser accepts: the manifest is built and validated with
// internal/manifest, and describes the data object's real size and hashes.
package main

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
)

func main() {
	n := flag.Int("n", 10000, "number of archives")
	dbs := flag.Int("dbs", 10, "spread over this many databases")
	dir := flag.String("dir", ".", "root of the tree (the remote's root)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*dir, *n, *dbs, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "genarchives:", err)
		os.Exit(1)
	}
}

func run(dir string, n, dbs int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0xa2c))
	// One recipient for all, as one host's archives have.
	fp := make([]byte, 16)
	fill(r, fp)
	recipient := manifest.Recipient{Kind: "x25519", Fingerprint: "sha256:" + hex.EncodeToString(fp)}
	base := time.Date(2024, 1, 1, 2, 15, 0, 0, time.UTC)
	var total int64
	for i := 0; i < n; i++ {
		db := fmt.Sprintf("app%02d", i%dbs)
		// Each database gets one archive per hour-ish; the offsets keep
		// every timestamp distinct.
		created := base.Add(time.Duration(i/dbs)*time.Hour + time.Duration(i%dbs)*time.Minute + time.Duration(r.IntN(60))*time.Second)
		name, err := naming.New(db, created, ".gz")
		if err != nil {
			return err
		}
		data := make([]byte, 300+r.IntN(600))
		fill(r, data)
		dumpHash := make([]byte, 32)
		fill(r, dumpHash)
		cs := sha256.Sum256(data)
		cm := md5.Sum(data)
		m := manifest.Manifest{
			Format:   manifest.FormatVersion,
			Database: db,
			Archive:  name.Base(),
			Created:  name.Created,
			Dump: manifest.Dump{
				Size:        int64(len(data)) - 200, // age's header and tag
				SHA256:      hex.EncodeToString(dumpHash),
				Compression: "gzip",
				Source:      "file",
			},
			Ciphertext: manifest.Blob{
				Size:   int64(len(data)),
				SHA256: hex.EncodeToString(cs[:]),
				MD5:    hex.EncodeToString(cm[:]),
				CRC32:  fmt.Sprintf("%08x", crc32.ChecksumIEEE(data)),
				// Random data, no age header: any pin will do for listing.
				HeaderSHA256: hex.EncodeToString(dumpHash),
			},
			Key:       manifest.Key{Recipients: []manifest.Recipient{recipient}},
			Pgarchive: manifest.Provenance{Version: "bench", Host: "genarchives"},
		}
		js, err := m.Marshal()
		if err != nil {
			return fmt.Errorf("archive %d: %w", i, err)
		}
		key := filepath.Join(dir, filepath.FromSlash(name.Key("")))
		if err := os.MkdirAll(filepath.Dir(key), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(key, data, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(key+naming.ManifestSuffix, js, 0o644); err != nil {
			return err
		}
		total += int64(len(data) + len(js))
	}
	fmt.Printf("archives=%d databases=%d objects=%d bytes=%d\n", n, min(n, dbs), 2*n, total)
	return nil
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
