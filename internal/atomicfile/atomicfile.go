// Package atomicfile replaces files so that readers see the old content or
// the new, never a part: the new content goes to a hidden temporary file in
// the same directory, is fsynced, renamed over the target, and the
// directory is fsynced so the rename survives a crash. On any error the
// target is untouched and the temporary file is gone.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options tune a write. The zero value gives mode 0600 and temporary files
// named .<base>.tmp-*.
type Options struct {
	Perm os.FileMode // mode of the new file; 0 means 0600
	// TempTag names the temporary file .<base>.<TempTag>-<random>; default
	// "tmp". Callers that clean up leftovers of killed runs match on it.
	TempTag string
	// Prepare, if set, runs on the empty temporary file before fill (for
	// example to chown it).
	Prepare func(*os.File) error
}

// TempPattern is the glob that matches the temporary files of writes to
// path with this tag ("" for the default), e.g. to remove what a process
// killed with SIGKILL left behind.
func TempPattern(path, tag string) string {
	if tag == "" {
		tag = "tmp"
	}
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+tag+"-*")
}

// RemoveStale removes the temporary files of writes to path with this tag
// that were last written more than olderThan ago: what a process killed
// with SIGKILL left behind (a live write keeps its file's time fresh). It
// returns what it removed.
func RemoveStale(path, tag string, olderThan time.Duration) ([]string, error) {
	matches, err := filepath.Glob(TempPattern(path, tag))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < olderThan {
			continue
		}
		if err := os.Remove(m); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, m)
	}
	return removed, errors.Join(errs...)
}

// Write replaces path with what fill writes. Errors name path.
func Write(path string, opt Options, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tag := opt.TempTag
	if tag == "" {
		tag = "tmp"
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"."+tag+"-*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			if !strings.Contains(err.Error(), path) {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
	}()
	perm := opt.Perm
	if perm == 0 {
		perm = 0o600
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if opt.Prepare != nil {
		if err = opt.Prepare(tmp); err != nil {
			return err
		}
	}
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	SyncDir(dir)
	return nil
}

// WriteBytes is Write for content already in memory.
func WriteBytes(path string, data []byte, opt Options) error {
	return Write(path, opt, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir fsyncs a directory so renames and removals in it are durable.
// Best effort: some file systems refuse it, and the change is made anyway.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
