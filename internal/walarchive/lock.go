package walarchive

import (
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes an exclusive flock on path (created if missing), the way
// one uploader or prefetcher per data directory is ensured: ok is false
// when another process holds it. The lock lasts until f is closed.
func tryLock(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

// held reports whether a process holds the lock on path.
func held(path string) bool {
	f, ok, err := tryLock(path)
	if err != nil {
		return false
	}
	if ok {
		f.Close()
	}
	return !ok
}
