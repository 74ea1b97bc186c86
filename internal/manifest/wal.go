package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pgarchive/pgarchive/internal/walname"
)

// WALFormatVersion is the one format of WAL manifests.
const WALFormatVersion = 1

// WALKind tells a WAL manifest from a dump's at a glance.
const WALKind = "wal"

// WAL describes one archived WAL file (segment, .partial, .history or
// .backup): the object <file>.age beside it holds age(compression(file)).
type WAL struct {
	Format    int       `json:"format"`
	Kind      string    `json:"kind"`
	SystemID  string    `json:"system_identifier"`
	Major     int       `json:"major"`
	File      string    `json:"file"`
	Created   time.Time `json:"created"`
	Plaintext Plain     `json:"plaintext"`
	// Ciphertext is the stored object; HeaderSHA256 is required, as in
	// dump manifests from format 2 on, so a signature vouches for the data.
	Ciphertext Blob       `json:"ciphertext"`
	Key        Key        `json:"key"`
	Pgarchive  Provenance `json:"pgarchive"`
}

// Plain is the WAL file as PostgreSQL handed it over. SHA256 decides
// whether a second push of the same name is the same file.
type Plain struct {
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Compression string `json:"compression"` // "zstd" or "none", applied before encryption
}

// WALCompressions are the values of Plain.Compression.
var WALCompressions = []string{"zstd", "none"}

// Marshal renders w as indented JSON after validating it.
func (w *WAL) Marshal() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseWAL reads a WAL manifest as strictly as Parse reads a dump's.
func ParseWAL(r io.Reader) (*WAL, error) {
	data, err := readBounded(r, "WAL manifest")
	if err != nil {
		return nil, err
	}
	var w WAL
	if err := decodeStrict(data, &w, "WAL manifest"); err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// Cluster is the cluster the file belongs to.
func (w *WAL) Cluster() (walname.Cluster, error) {
	b := Base{SystemID: w.SystemID, Major: w.Major}
	return b.Cluster()
}

// Validate checks the manifest's own consistency. Whether it is the
// manifest of the file a reader asked for is the reader's check (Matches).
func (w *WAL) Validate() error {
	if w.Format != WALFormatVersion || w.Kind != WALKind {
		return fmt.Errorf("WAL manifest: format %d kind %q, want %d %q", w.Format, w.Kind, WALFormatVersion, WALKind)
	}
	if _, err := w.Cluster(); err != nil {
		return fmt.Errorf("WAL manifest: %w", err)
	}
	if _, err := walname.Parse(w.File); err != nil {
		return fmt.Errorf("WAL manifest: %w", err)
	}
	if w.Created.IsZero() {
		return errors.New("WAL manifest: no creation time")
	}
	p := w.Plaintext
	if p.Size <= 0 || p.Size > 1<<30 {
		return fmt.Errorf("WAL manifest: plaintext size %d is impossible", p.Size)
	}
	if err := checkSHA256(p.SHA256); err != nil {
		return fmt.Errorf("WAL manifest: plaintext sha256: %w", err)
	}
	ok := false
	for _, c := range WALCompressions {
		ok = ok || c == p.Compression
	}
	if !ok {
		return fmt.Errorf("WAL manifest: compression %q is not zstd or none", p.Compression)
	}
	c := w.Ciphertext
	if c.Size <= 0 {
		return fmt.Errorf("WAL manifest: ciphertext size %d", c.Size)
	}
	for name, sum := range map[string]string{"sha256": c.SHA256, "header_sha256": c.HeaderSHA256} {
		if err := checkSHA256(sum); err != nil {
			return fmt.Errorf("WAL manifest: ciphertext %s: %w", name, err)
		}
	}
	if err := checkHex(c.MD5, 16); err != nil {
		return fmt.Errorf("WAL manifest: ciphertext md5: %w", err)
	}
	if err := checkHex(c.CRC32, 4); err != nil {
		return fmt.Errorf("WAL manifest: ciphertext crc32: %w", err)
	}
	if err := validateKey(w.Key); err != nil {
		return fmt.Errorf("WAL %w", err)
	}
	if w.Pgarchive.Version == "" {
		return errors.New("WAL manifest: pgarchive version is empty")
	}
	return nil
}

// Matches refuses a manifest that is valid but not the one of file in
// cluster c: one copied from another key by whoever can write the store.
func (w *WAL) Matches(c walname.Cluster, file string) error {
	got, err := w.Cluster()
	if err != nil {
		return err
	}
	if got != c || w.File != file {
		return fmt.Errorf("the manifest describes %s of %s, not %s of %s", w.File, got, file, c)
	}
	return nil
}
