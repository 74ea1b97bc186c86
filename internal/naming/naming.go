// Package naming builds and parses the object keys under which archives are
// stored. The layout is a contract (docs/format.md): list, verify, restore
// and prune find archives and their creation times from these names alone,
// because storage ModTime is not trustworthy on every backend.
package naming

import (
	"crypto/rand"
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

// AllDatabases is the database name of a pg_dumpall archive: NixOS'
// postgresqlBackup with backupAll writes all.sql*.
const AllDatabases = "all"

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
	// Seq numbered archives of one second before run IDs existed: 0 for
	// the first, then 1, 2, ... Read, never written any more.
	Seq int
	// ID is the run's own component (IDLen characters: a lower-case
	// letter, then lower-case letters and digits 2-7; see NewID), so that
	// two runs of one database in one second, on one host or two, never
	// pick the same name, without any read-then-write check.
	ID     string
	Suffix string // compression suffix of the dump: "", ".gz", ".zstd", ...
	// Tar marks a base backup (pg_basebackup's tar stream, named .tar
	// instead of .sql); see walname.Cluster.BaseDatabase.
	Tar bool
}

// IDLen is the length of a run ID.
const IDLen = 8

// idDigits are base 32 in ASCII order, so IDs sort as the numbers they
// encode.
const idDigits = "234567abcdefghijklmnopqrstuvwxyz"

// NewID makes the run ID for an archive started at t: "r", then t's
// millisecond within its second in two base-32 digits, so names of one
// second still sort by time, then five random digits (2^25 choices for
// runs started in the same millisecond).
func NewID(t time.Time) string {
	ms := t.Nanosecond() / int(time.Millisecond)
	b := make([]byte, IDLen-3)
	if _, err := rand.Read(b); err != nil {
		panic("naming: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	out := []byte{'r', idDigits[ms/32], idDigits[ms%32]}
	for _, c := range b {
		out = append(out, idDigits[c%32])
	}
	return string(out)
}

// validID accepts IDLen base-32 digits starting with a letter, which
// tells an ID from the old sequence numbers; readers don't insist on NewID's
// layout beyond that.
func validID(s string) bool {
	if len(s) != IDLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Base renders the file name: <db>_<stamp>[-<id>|-<seq>].{sql|tar}<suffix>.age
func (n Name) Base() string {
	var b strings.Builder
	b.WriteString(n.Database)
	b.WriteByte('_')
	b.WriteString(n.Created.UTC().Format(StampLayout))
	switch {
	case n.ID != "":
		b.WriteByte('-')
		b.WriteString(n.ID)
	case n.Seq > 0:
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(n.Seq))
	}
	if n.Tar {
		b.WriteString(".tar")
	} else {
		b.WriteString(".sql")
	}
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

// New names an archive created at t (truncated to the second, in UTC),
// without a run ID; archive adds one (NewID).
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
	// The last ".sql" or ".tar" ends the stamp: a database may be named
	// x.tar, but its archives still end in .sql<suffix>.age.
	i, tar := strings.LastIndex(rest, ".sql"), false
	if j := strings.LastIndex(rest, ".tar"); j > i {
		i, tar = j, true
	}
	if i < 0 {
		return Name{}, fmt.Errorf("%q: archive names contain .sql (or .tar for a base backup)", base)
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
	seq, id := 0, ""
	if len(stamp) > len(StampLayout) {
		if stamp[len(StampLayout)] != '-' {
			return Name{}, fmt.Errorf("%q: unexpected text after the timestamp", base)
		}
		tail := stamp[len(StampLayout)+1:]
		stamp = stamp[:len(StampLayout)]
		if validID(tail) {
			id = tail
		} else {
			n, err := strconv.Atoi(tail)
			if err != nil || n < 1 || strconv.Itoa(n) != tail {
				return Name{}, fmt.Errorf("%q: after the timestamp comes a run ID or a positive sequence number", base)
			}
			seq = n
		}
	}
	t, err := time.Parse(StampLayout, stamp)
	if err != nil {
		return Name{}, fmt.Errorf("%q: timestamp: %w", base, err)
	}
	if err := ValidateDatabase(db); err != nil {
		return Name{}, fmt.Errorf("%q: %w", base, err)
	}
	return Name{Database: db, Created: t, Seq: seq, ID: id, Suffix: suffix, Tar: tar}, nil
}

// Less orders archives oldest first by their second; within one, Seq, then
// ID: two runs in the same second get an order, arbitrary but the same for
// every reader.
func Less(a, b Name) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	if a.Seq != b.Seq {
		return a.Seq < b.Seq
	}
	return a.ID < b.ID
}

// SameSlot reports whether a and b sort as equals (Less neither way).
func SameSlot(a, b Name) bool {
	return a.Created.Equal(b.Created) && a.Seq == b.Seq && a.ID == b.ID
}
