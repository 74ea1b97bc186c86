// Package naming builds and parses the object keys under which archives are
// stored. The layout is a contract (docs/format.md): list, verify, restore
// and prune find archives and their creation times from these names alone,
// because storage ModTime is not trustworthy on every backend.
package naming

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// StampLayout is the UTC timestamp inside every archive name.
const StampLayout = "20060102T150405Z"

// ManifestSuffix is appended to an archive's key to name its manifest.
const ManifestSuffix = ".manifest.json"

// SignatureSuffix is appended to an archive's key to name the SSH signature
// over its manifest's exact bytes.
const SignatureSuffix = ManifestSuffix + ".sig"

// MaxDatabaseLen matches PostgreSQL's NAMEDATALEN-1.
const MaxDatabaseLen = 63

// ValidateDatabase rejects names that would not map to exactly one folder:
// anything with a path separator, a leading dot, or characters that some
// backends mangle. PostgreSQL allows more, but such databases are rare and a
// silent mapping would make two databases share a folder.
func ValidateDatabase(db string) error {
	if db == "" {
		return errors.New("database name is empty")
	}
	if len(db) > MaxDatabaseLen {
		return fmt.Errorf("database name %q is longer than %d bytes", db, MaxDatabaseLen)
	}
	if db[0] == '.' || db[0] == '-' {
		return fmt.Errorf("database name %q must not start with %q", db, db[0])
	}
	for _, r := range db {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return fmt.Errorf("database name %q has %q: only letters, digits, '_', '-' and '.' can be archived", db, r)
		}
	}
	return nil
}

// CleanPrefix normalises the optional folder inside the remote.
func CleanPrefix(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return "", nil
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("prefix %q has an empty, '.' or '..' path element", prefix)
		}
	}
	return p, nil
}

// Name is one archive's identity, parsed from or rendered to an object key.
type Name struct {
	Database string
	Created  time.Time // UTC, whole seconds
	Seq      int       // 0 for the first archive of that second, then 1, 2, ...
	Suffix   string    // compression suffix of the dump: "", ".gz", ".zstd", ...
}

// Base renders the file name: <db>_<stamp>[-<seq>].sql<suffix>.age
func (n Name) Base() string {
	var b strings.Builder
	b.WriteString(n.Database)
	b.WriteByte('_')
	b.WriteString(n.Created.UTC().Format(StampLayout))
	if n.Seq > 0 {
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(n.Seq))
	}
	b.WriteString(".sql")
	b.WriteString(n.Suffix)
	b.WriteString(".age")
	return b.String()
}

// Key renders the object key relative to the remote root.
func (n Name) Key(prefix string) string {
	return path.Join(prefix, n.Database, n.Base())
}

// ManifestKey is the key of the manifest that marks the archive complete.
func (n Name) ManifestKey(prefix string) string {
	return n.Key(prefix) + ManifestSuffix
}

// New names an archive created at t (truncated to the second, in UTC).
func New(db string, t time.Time, suffix string) (Name, error) {
	if err := ValidateDatabase(db); err != nil {
		return Name{}, err
	}
	if err := validateSuffix(suffix); err != nil {
		return Name{}, err
	}
	return Name{Database: db, Created: t.UTC().Truncate(time.Second), Suffix: suffix}, nil
}

func validateSuffix(s string) error {
	if s == "" {
		return nil
	}
	if s[0] != '.' || len(s) < 2 || len(s) > 16 {
		return fmt.Errorf("compression suffix %q must be '.' and 1-15 letters or digits", s)
	}
	for _, r := range s[1:] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("compression suffix %q must be '.' and 1-15 lower-case letters or digits", s)
		}
	}
	return nil
}

// Parse reads a base name (no folders) back into a Name. It is the inverse of
// Base for every valid Name, and rejects everything else, so a stray file in
// the archive folder is never mistaken for an archive.
func Parse(base string) (Name, error) {
	rest, ok := strings.CutSuffix(base, ".age")
	if !ok {
		return Name{}, fmt.Errorf("%q: archive names end in .age", base)
	}
	i := strings.LastIndex(rest, ".sql")
	if i < 0 {
		return Name{}, fmt.Errorf("%q: archive names contain .sql", base)
	}
	head, suffix := rest[:i], rest[i+len(".sql"):]
	if err := validateSuffix(suffix); err != nil {
		return Name{}, fmt.Errorf("%q: %w", base, err)
	}
	us := strings.LastIndexByte(head, '_')
	if us < 0 {
		return Name{}, fmt.Errorf("%q: archive names are <database>_<stamp>", base)
	}
	db, stamp := head[:us], head[us+1:]
	seq := 0
	if len(stamp) > len(StampLayout) {
		if stamp[len(StampLayout)] != '-' {
			return Name{}, fmt.Errorf("%q: unexpected text after the timestamp", base)
		}
		digits := stamp[len(StampLayout)+1:]
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 || strconv.Itoa(n) != digits {
			return Name{}, fmt.Errorf("%q: sequence after the timestamp must be a positive number", base)
		}
		seq, stamp = n, stamp[:len(StampLayout)]
	}
	t, err := time.Parse(StampLayout, stamp)
	if err != nil {
		return Name{}, fmt.Errorf("%q: timestamp: %w", base, err)
	}
	if err := ValidateDatabase(db); err != nil {
		return Name{}, fmt.Errorf("%q: %w", base, err)
	}
	return Name{Database: db, Created: t, Seq: seq, Suffix: suffix}, nil
}

// Less orders archives oldest first; Seq breaks ties within one second.
func Less(a, b Name) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Seq < b.Seq
}
