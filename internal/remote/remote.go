// Package remote resolves an rclone remote into the upstreams pgarchive
// writes to. A union is opened member by member, so that each upstream gets
// its own upload, verification and report instead of rclone's aggregated
// error; any other remote is a single upstream.
package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/config"
	"github.com/rclone/rclone/fs/config/configfile"
	"github.com/rclone/rclone/fs/fspath"
)

// Upstream is one place an archive lands.
type Upstream struct {
	Name string // as written in rclone.conf, e.g. "minio-a:pgarchive" or "/srv/backup"
	Root string // Name joined with the remote's own path
	Mode Mode   // the union member's mode; ReadWrite for a remote that is not a union
	Fs   fs.Fs  // nil when it could not be opened; Err says why
	Err  error
}

// Mode is what rclone's union allows on a member, from its suffix.
type Mode string

const (
	ReadWrite Mode = ""   // no suffix (or :writeback)
	ReadOnly  Mode = "ro" // :ro: never written to, never deleted from
	NoCreate  Mode = "nc" // :nc: takes no new objects, but may be deleted from
)

// Creates tells whether new archives (and healed copies) may go to u.
func (u *Upstream) Creates() bool { return u.Mode == ReadWrite }

// Deletes tells whether prune may delete from u, as rclone's union would.
func (u *Upstream) Deletes() bool { return u.Mode != ReadOnly }

// LoadConfig points rclone at path and parses it, reporting syntax errors
// with the file name instead of rclone's exit-on-error loader.
func LoadConfig(path string) error {
	if path == "" {
		return errors.New("no rclone config: set --rclone-config (env RCLONE_CONFIG)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("rclone config: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("rclone config %s is a directory", path)
	}
	if err := config.SetConfigPath(path); err != nil {
		return fmt.Errorf("rclone config %s: %w", path, err)
	}
	configfile.Install()
	if err := config.Data().Load(); err != nil {
		return fmt.Errorf("rclone config %s: %w", path, err)
	}
	if err := checkSyntax(path); err != nil {
		return fmt.Errorf("rclone config %s: %w", path, err)
	}
	registerConfigSecrets()
	return nil
}

// checkSyntax catches lines rclone's lenient parser silently drops, such as
// a key outside any section or a line that is neither "key = value" nor a
// section header, which would otherwise surface later as a baffling
// "remote not found" or a missing credential.
func checkSyntax(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	inSection := false
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#' || t[0] == ';':
		case t[0] == '[':
			if !strings.HasSuffix(t, "]") || len(t) < 3 {
				return fmt.Errorf("line %d: malformed section header", i+1)
			}
			inSection = true
		case !strings.Contains(t, "="):
			return fmt.Errorf("line %d: expected \"key = value\" or \"[section]\"", i+1)
		case !inSection:
			return fmt.Errorf("line %d: setting outside of any [section]", i+1)
		}
	}
	return nil
}

// Options tune how upstreams are opened.
type Options struct {
	// StreamTotal, when positive, is the largest object that must fit in an
	// upload of unknown size; chunked backends get chunks big enough for it.
	StreamTotal int64
	// Read opens every member of a union, including read-only (:ro) and
	// no-create (:nc) ones: they can't take new archives but may hold old ones.
	Read bool
}

// Resolve opens every writable upstream of remote (every upstream with opt.Read). Upstreams that fail to
// open are returned with Err set, so the caller can report them and carry on
// with the rest; an error is returned only when the remote itself is unusable.
func Resolve(ctx context.Context, remote string, opt Options) ([]*Upstream, error) {
	info, name, rpath, conn, err := fs.ParseRemote(remote)
	if errors.Is(err, fs.ErrorNotFoundInConfigFile) {
		return nil, fmt.Errorf("remote %q is not defined in %s (it defines: %s)", remote, config.GetConfigPath(), strings.Join(sections(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("remote %q: %w", remote, err)
	}
	if info.Name != "union" {
		u := &Upstream{Name: remote, Root: remote}
		u.Fs, u.Err = open(ctx, streamRoot(remote, opt.StreamTotal))
		return []*Upstream{u}, nil
	}
	m := fs.ConfigMap(info.Prefix, info.Options, name, conn)
	raw, _ := m.Get("upstreams")
	var list fs.SpaceSepList
	if err := list.Set(raw); err != nil {
		return nil, fmt.Errorf("union %q: upstreams: %w", remote, err)
	}
	var ups []*Upstream
	for _, member := range list {
		member, mode := stripMode(member)
		if mode != ReadWrite && !opt.Read {
			continue
		}
		root := fspath.JoinRootPath(member, rpath)
		u := &Upstream{Name: member, Root: root, Mode: mode}
		u.Fs, u.Err = open(ctx, streamRoot(root, opt.StreamTotal))
		ups = append(ups, u)
	}
	if len(ups) == 0 && opt.Read {
		return nil, fmt.Errorf("union %q has no upstreams", remote)
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("union %q has no writable upstreams (all are :ro or :nc)", remote)
	}
	return ups, nil
}

// stripMode splits rclone union's per-upstream suffix from a member.
// Read-only (:ro) and no-create (:nc) members can't take new archives.
func stripMode(member string) (string, Mode) {
	for _, m := range []Mode{ReadOnly, NoCreate} {
		if name, ok := strings.CutSuffix(member, ":"+string(m)); ok {
			return name, m
		}
	}
	return strings.TrimSuffix(member, ":writeback"), ReadWrite
}

func open(ctx context.Context, root string) (fs.Fs, error) {
	f, err := fs.NewFs(ctx, root)
	if errors.Is(err, fs.ErrorIsFile) {
		// rclone also says this when the backend could not be reached while
		// probing the root; either way the archive folder is unusable. The
		// parent it returns can say which: its listing fails with the
		// backend's own error (connection refused, access denied, no such
		// bucket), or works, and the root really is a file.
		if f != nil {
			if _, lerr := f.List(ctx, ""); lerr != nil {
				return nil, fmt.Errorf("%s: %w", root, lerr)
			}
		}
		return nil, fmt.Errorf("%s is a file, not a folder for archives", root)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

func sections() []string {
	s := config.FileSections()
	sort.Strings(s)
	if len(s) == 0 {
		return []string{"no remotes"}
	}
	return s
}
