package backlog

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// Spool receives an archive's ciphertext while it is uploaded (as
// archive.Job.Spool) and becomes a backlog entry if some upstream failed.
type Spool struct {
	stateDir string
	own      *owner
	dir      string // backlog/tmp/<random>, locked while we write it
	lock     *lock
	f        *os.File
	max      int64
	n        int64
	err      error
}

// NewSpool starts spooling into stateDir's backlog; max is the backlog's
// size cap, which one archive can't pass either. It also removes what
// crashed runs left in backlog/tmp.
func NewSpool(stateDir string, max int64) (*Spool, error) {
	// A state directory pgarchive creates itself is private; one set up
	// by the system (NixOS: 0750, group pgarchive) decides who may read
	// the backlog's figures.
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	own, err := ownerOf(stateDir)
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	if err := mkdirs(own, stateDir, tmpDir(stateDir)); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	if err := mkdirs(own, stateDir, entriesDir(stateDir)); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	// Under the backlog lock, so no other process's spool is removed
	// between its creation and its own lock.
	g, err := waitLockFile(lockPath(stateDir), own)
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	defer g.release()
	cleanTmp(stateDir)
	dir, err := os.MkdirTemp(tmpDir(stateDir), "spool-")
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	if err := own.path(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("backlog: %w", err)
	}
	l, err := tryLockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("backlog: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, dataFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err = own.file(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		l.release()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("backlog: %w", err)
	}
	return &Spool{stateDir: stateDir, own: own, dir: dir, lock: l, f: f, max: max}, nil
}

func lockPath(stateDir string) string { return filepath.Join(Root(stateDir), "lock") }

// cleanTmp removes spools and half-removed entries that no live process
// holds (a crash, a power cut). The caller holds the backlog lock.
func cleanTmp(stateDir string) {
	des, _ := os.ReadDir(tmpDir(stateDir))
	for _, de := range des {
		p := filepath.Join(tmpDir(stateDir), de.Name())
		l, err := tryLockDir(p)
		if err != nil {
			continue // in use, or not a directory we can open
		}
		os.RemoveAll(p)
		l.release()
	}
}

// Write spools p. After the first failure (a full disk, the cap) it keeps
// failing, and the partial file is removed at once to give the space back.
func (s *Spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.n+int64(len(p)) > s.max {
		s.fail(fmt.Errorf("the archive is larger than the backlog's size cap (%s)", textfmt.Bytes(s.max)))
		return 0, s.err
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		s.fail(fmt.Errorf("backlog %s: %w", s.dir, err))
		return n, s.err
	}
	return n, nil
}

func (s *Spool) fail(err error) {
	s.err = err
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	os.Remove(filepath.Join(s.dir, dataFile))
}

// Discard drops the spool: every upstream took its copy, or the run failed
// before there was an archive to keep.
func (s *Spool) Discard() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	os.RemoveAll(s.dir)
	s.lock.release()
}

// Keep describes the archive a spool is to be kept as.
type Keep struct {
	Key        string
	Remote     string
	Size       int64  // the ciphertext's size, from the manifest
	Manifest   []byte // the manifest body the other upstreams got
	Signature  []byte // its signature, nil when unsigned
	Pending    []string
	Held       []string
	LastErrors map[string]string
}

// Keep turns the spool into a backlog entry, dropping the oldest entries if
// the cap requires it (each logged at error level, naming the archive and
// who still holds it). On error the spool is discarded.
func (s *Spool) Keep(k Keep, log *slog.Logger) (err error) {
	defer func() {
		if err != nil {
			s.Discard()
		}
	}()
	if s.err != nil {
		return s.err
	}
	if s.n != k.Size {
		return fmt.Errorf("backlog: spooled %d bytes, the archive has %d", s.n, k.Size)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("backlog %s: %w", s.dir, err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("backlog %s: %w", s.dir, err)
	}
	s.f = nil
	meta := Meta{Key: k.Key, Remote: k.Remote, Spooled: time.Now().UTC().Truncate(time.Second),
		Pending: k.Pending, Held: k.Held, LastErrors: k.LastErrors}
	if err := writeFileSync(filepath.Join(s.dir, manifestFile), k.Manifest, s.own); err != nil {
		return err
	}
	if k.Signature != nil {
		if err := writeFileSync(filepath.Join(s.dir, sigFile), k.Signature, s.own); err != nil {
			return err
		}
	}
	if err := writeMeta(s.dir, meta, s.own); err != nil {
		return err
	}
	if _, ok := ParseKey(k.Key); !ok {
		return fmt.Errorf("backlog: %q is not an archive key", k.Key)
	}

	g, err := waitLockFile(lockPath(s.stateDir), s.own)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	defer g.release()
	if err := makeRoom(s.own, s.stateDir, k.Key, s.n, s.max, log); err != nil {
		return err
	}
	target := filepath.Join(entriesDir(s.stateDir), filepath.FromSlash(k.Key))
	if err := mkdirs(s.own, s.stateDir, filepath.Dir(target)); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	if err := os.Chmod(s.dir, dirMode); err != nil { // MkdirTemp made it 0700
		return fmt.Errorf("backlog: %w", err)
	}
	// A directory is renamed only onto a missing or empty one, so an entry
	// of the same key (same database, same second) is never overwritten.
	if err := os.Rename(s.dir, target); err != nil {
		return fmt.Errorf("backlog: keeping %s: %w", k.Key, err)
	}
	atomicfile.SyncDir(filepath.Dir(target))
	atomicfile.SyncDir(tmpDir(s.stateDir))
	s.dir = target
	s.lock.release()
	return nil
}

// makeRoom drops the oldest entries that are not in use until size more
// bytes fit under max. The caller holds the backlog lock.
func makeRoom(own *owner, stateDir, key string, size, max int64, log *slog.Logger) error {
	entries, listErr := List(stateDir, "")
	sizes := make([]int64, len(entries))
	busy := make([]bool, len(entries))
	locks := make([]*lock, len(entries))
	defer func() {
		for _, l := range locks {
			l.release()
		}
	}()
	var total int64
	for i, e := range entries {
		sizes[i] = e.Size
		total += e.Size
		l, err := tryLockDir(e.Dir)
		if err != nil {
			busy[i] = true
			continue
		}
		locks[i] = l
	}
	if total+size <= max {
		return nil
	}
	drop, fits := planCap(sizes, busy, size, max)
	if !fits {
		if listErr != nil {
			log.Error(listErr.Error())
		}
		return fmt.Errorf("BACKLOG FULL: %s (%s) does not fit in the backlog's %s (%s held, %s of it in use by a running retry); it is NOT kept",
			key, textfmt.Bytes(size), textfmt.Bytes(max), textfmt.Bytes(total), textfmt.Bytes(busyBytes(sizes, busy)))
	}
	for _, i := range drop {
		e := entries[i]
		if err := removeEntry(own, stateDir, e, locks[i], false); err != nil {
			return fmt.Errorf("backlog: dropping %s to make room: %w", e.Key, err)
		}
		log.Error(fmt.Sprintf("BACKLOG FULL (cap %s): dropped %s (%s, spooled %s) to make room for %s; %s",
			textfmt.Bytes(max), e.Key, textfmt.Bytes(e.Size), e.Meta.Spooled.Format(time.RFC3339), key, holders(e.Meta)),
			"archive", e.Key, "database", e.Name.Database)
	}
	return nil
}

func busyBytes(sizes []int64, busy []bool) int64 {
	var n int64
	for i, b := range busy {
		if b {
			n += sizes[i]
		}
	}
	return n
}

// holders says what dropping an entry costs.
func holders(m Meta) string {
	pending := strings.Join(m.Pending, ", ")
	if len(m.Held) == 0 {
		return "no upstream holds it (" + pending + " never got it): THIS ARCHIVE IS LOST"
	}
	return fmt.Sprintf("%s never got it; still held by %s", pending, strings.Join(m.Held, ", "))
}

// removeEntry takes an entry out of entries/ in one rename, then deletes
// it; the caller holds its lock. Folders left empty above it are pruned
// under the backlog lock (taken here unless the caller holds it), so that a
// concurrent Keep never loses the folder it is renaming into.
func removeEntry(own *owner, stateDir string, e *Entry, l *lock, takeGlobal bool) error {
	if !l.still(e.Dir) {
		return fmt.Errorf("%s changed under us", e.Dir)
	}
	if err := mkdirs(own, stateDir, tmpDir(stateDir)); err != nil {
		return err
	}
	gone, err := os.MkdirTemp(tmpDir(stateDir), "removed-")
	if err != nil {
		return err
	}
	// Left behind by a crash, it must still be the owner's to clean up.
	if err := own.path(gone); err != nil {
		os.Remove(gone)
		return err
	}
	if err := os.Rename(e.Dir, filepath.Join(gone, "entry")); err != nil {
		os.Remove(gone)
		return err
	}
	atomicfile.SyncDir(filepath.Dir(e.Dir))
	os.RemoveAll(gone)
	if takeGlobal {
		g, err := waitLockFile(lockPath(stateDir), own)
		if err != nil {
			return nil // the entry is gone; empty folders are harmless
		}
		defer g.release()
	}
	root := entriesDir(stateDir)
	for d := filepath.Dir(e.Dir); d != root && strings.HasPrefix(d, root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty
		}
	}
	return nil
}

// mkdirs creates dir and gives it and every folder between it and the
// backlog's root dirMode, whatever the umask (units often run with 0077),
// and own.
func mkdirs(own *owner, stateDir, dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	root := Root(stateDir)
	for d := dir; strings.HasPrefix(d, root); d = filepath.Dir(d) {
		if err := os.Chmod(d, dirMode); err != nil {
			return err
		}
		if err := own.path(d); err != nil {
			return err
		}
		if d == root {
			break
		}
	}
	return nil
}

func writeMeta(dir string, m Meta, own *owner) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, entryFile), append(b, '\n'), own)
}

// writeFileSync replaces path atomically, the new file handed to own.
func writeFileSync(path string, data []byte, own *owner) error {
	if err := atomicfile.WriteBytes(path, data, atomicfile.Options{Prepare: own.file}); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	return nil
}
