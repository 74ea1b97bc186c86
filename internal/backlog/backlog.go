// Package backlog keeps encrypted archives that some upstream did not take,
// so that a later run (or `pgarchive retry`) can deliver them: nothing is
// lost when an upstream is down for a night.
//
// Layout under the state directory (only ciphertext, never plaintext):
//
//	backlog/entries/<key>/data.age       the age file, byte for byte what the other upstreams got
//	backlog/entries/<key>/manifest.json  its manifest, as put on the upstreams that took it
//	backlog/entries/<key>/manifest.json.sig  its signature, when the archive is signed
//	backlog/entries/<key>/entry.json     which upstreams still lack it (and which hold it)
//	backlog/tmp/<random>/                an archive being spooled; never read as an entry
//	backlog/lock                         taken while an entry is added (the size cap)
//
// <key> is the archive's object key ([prefix/]<db>/<archive>). An entry
// appears by renaming a finished directory into entries/ and disappears by
// renaming it out again before deleting it, so a directory under entries/
// is always whole. Files are 0600 (owner only); directories 0750, so that
// the figures (names and sizes, see Usage) can be read by a group the state
// directory itself admits (NixOS: 0750, group pgarchive), never the data.
// Whatever root creates here (root's wrapper runs archive and retry too)
// is handed to the state directory's owner and group, so that the service
// user can still lock, update and remove it.
package backlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
)

// dirMode lets a group the state directory admits list entries and stat
// their files; the files themselves stay the owner's.
const dirMode = 0o750

const (
	dataFile     = "data.age"
	manifestFile = "manifest.json"
	sigFile      = "manifest.json.sig" // absent for unsigned archives
	entryFile    = "entry.json"
)

// Root is the backlog's directory inside stateDir.
func Root(stateDir string) string { return filepath.Join(stateDir, "backlog") }

func entriesDir(stateDir string) string { return filepath.Join(Root(stateDir), "entries") }
func tmpDir(stateDir string) string     { return filepath.Join(Root(stateDir), "tmp") }

// Meta is entry.json: what is still to be done for one archive.
type Meta struct {
	Key     string    `json:"key"`
	Remote  string    `json:"remote,omitempty"`
	Spooled time.Time `json:"spooled"`
	// Pending upstreams (names as rclone.conf spells them) still lack a
	// complete copy; Held ones had one verified when the entry was written
	// or by a retry since.
	Pending []string `json:"pending"`
	Held    []string `json:"held"`
	// LastErrors says why each pending upstream failed last time.
	LastErrors map[string]string `json:"last_errors,omitempty"`
}

// Entry is one archive waiting in the backlog.
type Entry struct {
	Dir  string // absolute path of the entry's directory
	Name naming.Name
	Key  string
	Size int64 // of data.age
	Meta Meta
}

// DataPath is the spooled ciphertext.
func (e *Entry) DataPath() string { return filepath.Join(e.Dir, dataFile) }

// ManifestPath is the manifest body.
func (e *Entry) ManifestPath() string { return filepath.Join(e.Dir, manifestFile) }

// Summary sums the backlog up, for metrics and the daily notification.
type Summary struct {
	Archives  int
	Bytes     int64                    // ciphertext held
	Oldest    time.Time                // creation time (from the name) of the oldest archive; zero when empty
	Databases map[string]DatabaseUsage // by database name
}

// DatabaseUsage is one database's part of the backlog.
type DatabaseUsage struct {
	Archives int
	Bytes    int64
	Oldest   time.Time
}

// Usage reads the backlog in stateDir without locking (entries appear and
// disappear whole). An empty stateDir (backlog off) or a missing backlog
// gives a zero Usage.
func Usage(stateDir string) (Summary, error) {
	u := Summary{Databases: map[string]DatabaseUsage{}}
	if stateDir == "" {
		return u, nil
	}
	entries, err := scan(stateDir, "", false)
	if err != nil {
		return u, err
	}
	for _, e := range entries {
		u.Archives++
		u.Bytes += e.Size
		if u.Oldest.IsZero() || e.Name.Created.Before(u.Oldest) {
			u.Oldest = e.Name.Created
		}
		d := u.Databases[e.Name.Database]
		d.Archives++
		d.Bytes += e.Size
		if d.Oldest.IsZero() || e.Name.Created.Before(d.Oldest) {
			d.Oldest = e.Name.Created
		}
		u.Databases[e.Name.Database] = d
	}
	return u, nil
}

// List returns the entries (of database db, or all when db is ""), oldest
// first. An entry whose entry.json can't be read is reported as an error
// naming it, not skipped: it still holds an archive.
func List(stateDir, db string) ([]*Entry, error) {
	return scan(stateDir, db, true)
}

// scan finds entries; without meta it reads only names and sizes, which
// the backlog's group may do.
func scan(stateDir, db string, meta bool) ([]*Entry, error) {
	root := entriesDir(stateDir)
	var out []*Entry
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() || p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		n, ok := ParseKey(filepath.ToSlash(rel))
		if !ok {
			return nil // a prefix or database folder: descend
		}
		if db == "" || n.Database == db {
			e, err := load(p, n, filepath.ToSlash(rel), meta)
			if err != nil {
				errs = append(errs, err)
			} else {
				out = append(out, e)
			}
		}
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("backlog %s: %w", root, err)
	}
	sortOldestFirst(out)
	return out, errors.Join(errs...)
}

func sortOldestFirst(es []*Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Name, es[j].Name
		if !naming.SameSlot(a, b) {
			return naming.Less(a, b)
		}
		return es[i].Key < es[j].Key
	})
}

// ParseKey accepts an archive key, [prefix/]<db>/<archive of db>, and
// nothing else, so that folders above an entry are never taken for one.
func ParseKey(key string) (naming.Name, bool) {
	dir, base := path.Split(key)
	n, err := naming.Parse(base)
	if err != nil || dir == "" {
		return naming.Name{}, false
	}
	dir = strings.TrimSuffix(dir, "/")
	if path.Base(dir) != n.Database {
		return naming.Name{}, false
	}
	prefix := ""
	if p := path.Dir(dir); p != "." {
		prefix = p
	}
	if clean, err := naming.CleanPrefix(prefix); err != nil || clean != prefix || n.Key(prefix) != key {
		return naming.Name{}, false
	}
	return n, true
}

func load(dir string, n naming.Name, key string, meta bool) (*Entry, error) {
	e := &Entry{Dir: dir, Name: n, Key: key}
	st, err := os.Stat(filepath.Join(dir, dataFile))
	if err != nil {
		return nil, fmt.Errorf("backlog entry %s: %w", dir, err)
	}
	e.Size = st.Size()
	if !meta {
		return e, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, entryFile))
	if err != nil {
		return nil, fmt.Errorf("backlog entry %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &e.Meta); err != nil {
		return nil, fmt.Errorf("backlog entry %s: %s: %w", dir, entryFile, err)
	}
	if e.Meta.Key != key {
		return nil, fmt.Errorf("backlog entry %s: %s names %q, not %q", dir, entryFile, e.Meta.Key, key)
	}
	return e, nil
}
