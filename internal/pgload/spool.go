package pgload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// A spool holds a custom or tar dump as a file for pg_restore, which can
// restore in parallel (--jobs) and read a dump's properties only from a
// file it can seek in. The file is plaintext, so it lives in a directory
// of its own, mode 0700, removed when the load ends, also when it fails or
// is interrupted. A process killed with SIGKILL cannot remove it: every
// spool holds an flock on its directory for as long as it lives, and the
// next load removes the spools nobody holds (removeStaleSpools).
type spool struct {
	dir  string
	path string
	lock *os.File
}

const spoolPattern = "pgarchive-restore-"

// newSpool copies r into a private directory below parent ("" for the
// system's temporary directory).
func newSpool(ctx context.Context, parent string, r io.Reader, log *slog.Logger) (*spool, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	removeStaleSpools(parent, log)
	dir, err := os.MkdirTemp(parent, spoolPattern+"*")
	if err != nil {
		return nil, fmt.Errorf("spooling the dump for pg_restore: %w", err)
	}
	s := &spool{dir: dir, path: filepath.Join(dir, "dump")}
	if err := os.Chmod(dir, 0o700); err != nil {
		s.remove()
		return nil, err
	}
	if s.lock, err = os.Open(dir); err == nil {
		err = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		s.remove()
		return nil, fmt.Errorf("spooling the dump for pg_restore: locking %s: %w", dir, err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.remove()
		return nil, err
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.remove()
		return nil, fmt.Errorf("spooling the dump for pg_restore into %s: %w", dir, err)
	}
	return s, nil
}

// remove deletes the spool and its directory.
func (s *spool) remove() {
	os.RemoveAll(s.dir)
	if s.lock != nil {
		s.lock.Close()
	}
}

// removeStaleSpools removes spool directories below parent whose owner is
// gone (no flock held): what loads killed with SIGKILL left behind.
func removeStaleSpools(parent string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(parent, spoolPattern+"*"))
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := os.RemoveAll(d); err == nil {
				log.Warn(fmt.Sprintf("removed %s, the spooled dump of an earlier restore that was killed", d))
			}
		}
		f.Close()
	}
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
