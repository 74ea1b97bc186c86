package job

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/pgload"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/restore"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// RestoreOptions are one restore, resolved and checked by the caller:
// exactly one of Output and Into is set.
type RestoreOptions struct {
	Catalog   *catalog.Catalog
	Upstreams []*remote.Upstream // in the catalog's order
	Remote    string             // for messages
	Database  string
	Archive   string // a name or key; "" for the newest usable
	Keys      *keys.Identities
	Raw       bool // Output only: the dump as stored

	Output string    // a file, or "-" for Stdout
	Stdout io.Writer // where "-" writes

	Into     string // a libpq connection string
	Force    bool   // Output: replace a file; Into: replace a non-empty database
	Sanitize string // Into: SQL file run after the load
	NoOwner  bool   // Into: skip ownership and grants
	PgBin    string
	Jobs     int // Into: pg_restore --jobs for custom-format dumps
	// Only, for a pg_dumpall archive (database "all"), loads just this
	// database Into; without it the whole cluster is restored into the
	// server Into points at.
	Only    string
	TempDir string // Into: where custom and tar dumps are spooled

	// Progress, if set, is told the ciphertext's size and returns what to
	// call per chunk read and when done (a terminal's progress bar).
	Progress func(size int64) (add func(int), done func())
	Log      *slog.Logger
}

// Restore chooses the archive, streams it from the first upstream holding
// a complete copy (carrying on from the next one if that copy fails part
// way), decrypts and checks it, and writes it to Output or loads it Into a
// database. Output files appear only complete (atomicfile, tag "partial").
func Restore(ctx context.Context, opt RestoreOptions) (err error) {
	db, log := opt.Database, opt.Log
	a, err := Choose(opt.Catalog, opt.Remote, db, opt.Archive, log)
	if err != nil {
		return err
	}
	if opt.Into != "" && a.Manifest.Dump.Format == manifest.BaseBackupFormat {
		return fmt.Errorf("%s is a base backup, not a dump: pgarchive restore-cluster restores it (restore --output gives its tar)", a.Key)
	}
	if opt.Output != "" && opt.Output != "-" {
		// A restore killed with SIGKILL could not remove its partial file.
		removed, err := atomicfile.RemoveStale(opt.Output, "partial", staleAfter)
		for _, f := range removed {
			log.Warn(fmt.Sprintf("removed %s, the partial output of an earlier restore that was killed", f))
		}
		if err != nil {
			log.Warn(fmt.Sprintf("removing partial output of an earlier restore: %v", err))
		}
	}
	add, done := func(int) {}, func() {}
	if opt.Progress != nil {
		add, done = opt.Progress(a.Manifest.Ciphertext.Size)
	}
	r := restore.Open(ctx, restore.CopiesOf(opt.Upstreams, a), restore.Options{
		Manifest: a.Manifest, Identities: opt.Keys, Raw: opt.Raw, Log: log, OnCiphertext: add,
	})
	defer r.Close()
	log.Info(fmt.Sprintf("%s: restoring %s (%s)", db, a.Key, textfmt.Bytes(a.Manifest.Ciphertext.Size)), "database", db, "archive", a.Key)
	var what string
	defer func() {
		if ctx.Err() != nil && err != nil {
			err = interruptedRestore(opt, err)
		}
	}()
	if opt.Into != "" && db == naming.AllDatabases {
		what, err = restoreCluster(ctx, opt, a.Key, r)
		if err != nil {
			return err
		}
	} else if opt.Into != "" {
		res, err := pgload.Load(ctx, opt.Into, r, pgload.Options{SourceDB: db, Force: opt.Force, Archive: a.Key,
			Sanitize: opt.Sanitize, SkipRoles: opt.NoOwner, PgBin: opt.PgBin, Log: log, Jobs: opt.Jobs, TempDir: opt.TempDir})
		if err != nil {
			return err
		}
		what = fmt.Sprintf("loaded (%s format) into database %s", res.Format, res.Database)
		if res.Replaced {
			what += ", replacing the one that was there"
		}
		if opt.Sanitize != "" {
			what += ", sanitized with " + opt.Sanitize
		}
	} else {
		if err := writeOutput(ctx, opt.Output, opt.Stdout, r); err != nil {
			return err
		}
		what = "written to " + opt.Output
		if opt.Output == "-" {
			what = "written to stdout"
		}
	}
	done()
	log.Info(fmt.Sprintf("%s: restored %s from %s (%s) %s", db, a.Key, r.Used, textfmt.Bytes(r.Delivered()), what),
		"database", db, "archive", a.Key, "upstream", r.Used)
	return nil
}

// staleAfter is how long a partial output must have been left untouched to
// count as left by a killed restore rather than written by a running one.
const staleAfter = time.Minute

// restoreCluster loads a pg_dumpall archive: one database of it (Only),
// or the whole cluster into the server Into points at.
func restoreCluster(ctx context.Context, opt RestoreOptions, key string, r io.Reader) (string, error) {
	if opt.Only != "" {
		res, err := pgload.LoadOne(ctx, opt.Into, r, opt.Only, pgload.Options{Force: opt.Force, Archive: key,
			Sanitize: opt.Sanitize, SkipRoles: opt.NoOwner, PgBin: opt.PgBin, Log: opt.Log, TempDir: opt.TempDir})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("database %s of the cluster dump loaded into database %s", opt.Only, res.Database), nil
	}
	res, err := pgload.LoadCluster(ctx, opt.Into, r, pgload.ClusterOptions{Force: opt.Force, PgBin: opt.PgBin,
		TempDir: opt.TempDir, Log: opt.Log, Archive: key})
	for _, s := range res.Skipped {
		opt.Log.Warn("skipped " + s)
	}
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("loaded as a whole cluster: databases %s; roles created: %s; roles that existed and were kept: %s",
		strings.Join(res.Databases, ", "), orNone(res.RolesCreated), orNone(res.RolesKept))
	return what, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Choose finds the requested archive (ref: a name or key), or with ref ""
// the newest usable one: an untrusted or future-dated archive is never
// taken for the latest, and each one skipped is named in the log. An
// untrusted archive is refused even when asked for by name.
func Choose(cat *catalog.Catalog, remoteName, db, ref string, log *slog.Logger) (*catalog.Archive, error) {
	if ref == "" {
		a := cat.Latest(db)
		for _, x := range cat.SuspectNewer(db, a) {
			log.Warn(fmt.Sprintf("%s: skipping %s, newer than the archive restored: %s", db, x.Key, x.Why()),
				"database", db, "archive", x.Key)
		}
		if a != nil {
			return a, nil
		}
		if err := Unlisted(cat); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no complete archive of database %s on remote %q that may be restored (pgarchive list shows what there is)", db, remoteName)
	}
	a := cat.Find(ref)
	if a == nil || a.Name.Database != db {
		return nil, fmt.Errorf("archive %s of database %s not found on remote %q (pgarchive list --database %s shows what there is)", ref, db, remoteName, db)
	}
	if a.Trust == catalog.TrustUntrusted {
		return nil, fmt.Errorf("%s is %s: refusing to restore it", a.Key, a.Why())
	}
	if len(a.CompleteCopies()) == 0 {
		return nil, fmt.Errorf("%s has no complete copy on any upstream (see pgarchive list --database %s)", a.Key, db)
	}
	if a.Future {
		log.Warn(fmt.Sprintf("%s: restoring %s as asked, though it is %s", db, a.Key, a.Why()), "database", db, "archive", a.Key)
	}
	return a, nil
}

// interruptedRestore says what a restore stopped by a signal left.
func interruptedRestore(opt RestoreOptions, cause error) error {
	left := "nothing was loaded"
	switch {
	case opt.Into == "" && opt.Output == "-":
		left = "stdout got part of the dump"
	case opt.Into == "":
		left = "the partial output was removed; " + opt.Output + " was not written"
	}
	return fmt.Errorf("%s: restore %w; %s (%v)", opt.Database, ErrInterrupted, left, cause)
}

// writeOutput writes to stdout, or to a file that appears only complete:
// a temporary file beside it is renamed into place once every check passed.
func writeOutput(ctx context.Context, path string, stdout io.Writer, r io.Reader) error {
	if path == "-" {
		// A consumer that stops reading blocks the write in the kernel,
		// where no context reaches it: the copy runs aside, and an ended
		// context returns at once (the process exits, the write with it).
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(stdout, r)
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := atomicfile.Write(path, atomicfile.Options{Perm: 0o600, TempTag: "partial"}, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("--output %w", err)
	}
	return nil
}
