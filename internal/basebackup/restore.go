package basebackup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/restore"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// RestoreOptions are one restore-cluster, resolved by the CLI.
type RestoreOptions struct {
	Catalog   *catalog.Catalog
	Upstreams []*remote.Upstream // in the catalog's order
	Remote    string
	Keys      *keys.Identities
	// SystemID picks the cluster when the store holds base backups of
	// several; 0 for the only one.
	SystemID       uint64
	Target         Target
	Dir            string
	RestoreCommand string // what recovery runs to fetch WAL
	Action         string // recovery_target_action
	Log            *slog.Logger
}

// Restored is what RestoreCluster did.
type Restored struct {
	Archive *catalog.Archive
	Files   int
}

// Choose finds the newest usable base backup that can reach the target.
// Untrusted and future-dated ones are never chosen (and named in the log).
func Choose(cat *catalog.Catalog, systemID uint64, t Target, log *slog.Logger) (*catalog.Archive, error) {
	clusters := map[walname.Cluster]bool{}
	var pick *catalog.Archive
	for _, a := range cat.Archives { // newest first
		c, ok := walname.ParseBaseDatabase(a.Name.Database)
		if !ok || systemID != 0 && c.SystemID != systemID {
			continue
		}
		clusters[c] = true
		switch {
		case pick != nil:
		case a.Suspect():
			log.Warn(fmt.Sprintf("skipping base backup %s: %s", a.Key, a.Why()), "archive", a.Key)
		case !a.Usable() || a.Manifest == nil || a.Manifest.Base == nil:
		case t.Covers(a.Manifest.Base):
			pick = a
		}
	}
	if len(clusters) > 1 {
		var names []string
		for c := range clusters {
			names = append(names, fmt.Sprint(c.SystemID))
		}
		return nil, fmt.Errorf("the store holds base backups of several clusters (system identifiers %s): choose one with --system-identifier", strings.Join(names, ", "))
	}
	if pick == nil {
		return nil, fmt.Errorf("no complete base backup that ends before %s (pgarchive list shows the base-<system identifier>-pg<major> archives)", t)
	}
	return pick, nil
}

// RestoreCluster unpacks the chosen base backup into opt.Dir and sets it
// up to recover to the target from the WAL archive; starting PostgreSQL
// on it does the rest.
func RestoreCluster(ctx context.Context, opt RestoreOptions) (*Restored, error) {
	a, err := Choose(opt.Catalog, opt.SystemID, opt.Target, opt.Log)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(opt.Dir); err != nil {
		return nil, err
	}
	n, err := Materialize(ctx, a, opt)
	if err != nil {
		return nil, err
	}
	return &Restored{Archive: a, Files: n}, nil
}

// Materialize unpacks base backup a into opt.Dir (which exists, empty)
// and writes its recovery settings.
func Materialize(ctx context.Context, a *catalog.Archive, opt RestoreOptions) (int, error) {
	b := a.Manifest.Base
	opt.Log.Info(fmt.Sprintf("restore-cluster: unpacking base backup %s (%s, WAL %s to %s, timeline %d) into %s",
		a.Key, textfmt.Bytes(a.Manifest.Ciphertext.Size), b.StartLSN, b.StopLSN, b.Timeline, opt.Dir), "archive", a.Key)
	r := restore.Open(ctx, restore.CopiesOf(opt.Upstreams, a), restore.Options{Manifest: a.Manifest, Identities: opt.Keys, Log: opt.Log})
	defer r.Close()
	n, err := Unpack(r, opt.Dir)
	if err == nil {
		// Unpack stops at the tar's end: the reader's checks (size and
		// SHA-256 of the whole) run at its EOF, after any padding.
		_, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return n, fmt.Errorf("restoring %s into %s: %w; the directory is incomplete, remove it before trying again", a.Key, opt.Dir, err)
	}
	if err := writeRecovery(opt.Dir, RecoverySettings(opt.Target, opt.RestoreCommand, opt.Action)); err != nil {
		return n, fmt.Errorf("writing the recovery settings into %s: %w", opt.Dir, err)
	}
	return n, nil
}
