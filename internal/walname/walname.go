// Package walname names the files of PostgreSQL's write-ahead log and the
// objects pgarchive stores them as. It is pure: wal-push, wal-fetch, list
// and prune all parse names here, and nothing read from the store is used
// as a name before Parse accepted it.
//
// Layout (docs/format.md): <prefix>/wal/<system identifier>/<major>/<file>.age,
// with the manifest and signature beside it as for dump archives. The
// cluster's system identifier and PostgreSQL major version are part of the
// key, so two clusters (or one cluster before and after pg_upgrade) never
// mix their WAL.
package walname

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Dir is the folder, below the prefix, that holds every cluster's WAL.
const Dir = "wal"

// Suffix ends every stored WAL object's key.
const Suffix = ".age"

// Kind is what a WAL archive file is.
type Kind int

const (
	// Segment is a whole WAL segment: 24 hex digits.
	Segment Kind = iota
	// Partial is the last, incomplete segment of a timeline that a
	// promotion ended: <segment>.partial.
	Partial
	// History is a timeline history file: <timeline>.history.
	History
	// Backup is a backup history file: <segment>.<offset>.backup.
	Backup
)

func (k Kind) String() string {
	return [...]string{"segment", "partial", "history", "backup"}[k]
}

// File is one parsed WAL archive file name.
type File struct {
	Name     string
	Kind     Kind
	Timeline uint32
	// Log and Seg are the segment's two halves (for Segment, Partial and
	// Backup); with the segment size they give its number (SegNo).
	Log, Seg uint32
	// Offset is a backup history file's start offset inside its segment.
	Offset uint32
}

// MaxNameLen bounds what Parse looks at.
const MaxNameLen = 64

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 16, 32) // callers checked 8 upper-case hex digits
	return uint32(v)
}

// Parse accepts exactly the names PostgreSQL gives archive_command: a
// segment (24 upper-case hex digits), a .partial segment, a timeline's
// .history file and a .backup file. Timeline 0 does not exist.
func Parse(name string) (File, error) {
	if len(name) > MaxNameLen {
		return File{}, fmt.Errorf("WAL file name %.64q... is too long", name)
	}
	bad := func(why string) (File, error) {
		return File{}, fmt.Errorf("%q is not a WAL file name: %s", name, why)
	}
	f := File{Name: name}
	switch {
	case len(name) == 24:
		f.Kind = Segment
	case strings.HasSuffix(name, ".partial") && len(name) == 24+len(".partial"):
		f.Kind = Partial
	case strings.HasSuffix(name, ".history") && len(name) == 8+len(".history"):
		f.Kind = History
	case strings.HasSuffix(name, ".backup") && len(name) == 24+1+8+len(".backup") && name[24] == '.':
		f.Kind = Backup
	default:
		return bad("expected a segment (24 hex digits), <segment>.partial, <timeline>.history or <segment>.<offset>.backup")
	}
	var digits string
	if f.Kind == History {
		digits = name[:8]
	} else {
		digits = name[:24]
	}
	if !isHex(digits) {
		return bad("not upper-case hex digits")
	}
	f.Timeline = hex32(digits[:8])
	if f.Timeline == 0 {
		return bad("timeline 0 does not exist")
	}
	if f.Kind != History {
		f.Log, f.Seg = hex32(digits[8:16]), hex32(digits[16:24])
	}
	if f.Kind == Backup {
		off := name[25:33]
		if !isHex(off) {
			return bad("backup offset is not upper-case hex")
		}
		f.Offset = hex32(off)
	}
	return f, nil
}

// SegmentsPerLog is how many segments one 4 GiB "log" holds.
func SegmentsPerLog(segSize int64) uint64 { return uint64(0x100000000) / uint64(segSize) }

// ValidSegmentSize accepts PostgreSQL's wal_segment_size values: a power
// of two from 1 MiB to 1 GiB.
func ValidSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// SegNo is the segment's number (XLogSegNo) for segments of segSize bytes.
// A name whose Seg half is out of range for segSize is an error.
func (f File) SegNo(segSize int64) (uint64, error) {
	if f.Kind == History {
		return 0, fmt.Errorf("%s: a history file has no segment number", f.Name)
	}
	per := SegmentsPerLog(segSize)
	if uint64(f.Seg) >= per {
		return 0, fmt.Errorf("%s: segment %08X is out of range for %d-byte segments", f.Name, f.Seg, segSize)
	}
	return uint64(f.Log)*per + uint64(f.Seg), nil
}

// SegmentName renders segment segNo of timeline tli (XLogFileName).
func SegmentName(tli uint32, segNo uint64, segSize int64) string {
	per := SegmentsPerLog(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, uint32(segNo/per), uint32(segNo%per))
}

// HistoryName is timeline tli's history file (TLHistoryFileName).
func HistoryName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }

// Cluster identifies whose WAL it is.
type Cluster struct {
	SystemID uint64 // pg_control's system identifier
	Major    int    // PostgreSQL major version (PG_VERSION)
}

func (c Cluster) String() string {
	return fmt.Sprintf("system %d (PostgreSQL %d)", c.SystemID, c.Major)
}

// Validate refuses the zero identifier and majors PostgreSQL never had
// with continuous archiving in this form (10 renamed xlog to wal).
func (c Cluster) Validate() error {
	if c.SystemID == 0 {
		return errors.New("system identifier 0 is not a cluster's")
	}
	if c.Major < 10 || c.Major > 99 {
		return fmt.Errorf("PostgreSQL major version %d is not supported (10 and later)", c.Major)
	}
	return nil
}

// Folder is the cluster's WAL folder relative to the remote root.
func (c Cluster) Folder(prefix string) string {
	return path.Join(prefix, Dir, strconv.FormatUint(c.SystemID, 10), strconv.Itoa(c.Major))
}

// Key is the object key of WAL file name in c's folder.
func (c Cluster) Key(prefix, name string) string { return path.Join(c.Folder(prefix), name+Suffix) }

// BaseDatabase is the name base backups of c are archived under, as if
// they were dumps of a database of that name: "base-<sysid>-pg<major>".
// It passes naming.ValidateDatabase, so list, verify, heal, backlog and
// prune treat base backups as archives.
func (c Cluster) BaseDatabase() string {
	return "base-" + strconv.FormatUint(c.SystemID, 10) + "-pg" + strconv.Itoa(c.Major)
}

// ParseBaseDatabase is BaseDatabase's inverse; ok is false for any other
// database name.
func ParseBaseDatabase(db string) (Cluster, bool) {
	rest, ok := strings.CutPrefix(db, "base-")
	if !ok {
		return Cluster{}, false
	}
	id, major, ok := strings.Cut(rest, "-pg")
	if !ok {
		return Cluster{}, false
	}
	sys, err1 := strconv.ParseUint(id, 10, 64)
	m, err2 := strconv.Atoi(major)
	c := Cluster{SystemID: sys, Major: m}
	if err1 != nil || err2 != nil || c.Validate() != nil || c.BaseDatabase() != db {
		return Cluster{}, false
	}
	return c, true
}

// ParseKey reads a key listed below c's folder back into a File; ok is
// false for anything else (manifests and signatures included).
func ParseKey(c Cluster, prefix, key string) (File, bool) {
	rel, ok := strings.CutPrefix(key, c.Folder(prefix)+"/")
	if !ok {
		return File{}, false
	}
	name, ok := strings.CutSuffix(rel, Suffix)
	if !ok || strings.Contains(name, "/") {
		return File{}, false
	}
	f, err := Parse(name)
	return f, err == nil
}
