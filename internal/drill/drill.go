// Package drill is the continuous restore test: for each database it
// restores the newest archive into a throwaway PostgreSQL cluster, runs the
// configured check queries against it, and always tears the cluster down.
// A backup that has not been restored is only a hope; this makes it a fact,
// every night, and says so in one line per database.
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/checks"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/pgload"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/restore"
	"github.com/pgarchive/pgarchive/internal/scratchpg"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Job is one drill run.
type Job struct {
	Databases  []string // empty: every database with archives
	Catalog    *catalog.Catalog
	Upstreams  []*remote.Upstream
	Identities *keys.Identities
	MaxAge     time.Duration
	Checks     map[string][]checks.Check // by database; "*" applies to all
	PgBin      string
	TempDir    string // scratch clusters and the spool of custom and tar dumps
	Jobs       int    // pg_restore --jobs for custom-format dumps
	Now        func() time.Time
	Log        *slog.Logger
}

// Outcome is one database's drill.
type Outcome struct {
	Database string
	Archive  string // key of the archive drilled, "" if none
	Age      time.Duration
	Restored int64 // bytes of dump loaded
	Checks   []checks.Result
	Took     time.Duration
	Failures []string // why the drill failed; empty means it passed
}

// Run drills each database in turn and logs one summary line per database.
func Run(ctx context.Context, job Job) []Outcome {
	dbs := job.Databases
	if len(dbs) == 0 {
		// Base backups are drilled by RunPITR, not loaded as dumps.
		for _, db := range job.Catalog.Databases() {
			if _, base := walname.ParseBaseDatabase(db); !base {
				dbs = append(dbs, db)
			}
		}
	}
	var out []Outcome
	for _, db := range dbs {
		if ctx.Err() != nil {
			break
		}
		o := one(ctx, job, db)
		if err := ctx.Err(); err != nil {
			o.Failures = append(o.Failures, fmt.Sprintf("interrupted: %v", err))
		}
		summarize(job.Log, o)
		out = append(out, o)
	}
	return out
}

func one(ctx context.Context, job Job, db string) (o Outcome) {
	start := time.Now()
	o.Database = db
	defer func() { o.Took = time.Since(start) }()
	fail := func(format string, args ...any) { o.Failures = append(o.Failures, fmt.Sprintf(format, args...)) }
	a := job.Catalog.Latest(db)
	for _, x := range job.Catalog.SuspectNewer(db, a) {
		// A forged newer archive is an attack to raise; a future-dated
		// genuine one is a clock to fix, but the drill still proved the
		// newest restorable backup.
		if x.Trust == catalog.TrustUntrusted {
			fail("%s is newer than the archive drilled and %s: never restored", x.Key, x.Why())
		} else {
			job.Log.Warn(fmt.Sprintf("drill %s: skipping %s: %s", db, x.Key, x.Why()), "database", db, "archive", x.Key)
		}
	}
	if a == nil {
		fail("no archive with a complete copy on any upstream (trusted, where signers are configured, and not future-dated)")
		return o
	}
	o.Archive = a.Key
	if a.Manifest.Dump.Format == manifest.BaseBackupFormat {
		fail("%s is a base backup: drill restores dumps (restore-cluster restores base backups)", a.Key)
		return o
	}
	o.Age = job.Now().Sub(a.Name.Created)
	if job.MaxAge > 0 && o.Age > job.MaxAge {
		fail("newest archive is %s old, more than --max-age %s: backups have stopped", roundAge(o.Age), job.MaxAge)
	}
	cluster, err := scratchpg.Start(ctx, scratchpg.Options{PgBin: job.PgBin, TempDir: job.TempDir, Log: job.Log})
	if err != nil {
		fail("scratch PostgreSQL: %v", err)
		return o
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fail("tearing down the scratch cluster: %v", err)
		}
	}()
	r := restore.Open(ctx, restore.CopiesOf(job.Upstreams, a), restore.Options{
		Manifest: a.Manifest, Identities: job.Identities, Log: job.Log})
	defer r.Close()
	// Which databases were restored, and so get their checks.
	dbs := []string{db}
	if db == naming.AllDatabases {
		// A pg_dumpall archive restores whole: roles, every database,
		// owners and grants; the checks run per database.
		res, err := pgload.LoadCluster(ctx, cluster.ConnString("postgres"), r, pgload.ClusterOptions{
			PgBin: job.PgBin, TempDir: job.TempDir, Log: job.Log, Archive: a.Key})
		if err != nil {
			fail("restore: %v", err)
			return o
		}
		dbs = res.Databases
	} else if _, err := pgload.Load(ctx, cluster.ConnString(db), r, pgload.Options{SourceDB: db, PgBin: job.PgBin, Log: job.Log, Archive: a.Key,
		// The scratch cluster has none of production's roles; ownership and
		// grants are not what a drill proves.
		SkipRoles: true, Jobs: job.Jobs, TempDir: job.TempDir}); err != nil {
		fail("restore: %v", err)
		return o
	}
	o.Restored = r.Delivered()
	for _, name := range dbs {
		for _, c := range checks.Run(ctx, cluster.ConnString(name), checks.For(job.Checks, name)) {
			if db != name {
				c.Query = name + ": " + c.Query
			}
			o.Checks = append(o.Checks, c)
			if c.Err != nil {
				fail("check %q: %v", c.Query, c.Err)
			}
		}
	}
	return o
}

// Err summarizes failures for the exit status.
func Err(os []Outcome) error {
	var errs []error
	for _, o := range os {
		if len(o.Failures) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", o.Database, strings.Join(o.Failures, "; ")))
		}
	}
	return errors.Join(errs...)
}

func summarize(log *slog.Logger, o Outcome) {
	attrs := []any{"database", o.Database, "drill", "passed"}
	if o.Archive != "" {
		attrs = append(attrs, "archive", o.Archive)
	}
	checked := len(o.Checks)
	if len(o.Failures) > 0 {
		attrs[3] = "failed"
		log.Error(fmt.Sprintf("%s: drill FAILED after %s: %s", o.Database, o.Took.Round(time.Millisecond), strings.Join(o.Failures, "; ")), attrs...)
		return
	}
	log.Info(fmt.Sprintf("%s: drill passed: %s (%s old) restored into a scratch cluster (%s of dump) in %s, %d checks passed",
		o.Database, o.Archive, roundAge(o.Age), textfmt.Bytes(o.Restored), o.Took.Round(time.Millisecond), checked), attrs...)
}

func roundAge(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
