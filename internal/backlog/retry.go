package backlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// RetryOptions say what to retry and where to.
type RetryOptions struct {
	StateDir string
	Database string // "" for every database
	// Upstreams are the writable upstreams of the current remote; a pending
	// upstream that is not among them is left pending.
	Upstreams []*remote.Upstream
	Log       *slog.Logger
}

// RetryResult sums a retry up.
type RetryResult struct {
	Entries   int // entries looked at
	Delivered int // copies stored (or found already stored) on a pending upstream
	Failed    int // copies still not delivered
	Cleared   int // entries removed because no upstream lacks them any more
	Remaining int // entries still in the backlog
	Busy      int // entries skipped: another pgarchive process holds them
	Broken    int // entries that could not be read
}

// Retry delivers the backlog's entries to the upstreams that lack them.
// Every outcome is logged, one line per entry and upstream; the result
// counts them. Errors are per copy, never fatal for the other entries.
func Retry(ctx context.Context, opt RetryOptions) *RetryResult {
	res := &RetryResult{}
	entries, err := List(opt.StateDir, opt.Database)
	if err != nil {
		// Entries that could not be read still hold archives: say so, and
		// count them as remaining.
		for _, e := range splitErr(err) {
			opt.Log.Error("retry: " + e.Error())
			res.Broken++
			res.Remaining++
		}
	}
	var own *owner
	if len(entries) > 0 {
		if own, err = ownerOf(opt.StateDir); err != nil {
			// Root would leave files the state directory's owner can't
			// manage: better not touch the backlog at all.
			opt.Log.Error(fmt.Sprintf("retry: backlog %s: %v", Root(opt.StateDir), err))
			res.Remaining += len(entries)
			return res
		}
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			res.Remaining++
			continue
		}
		res.Entries++
		retryEntry(ctx, opt, own, e, res)
	}
	return res
}

func splitErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func retryEntry(ctx context.Context, opt RetryOptions, own *owner, listed *Entry, res *RetryResult) {
	log := opt.Log.With("archive", listed.Key, "database", listed.Name.Database)
	l, err := tryLockDir(listed.Dir)
	if errors.Is(err, errBusy) {
		res.Busy++
		log.Info(fmt.Sprintf("retry: %s is being delivered by another pgarchive process; skipped", listed.Key))
		return
	}
	if err != nil || !l.still(listed.Dir) {
		l.release()
		return // removed since it was listed: delivered by someone else
	}
	defer l.release()
	// Read again under the lock: another process may have delivered part
	// of it between List and now.
	e, err := load(listed.Dir, listed.Name, listed.Key, true)
	if err != nil {
		res.Broken++
		res.Remaining++
		log.Error("retry: " + err.Error())
		return
	}
	m, body, sig, err := e.manifest()
	if err != nil {
		res.Broken++
		res.Remaining++
		log.Error(fmt.Sprintf("retry: %s: backlog entry %s: %v", e.Key, e.Dir, err))
		return
	}
	d := archive.Delivery{Key: e.Key, Manifest: m, Body: body, Sig: sig}
	var still []string
	if e.Meta.LastErrors == nil {
		e.Meta.LastErrors = map[string]string{}
	}
	for _, name := range e.Meta.Pending {
		ulog := log.With("upstream", name)
		how, err := deliverOne(ctx, opt.Upstreams, name, e, d)
		if err != nil {
			still = append(still, name)
			e.Meta.LastErrors[name] = err.Error()
			res.Failed++
			ulog.Error(fmt.Sprintf("retry: %s still NOT on %s: %v", e.Key, name, err))
			continue
		}
		res.Delivered++
		delete(e.Meta.LastErrors, name)
		if !slices.Contains(e.Meta.Held, name) {
			e.Meta.Held = append(e.Meta.Held, name)
		}
		ulog.Info("retry: "+how, "bytes", m.Ciphertext.Size)
	}
	if len(still) == 0 {
		if err := removeEntry(own, opt.StateDir, e, l, true); err != nil {
			res.Remaining++
			log.Error(fmt.Sprintf("retry: %s is on every upstream now, but its backlog entry %s could not be removed: %v", e.Key, e.Dir, err))
			return
		}
		res.Cleared++
		log.Info(fmt.Sprintf("retry: %s is on every upstream; removed from the backlog", e.Key))
		return
	}
	res.Remaining++
	e.Meta.Pending = still
	if err := writeMeta(e.Dir, e.Meta, own); err != nil {
		log.Error(fmt.Sprintf("retry: %s: recording progress in %s: %v", e.Key, e.Dir, err))
	}
}

// manifest reads and checks the entry's manifest body against its data,
// and reads its signature (nil when the archive is unsigned). The
// signature is carried along unjudged: readers judge it where they trust.
func (e *Entry) manifest() (*manifest.Manifest, []byte, []byte, error) {
	body, err := os.ReadFile(e.ManifestPath())
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := manifest.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, nil, nil, err
	}
	if m.Archive != e.Name.Base() {
		return nil, nil, nil, fmt.Errorf("manifest describes %s", m.Archive)
	}
	if m.Ciphertext.Size != e.Size {
		return nil, nil, nil, fmt.Errorf("%s has %d bytes, the manifest says %d", dataFile, e.Size, m.Ciphertext.Size)
	}
	sig, err := os.ReadFile(filepath.Join(e.Dir, sigFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, body, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return m, body, sig, nil
}

// deliverOne stores e on the upstream called name unless it already holds
// exactly this archive, and says what it did.
func deliverOne(ctx context.Context, ups []*remote.Upstream, name string, e *Entry, d archive.Delivery) (string, error) {
	var u *remote.Upstream
	for _, c := range ups {
		if c.Name == name {
			u = c
		}
	}
	if u == nil {
		return "", fmt.Errorf("%s is no longer a writable upstream of the remote; the entry stays in the backlog (delete %s if that upstream is gone for good)", name, e.Dir)
	}
	if u.Err != nil {
		return "", fmt.Errorf("unreachable: %v", u.Err)
	}
	held, err := Holds(ctx, u, d)
	if err != nil {
		return "", err
	}
	if held {
		return fmt.Sprintf("%s was already complete on %s", e.Key, name), nil
	}
	f, err := os.Open(e.DataPath())
	if err != nil {
		return "", err
	}
	defer f.Close()
	out, err := archive.Deliver(ctx, u, d, f)
	if errors.Is(err, archive.ErrContentMismatch) {
		return "", fmt.Errorf("the backlog's copy %s is damaged (%v); nothing was stored: `pgarchive heal` can copy it from an upstream that holds it", e.DataPath(), err)
	}
	if errors.Is(err, archive.ErrSourceRead) {
		return "", fmt.Errorf("the backlog's copy %s could not be read: %v", e.DataPath(), err)
	}
	if err != nil {
		return "", err
	}
	check := "size checked"
	if out.Verified.String() != "none" {
		check = "size and " + out.Verified.String() + " verified"
	}
	return fmt.Sprintf("delivered %s to %s from the backlog (%s, %s, %s)", e.Key, name,
		textfmt.Bytes(d.Manifest.Ciphertext.Size), check, out.Duration.Round(time.Millisecond)), nil
}

// Holds reports whether u already holds d complete: its manifest, equal to
// d's, and a data object of the manifest's size (a run that failed after
// the upload, or another process, may have stored it). A different
// manifest under the same key is an error: that is some other archive,
// which is never overwritten.
func Holds(ctx context.Context, u *remote.Upstream, d archive.Delivery) (bool, error) {
	mobj, err := u.Fs.NewObject(ctx, d.Key+naming.ManifestSuffix)
	if errors.Is(err, fs.ErrorObjectNotFound) || errors.Is(err, fs.ErrorDirNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading its manifest: %w", err)
	}
	rc, err := mobj.Open(ctx)
	if err != nil {
		return false, fmt.Errorf("reading its manifest: %w", err)
	}
	theirs, err := io.ReadAll(io.LimitReader(rc, manifest.MaxSize+1))
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("reading its manifest: %w", err)
	}
	if !sameManifest(theirs, d.Manifest) {
		// A damaged manifest of this archive is replaced by Deliver; a
		// valid one of another archive must not be.
		if m, err := manifest.Parse(bytes.NewReader(theirs)); err == nil && m.Ciphertext.SHA256 != d.Manifest.Ciphertext.SHA256 {
			return false, fmt.Errorf("it holds a different archive under this name (ciphertext sha256 %s, ours %s); left alone", m.Ciphertext.SHA256, d.Manifest.Ciphertext.SHA256)
		}
		return false, nil
	}
	obj, err := u.Fs.NewObject(ctx, d.Key)
	if err != nil {
		return false, nil // manifest without data: Deliver replaces it
	}
	return obj.Size() == d.Manifest.Ciphertext.Size, nil
}

func sameManifest(body []byte, m *manifest.Manifest) bool {
	theirs, err := manifest.Parse(bytes.NewReader(body))
	if err != nil {
		return false
	}
	a, err1 := theirs.Marshal()
	b, err2 := m.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// Pending names the entries of db still waiting, for messages.
func Pending(entries []*Entry) string {
	var keys []string
	for _, e := range entries {
		keys = append(keys, fmt.Sprintf("%s (for %s)", e.Key, strings.Join(e.Meta.Pending, ", ")))
	}
	return strings.Join(keys, "; ")
}
