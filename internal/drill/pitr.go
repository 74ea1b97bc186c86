package drill

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgarchive/pgarchive/internal/basebackup"
	"github.com/pgarchive/pgarchive/internal/checks"
	"github.com/pgarchive/pgarchive/internal/scratchpg"
)

// PITR is a point-in-time drill's own settings.
type PITR struct {
	SystemID       uint64 // 0: the only cluster with base backups
	Target         basebackup.Target
	RestoreCommand string // restore_command for the scratch cluster (pgarchive wal-fetch)
}

// RunPITR restores the newest base backup before the target into a
// scratch cluster, replays the archived WAL up to the target, and runs
// the checks against every database there (a check keyed by a database
// name runs in that database, "*" in each). Its outcome is filed under
// the base backups' database name.
func RunPITR(ctx context.Context, job Job, p PITR) Outcome {
	start := time.Now()
	var o Outcome
	defer func() {
		o.Took = time.Since(start)
		summarize(job.Log, o)
	}()
	fail := func(format string, args ...any) { o.Failures = append(o.Failures, fmt.Sprintf(format, args...)) }
	a, err := basebackup.Choose(job.Catalog, p.SystemID, p.Target, job.Log)
	if err != nil {
		o.Database = "pitr"
		fail("%v", err)
		return o
	}
	o.Database, o.Archive = a.Name.Database, a.Key
	o.Age = job.Now().Sub(a.Name.Created)
	ropt := basebackup.RestoreOptions{Upstreams: job.Upstreams, Keys: job.Identities, Target: p.Target,
		RestoreCommand: p.RestoreCommand, Action: "promote", Log: job.Log}
	cluster, err := scratchpg.StartFrom(ctx, scratchpg.Options{PgBin: job.PgBin, TempDir: job.TempDir, Log: job.Log, StartTimeout: 6 * time.Hour},
		func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			ropt.Dir = dir
			_, err := basebackup.Materialize(ctx, a, ropt)
			return err
		})
	if err != nil {
		fail("restoring and starting the base backup: %v", err)
		return o
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fail("tearing down the scratch cluster: %v", err)
		}
	}()
	cluster.Superuser(ctx, "postgres")
	dbs, err := recovered(ctx, cluster.ConnString("postgres"))
	if err != nil {
		fail("recovery to %s: %v\nserver log, last lines:\n%s", p.Target, err, cluster.LogTail())
		return o
	}
	o.Restored = a.Manifest.Dump.Size
	for _, name := range dbs {
		for _, c := range checks.Run(ctx, cluster.ConnString(name), checks.For(job.Checks, name)) {
			c.Query = name + ": " + c.Query
			o.Checks = append(o.Checks, c)
			if c.Err != nil {
				fail("check %q: %v", c.Query, c.Err)
			}
		}
	}
	return o
}

// recovered waits until the server has left recovery (promoted at the
// target) and lists the databases it holds.
func recovered(ctx context.Context, conn string) ([]string, error) {
	for {
		c, err := pgx.Connect(ctx, conn)
		if err != nil {
			return nil, err // the server died: recovery failed
		}
		var in bool
		err = c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&in)
		if err == nil && !in {
			var dbs []string
			rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
			if err == nil {
				dbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			c.Close(ctx)
			return dbs, err
		}
		c.Close(ctx)
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
