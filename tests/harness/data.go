package harness

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math/bits"
	"math/rand/v2"
)

func chacha(seed int64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	copy(s[8:], "pgarchive-harness-random")
	return rand.NewChaCha8(s)
}

// RandomBytes returns n deterministic, incompressible bytes for seed.
func RandomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	_, _ = chacha(seed).Read(b)
	return b
}

// RandomReader streams the same bytes as RandomBytes(seed, n) without holding
// them in memory, for multi-GiB inputs.
func RandomReader(seed int64, n int64) io.Reader {
	return io.LimitReader(chacha(seed), n)
}

const (
	hashBase = 0x100000001b3 // odd, so multiplication is invertible mod 2^64
	hashMix  = 0x9e3779b97f4a7c15
	// Up to exactWindows needle windows are all indexed (stride 1). Larger
	// needles are sampled so the index stays under maxSamples entries
	// (~12 bytes each at load factor 1/2).
	exactWindows = 1 << 20
	maxSamples   = 1 << 21
)

// ContainsRun reports whether some run-byte substring of needle occurs in
// haystack, e.g. whether a stored object leaks any 32-byte piece of the
// plaintext.
//
// Approach (Rabin-Karp with a set of needle windows): a polynomial rolling
// hash indexes needle windows in an open-addressing table; the haystack is
// then rolled at stride 1 and every table hit is confirmed with bytes.Equal,
// so there are no false positives. If needle has at most 2^20 windows, every
// window is indexed and the answer is exact. Larger needles are sampled: only
// windows starting at multiples of stride are indexed, stride =
// max(16, windows/2^21), which still finds every common substring of length
// >= run+stride-1 (such a substring contains a whole sampled window). For a
// 16 MiB plaintext and run 32 that guarantees leaks of 47 bytes or more;
// for 1 GiB, 543 bytes. Cost: O(len(needle)+len(haystack)) time, memory
// bounded by the table (≤ ~50 MB), independent of haystack size.
func ContainsRun(haystack, needle []byte, run int) bool {
	if run <= 0 {
		panic("ContainsRun: run must be positive")
	}
	if len(needle) < run || len(haystack) < run {
		return false
	}
	if uint64(len(needle)) >= 1<<32 {
		panic("ContainsRun: needle larger than 4 GiB")
	}
	windows := len(needle) - run + 1
	stride := 1
	if windows > exactWindows {
		stride = max(16, (windows+maxSamples-1)/maxSamples)
	}
	samples := (windows + stride - 1) / stride
	shift := 64 - bits.Len(uint(2*samples))
	size := 1 << (64 - shift)
	keys := make([]uint64, size)
	pos := make([]uint32, size) // needle offset + 1; 0 marks an empty slot
	mask := uint64(size - 1)

	topPow := uint64(1) // hashBase^(run-1), to drop the outgoing byte
	for i := 1; i < run; i++ {
		topPow *= hashBase
	}
	slot := func(h uint64) uint64 { return (h * hashMix) >> shift }

	var h uint64
	for i, c := range needle {
		if i >= run {
			h -= uint64(needle[i-run]) * topPow
		}
		h = h*hashBase + uint64(c)
		start := i - run + 1
		if start < 0 || start%stride != 0 {
			continue
		}
		w := needle[start : start+run]
		for s := slot(h); ; s = (s + 1) & mask {
			if pos[s] == 0 {
				keys[s], pos[s] = h, uint32(start+1)
				break
			}
			// Skip repeats (zero pages etc.): they would make probe chains
			// quadratic and add nothing.
			if keys[s] == h && bytes.Equal(needle[pos[s]-1:int(pos[s])-1+run], w) {
				break
			}
		}
	}

	h = 0
	for j, c := range haystack {
		if j >= run {
			h -= uint64(haystack[j-run]) * topPow
		}
		h = h*hashBase + uint64(c)
		if j < run-1 {
			continue
		}
		for s := slot(h); pos[s] != 0; s = (s + 1) & mask {
			if keys[s] == h {
				p := int(pos[s]) - 1
				if bytes.Equal(needle[p:p+run], haystack[j-run+1:j+1]) {
					return true
				}
			}
		}
	}
	return false
}

// completion is how pg_dump ends a plain-SQL dump.
const completion = "\n--\n-- PostgreSQL database dump complete\n--\n\n"

// RandomDump is n incompressible bytes shaped as a dump archive accepts: a
// plain-SQL body ending with pg_dump's completion comment, gzip'd (stored
// blocks, so it stays incompressible and fast) when gz is set, as a
// <db>.sql.gz file holds it.
func RandomDump(seed int64, n int, gz bool) []byte {
	body := append(RandomBytes(seed, n), completion...)
	if !gz {
		return body
	}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.NoCompression)
	w.Write(body)
	w.Close()
	return b.Bytes()
}
