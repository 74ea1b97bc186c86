// Package manifest defines the small JSON document written beside each
// archive after its data object has landed. Its presence means "this copy is
// complete"; its fields let verify and restore check the copy without a key.
// The format is a contract documented in docs/format.md.
package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
)

// FormatVersion is what archive writes. It is bumped only for incompatible
// changes; readers refuse versions they do not know instead of guessing.
// Format 2 pins the age header (Blob.HeaderSHA256) so that a signed
// manifest vouches for the data; format 1 manifests count as unsigned.
// Format 3 adds the dump's format (Dump.Format), which readers of format 2
// would refuse as an unknown field. Format 4 adds base backups (Base, and
// Dump.Format "basebackup").
const FormatVersion = 4

// DumpFormatVersion is what archive writes for dumps: format 4 only adds
// base backups, so a dump's manifest stays readable by format-3 readers.
const DumpFormatVersion = 3

// OldestFormat is the oldest format readers still accept.
const OldestFormat = 1

// MaxSize bounds what readers accept, so a hostile object can't exhaust memory.
const MaxSize = 64 << 10

// Manifest describes one archive.
type Manifest struct {
	Format     int        `json:"format"`
	Database   string     `json:"database"`
	Archive    string     `json:"archive"` // base name of the data object
	Created    time.Time  `json:"created"` // equals the timestamp in Archive
	Dump       Dump       `json:"dump"`
	Ciphertext Blob       `json:"ciphertext"`
	Key        Key        `json:"key"`
	Pgarchive  Provenance `json:"pgarchive"`
	// Base describes a base backup (format 4 on); nil for dumps.
	Base *Base `json:"base,omitempty"`
}

// Dump is the plaintext as pg_dump (and its compressor) produced it.
type Dump struct {
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Compression string `json:"compression"` // "gzip", "zstd", "none", ...
	Source      string `json:"source"`      // "file" or "stdin"
	// Format is what archive's dump check found (format 3 on): "plain"
	// (pg_dump), "dumpall" (pg_dumpall), "custom" (pg_dump -Fc) or "tar"
	// (pg_dump -Ft); absent when the check was skipped. Readers that load
	// a dump look at its first bytes too, so an older manifest loses
	// nothing.
	Format string `json:"format,omitempty"`
}

// DumpFormats are the values of Dump.Format.
var DumpFormats = []string{"plain", "dumpall", "custom", "tar", BaseBackupFormat}

// BaseBackupFormat is Dump.Format for pg_basebackup's tar stream.
const BaseBackupFormat = "basebackup"

// Blob is the stored age file. MD5 and CRC32 are present when archive
// computed them to verify an upstream (S3 single-part uploads, local folders):
// they let verify check such upstreams' own hashes without downloading.
type Blob struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	MD5    string `json:"md5,omitempty"`
	CRC32  string `json:"crc32,omitempty"`
	// HeaderSHA256 pins the age header (through its MAC line); required
	// from format 2 on. See docs/format.md for why it makes a signed
	// manifest vouch for every decrypted byte.
	HeaderSHA256 string `json:"header_sha256,omitempty"`
}

// Key says what can decrypt the archive, never how: no secret, no passphrase.
type Key struct {
	Recipients []Recipient `json:"recipients"`
}

// Recipient is one age recipient the file key was wrapped for.
type Recipient struct {
	Kind        string `json:"kind"`                  // x25519, mlkem768x25519, ssh-ed25519, ssh-rsa, scrypt
	Fingerprint string `json:"fingerprint,omitempty"` // absent for scrypt: a passphrase hash would aid guessing
}

// Provenance records which pgarchive wrote the archive.
type Provenance struct {
	Version string `json:"version"`
	Host    string `json:"host,omitempty"`
}

// Marshal renders m as indented JSON after validating it, so a malformed
// manifest is never written.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse reads a manifest strictly: unknown fields, trailing data, a newer
// format or inconsistent values are errors.
func Parse(r io.Reader) (*Manifest, error) {
	data, err := readBounded(r, "manifest")
	if err != nil {
		return nil, err
	}
	var probe struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("manifest is not JSON: %w", err)
	}
	if probe.Format < OldestFormat || probe.Format > FormatVersion {
		return nil, fmt.Errorf("manifest format %d is not supported (this pgarchive reads formats %d to %d)", probe.Format, OldestFormat, FormatVersion)
	}
	var m Manifest
	if err := decodeStrict(data, &m, "manifest"); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// readBounded reads at most MaxSize bytes: a hostile object can't exhaust
// memory.
func readBounded(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", what, MaxSize)
	}
	return data, nil
}

// decodeStrict decodes one JSON object into v: unknown fields and
// trailing data are errors.
func decodeStrict(data []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: trailing data after the JSON object", what)
	}
	return nil
}

// Validate checks the manifest's internal consistency, including that its
// name, database and time agree with each other.
func (m *Manifest) Validate() error {
	if m.Format < OldestFormat || m.Format > FormatVersion {
		return fmt.Errorf("manifest: format %d, want %d to %d", m.Format, OldestFormat, FormatVersion)
	}
	switch {
	case m.Format >= 2:
		if err := checkSHA256(m.Ciphertext.HeaderSHA256); err != nil {
			return fmt.Errorf("manifest: ciphertext header_sha256: %w", err)
		}
	case m.Ciphertext.HeaderSHA256 != "":
		return errors.New("manifest: format 1 has no header_sha256")
	}
	n, err := naming.Parse(m.Archive)
	if err != nil {
		return fmt.Errorf("manifest: archive: %w", err)
	}
	if n.Database != m.Database {
		return fmt.Errorf("manifest: database %q does not match archive %q", m.Database, m.Archive)
	}
	if !n.Created.Equal(m.Created) {
		return fmt.Errorf("manifest: created %s does not match archive %q", m.Created.Format(time.RFC3339), m.Archive)
	}
	c, ok := naming.CompressionBySuffix(n.Suffix)
	if !ok || c.Name != m.Dump.Compression {
		return fmt.Errorf("manifest: compression %q does not match archive %q", m.Dump.Compression, m.Archive)
	}
	switch {
	case m.Dump.Format == "":
	case m.Format < 3:
		return fmt.Errorf("manifest: format %d has no dump format", m.Format)
	case !slices.Contains(DumpFormats, m.Dump.Format):
		return fmt.Errorf("manifest: dump format %q is not one of %s", m.Dump.Format, strings.Join(DumpFormats, ", "))
	}
	if err := m.validateBase(n); err != nil {
		return err
	}
	if m.Dump.Source != "file" && m.Dump.Source != "stdin" {
		return fmt.Errorf("manifest: dump source %q is neither file nor stdin", m.Dump.Source)
	}
	if m.Dump.Size <= 0 || m.Ciphertext.Size <= m.Dump.Size {
		return fmt.Errorf("manifest: sizes dump=%d ciphertext=%d are impossible", m.Dump.Size, m.Ciphertext.Size)
	}
	if err := checkSHA256(m.Dump.SHA256); err != nil {
		return fmt.Errorf("manifest: dump sha256: %w", err)
	}
	if err := checkSHA256(m.Ciphertext.SHA256); err != nil {
		return fmt.Errorf("manifest: ciphertext sha256: %w", err)
	}
	if err := checkHex(m.Ciphertext.MD5, 16); err != nil {
		return fmt.Errorf("manifest: ciphertext md5: %w", err)
	}
	if err := checkHex(m.Ciphertext.CRC32, 4); err != nil {
		return fmt.Errorf("manifest: ciphertext crc32: %w", err)
	}
	if err := validateKey(m.Key); err != nil {
		return err
	}
	if m.Pgarchive.Version == "" {
		return errors.New("manifest: pgarchive version is empty")
	}
	return nil
}

func validateKey(k Key) error {
	if len(k.Recipients) == 0 {
		return errors.New("manifest: no recipients")
	}
	for _, r := range k.Recipients {
		if r.Kind == "" {
			return errors.New("manifest: recipient without kind")
		}
		if r.Kind == "scrypt" && r.Fingerprint != "" {
			return errors.New("manifest: scrypt recipient must not carry a fingerprint")
		}
	}
	return nil
}

// checkHex accepts an absent optional digest or n bytes in lower-case hex.
func checkHex(s string, n int) error {
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n || hex.EncodeToString(b) != s {
		return fmt.Errorf("%q is not %d lower-case hex digits", s, 2*n)
	}
	return nil
}

func checkSHA256(s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != s {
		return fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	return nil
}
