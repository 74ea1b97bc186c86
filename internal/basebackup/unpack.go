package basebackup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Unpack extracts a base backup's tar into dir, which must be empty. The
// tar comes from the store, so it is treated as hostile even when its
// manifest was trusted: every path is confined to dir through os.Root (no
// "..", no absolute path, no write through a symbolic link the tar made),
// only directories, regular files and symbolic links are created, and
// modes are limited to the owner and group (PostgreSQL wants 0700/0750).
// Symbolic links are kept as links (NixOS links postgresql.conf into the
// store) but never followed.
func Unpack(r io.Reader, dir string) (files int, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("base backup tar: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return files, err
		}
		mode := fs.FileMode(h.Mode).Perm() & 0o750
		switch h.Typeflag {
		case tar.TypeDir:
			if name != "." {
				err = root.MkdirAll(name, 0o700)
			}
			if err == nil {
				err = root.Chmod(name, mode|0o700)
			}
		case tar.TypeReg:
			err = writeFile(root, name, tr, mode|0o600)
			files++
		case tar.TypeSymlink:
			err = root.Symlink(h.Linkname, name)
		default:
			err = fmt.Errorf("entry type %q is not extracted", h.Typeflag)
		}
		if err != nil {
			return files, fmt.Errorf("base backup tar: %s: %w", h.Name, err)
		}
	}
}

// cleanName accepts relative paths that stay inside the directory.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimSuffix(name, "/"))
	if name == "" || path.IsAbs(name) || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("base backup tar: entry %q leaves the target directory", name)
	}
	return c, nil
}

func writeFile(root *os.Root, name string, r io.Reader, mode fs.FileMode) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// O_EXCL: an entry never replaces what an earlier one made (a second
	// entry of the same name, or a link), as a writer through it could.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// errNotEmpty refuses a target directory that holds anything.
var errNotEmpty = errors.New("is not empty")

// prepareDir creates dir (0700) or accepts it empty.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("--target-dir %s %w: restore-cluster never writes over a data directory", dir, errNotEmpty)
	}
	return os.Chmod(dir, 0o700)
}
