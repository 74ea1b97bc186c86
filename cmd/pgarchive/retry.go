package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/walarchive"
)

func retryCommand() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "upload the backlog: archives that some upstream failed to take",
		ArgsUsage: " ",
		Description: `When an upstream fails during archive and --state-dir is set, the encrypted archive (the
very bytes the other upstreams got; never plaintext) is kept in <state-dir>/backlog with
its manifest and the list of upstreams still lacking it. archive retries the backlog of its
database before its own dump; retry does it on demand, for every database or one.

For each archive and each upstream still lacking it: if the upstream meanwhile holds the
same manifest and data of the right size, it is marked done; otherwise the data is
uploaded (replacing a leftover of the failed upload, after removing any stale manifest),
its SHA-256 checked against the manifest on the way, verified on the upstream (size, and
hash where the backend offers one), and only then given its manifest. An archive is
removed from the backlog once no upstream lacks it.

An upstream that is no longer a writable member of --remote is left pending: the entry
stays until it is delivered, dropped by the size cap (--backlog-max-size), or deleted by
hand (its directory is named in the log). Entries in use by another pgarchive process
(a concurrent archive) are skipped.

One line per archive and upstream, then a summary. Exit status 1 while any archive
(of --database, if given) remains in the backlog, 0 when it is empty.

Examples:
   pgarchive --config /etc/pgarchive.json retry
   pgarchive --state-dir /var/lib/pgarchive retry --database db1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
		},
		Action: runRetry,
	}
}

func runRetry(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("retry takes no arguments")
	}
	db := c.String("database")
	st, err := openStore(c, db)
	if err != nil {
		return err
	}
	s := st.settings
	if s.StateDir == "" {
		return usageError("retry needs --state-dir (env PGARCHIVE_STATE_DIR): where the backlog is kept")
	}
	ctx, cancel := signalContext()
	defer cancel()
	ups, err := st.upstreams(ctx, remote.Options{})
	if err != nil {
		return err
	}
	if db == "" {
		// WAL files wal-push left in the backlog (--durability
		// one-upstream-and-backlog) belong to no database.
		wal, err := (walarchive.DirBacklog{StateDir: s.StateDir}).Retry(ctx, ups, logger)
		if err != nil {
			return err
		}
		derr := retryDumps(ctx, s, db, ups)
		if wal.Remaining > 0 {
			return errors.Join(derr, fmt.Errorf("retry: %d WAL files are still in the backlog", wal.Remaining))
		}
		return derr
	}
	return retryDumps(ctx, s, db, ups)
}

func retryDumps(ctx context.Context, s *Settings, db string, ups []*remote.Upstream) error {
	if u, err := backlog.Usage(s.StateDir); err == nil && u.Archives == 0 {
		logger.Info(fmt.Sprintf("retry: the backlog in %s is empty", backlog.Root(s.StateDir)))
		return nil
	}
	return job.RetryBacklog(ctx, job.RetryOptions{StateDir: s.StateDir, Database: db, Upstreams: ups, Log: logger})
}
