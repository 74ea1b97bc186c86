package backlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// errBusy means another process holds the lock.
var errBusy = errors.New("in use by another pgarchive process")

// lock is an flock(2) on a file or directory. Several postgresqlBackup-<db>
// units run at once; flock makes sure two of them never upload or delete
// the same entry, and the kernel drops it if a process dies.
type lock struct{ f *os.File }

// tryLockDir takes an exclusive lock on an existing directory without
// waiting.
func tryLockDir(path string) (*lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return takeLock(f, path, syscall.LOCK_EX|syscall.LOCK_NB)
}

// waitLockFile takes an exclusive lock on path, creating it (for own),
// waiting for the lock.
func waitLockFile(path string, own *owner) (*lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := own.file(f); err != nil {
		f.Close()
		return nil, err
	}
	return takeLock(f, path, syscall.LOCK_EX)
}

func takeLock(f *os.File, path string, how int) (*lock, error) {
	var err error
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, errBusy
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &lock{f: f}, nil
}

// still reports whether path is still the file this lock was taken on:
// an entry renamed away (removed) by another process between listing it and
// locking it must be left alone.
func (l *lock) still(path string) bool {
	a, err1 := l.f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

func (l *lock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the last descriptor drops the flock
		l.f = nil
	}
}
