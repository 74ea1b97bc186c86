package walarchive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// DirBacklog keeps WAL files some upstream did not take under
// <state-dir>/wal-backlog/entries/<sysid>/<major>/<file>/ (data.age,
// manifest.json, manifest.json.sig, pending.json): only ciphertext, each
// file fsynced and the entry renamed into place whole, so a crash leaves
// either the whole entry or none, and wal-push may acknowledge the file.
type DirBacklog struct{ StateDir string }

func (b DirBacklog) root() string { return filepath.Join(b.StateDir, "wal-backlog") }

type pendingFile struct {
	Key     string            `json:"key"` // the object key, prefix included
	Pending []string          `json:"pending"`
	Held    []string          `json:"held"`
	Errors  map[string]string `json:"last_errors,omitempty"`
}

// Keep implements Backlog.
func (b DirBacklog) Keep(s archive.Sealed, pending, held []string, errs map[string]string) error {
	m, err := manifest.ParseWAL(bytes.NewReader(s.Body))
	if err != nil {
		return err
	}
	final := filepath.Join(b.root(), "entries", m.SystemID, strconv.Itoa(m.Major), m.File)
	tmp := filepath.Join(b.root(), "tmp", randomName())
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	meta, _ := json.Marshal(pendingFile{Key: s.Key, Pending: pending, Held: held, Errors: errs})
	files := map[string][]byte{"data.age": s.Data, "manifest.json": s.Body, "pending.json": meta}
	if s.Sig != nil {
		files["manifest.json.sig"] = s.Sig
	}
	for name, data := range files {
		if err := atomicfile.WriteBytes(filepath.Join(tmp, name), data, atomicfile.Options{}); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	// An older entry of the same file (pushed again after a crash) goes.
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	atomicfile.SyncDir(filepath.Dir(final))
	return nil
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RetryResult counts what Retry did.
type RetryResult struct {
	Delivered, Failed, Remaining int
}

// Retry delivers the WAL backlog to the upstreams its entries wait for.
// Another process retrying at the same time makes this one return at once.
func (b DirBacklog) Retry(ctx context.Context, ups []*remote.Upstream, log *slog.Logger) (RetryResult, error) {
	var res RetryResult
	entries, _ := filepath.Glob(filepath.Join(b.root(), "entries", "*", "*", "*"))
	if len(entries) == 0 {
		return res, nil
	}
	lock, err := os.OpenFile(filepath.Join(b.root(), "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return res, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return res, nil // someone else is delivering
	}
	byName := map[string]*remote.Upstream{}
	for _, u := range ups {
		byName[u.Name] = u
	}
	for _, dir := range entries {
		if ctx.Err() != nil {
			break
		}
		d, f, err := b.retryEntry(ctx, dir, byName, log)
		res.Delivered += d
		res.Failed += f
		if err != nil {
			log.Error(fmt.Sprintf("WAL backlog entry %s: %v", dir, err))
		}
	}
	left, _ := filepath.Glob(filepath.Join(b.root(), "entries", "*", "*", "*"))
	res.Remaining = len(left)
	return res, nil
}

func (b DirBacklog) retryEntry(ctx context.Context, dir string, ups map[string]*remote.Upstream, log *slog.Logger) (int, int, error) {
	read := func(name string) []byte {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		return data
	}
	body := read("manifest.json")
	m, err := manifest.ParseWAL(bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	c, err := m.Cluster()
	if err != nil {
		return 0, 0, err
	}
	var meta pendingFile
	if err := json.Unmarshal(read("pending.json"), &meta); err != nil {
		return 0, 0, fmt.Errorf("pending.json: %w", err)
	}
	data := read("data.age")
	if int64(len(data)) != m.Ciphertext.Size {
		return 0, 0, fmt.Errorf("data.age has %d bytes, the manifest says %d", len(data), m.Ciphertext.Size)
	}
	if f, ok := walname.ParseKey(c, keyPrefix(meta.Key, c), meta.Key); !ok || f.Name != m.File {
		return 0, 0, fmt.Errorf("pending.json names %q, not the key of %s", meta.Key, m.File)
	}
	delivered, failed := 0, 0
	var still []string
	for _, name := range meta.Pending {
		u := ups[name]
		if u == nil || u.Err != nil {
			still = append(still, name)
			failed++
			continue
		}
		sums, err := archive.CipherSums([]*remote.Upstream{u}, data)
		if err == nil {
			s := archive.Sealed{Key: meta.Key, Data: data, Sums: sums, Body: body, Sig: read("manifest.json.sig"), Created: m.Created}
			_, err = pushOne(ctx, u, s, m, c)
		}
		if err != nil {
			still = append(still, name)
			failed++
			log.Error(fmt.Sprintf("WAL backlog: %s still NOT on %s: %v", m.File, name, err), "upstream", name)
			continue
		}
		delivered++
		meta.Held = append(meta.Held, name)
		log.Info(fmt.Sprintf("WAL backlog: delivered %s to %s", m.File, name), "upstream", name)
	}
	if len(still) == 0 {
		return delivered, failed, os.RemoveAll(dir)
	}
	meta.Pending = slices.Clip(still)
	out, _ := json.Marshal(meta)
	return delivered, failed, atomicfile.WriteBytes(filepath.Join(dir, "pending.json"), out, atomicfile.Options{})
}

// keyPrefix is the prefix part of a WAL key of cluster c ("" when key
// does not have c's layout, which ParseKey then refuses).
func keyPrefix(key string, c walname.Cluster) string {
	i := strings.LastIndex(key, "/"+c.Folder(""))
	if i < 0 {
		return ""
	}
	return key[:i]
}
