package manifest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/walname"
)

func walSample() *WAL {
	return &WAL{Format: WALFormatVersion, Kind: WALKind, SystemID: "7312345678901234567", Major: 15,
		File: "000000010000000000000002", Created: time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC),
		Plaintext:  Plain{Size: 16 << 20, SHA256: strings.Repeat("ab", 32), Compression: "zstd"},
		Ciphertext: Blob{Size: 1234, SHA256: strings.Repeat("cd", 32), HeaderSHA256: strings.Repeat("12", 32)},
		Key:        Key{Recipients: []Recipient{{Kind: "x25519", Fingerprint: "sha256:01"}}},
		Pgarchive:  Provenance{Version: "test"}}
}

func TestWALRoundTripAndMatches(t *testing.T) {
	b, err := walSample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w, err := ParseWAL(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := walname.Cluster{SystemID: 7312345678901234567, Major: 15}
	if err := w.Matches(c, "000000010000000000000002"); err != nil {
		t.Error(err)
	}
	if err := w.Matches(c, "000000010000000000000003"); err == nil {
		t.Error("another file's manifest matched")
	}
	if err := w.Matches(walname.Cluster{SystemID: 1, Major: 15}, w.File); err == nil {
		t.Error("another cluster's manifest matched")
	}
	// A dump manifest is no WAL manifest, nor the other way round.
	dump, _ := sample().Marshal()
	if _, err := ParseWAL(bytes.NewReader(dump)); err == nil {
		t.Error("ParseWAL took a dump manifest")
	}
	if _, err := Parse(bytes.NewReader(b)); err == nil {
		t.Error("Parse took a WAL manifest")
	}
}

func TestWALRejects(t *testing.T) {
	for name, change := range map[string]func(w *WAL){
		"kind":        func(w *WAL) { w.Kind = "dump" },
		"file":        func(w *WAL) { w.File = "../etc/passwd" },
		"sysid":       func(w *WAL) { w.SystemID = "0" },
		"size":        func(w *WAL) { w.Plaintext.Size = 0 },
		"compression": func(w *WAL) { w.Plaintext.Compression = "gzip" },
		"header pin":  func(w *WAL) { w.Ciphertext.HeaderSHA256 = "" },
		"recipients":  func(w *WAL) { w.Key.Recipients = nil },
		"created":     func(w *WAL) { w.Created = time.Time{} },
	} {
		w := walSample()
		change(w)
		if _, err := w.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it", name)
		}
	}
}

func FuzzParseWAL(f *testing.F) {
	good, _ := walSample().Marshal()
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWAL(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := w.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		if _, err := ParseWAL(bytes.NewReader(again)); err != nil {
			t.Fatal(err)
		}
	})
}
