package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
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
	s, err := settings(c)
	if err != nil {
		return err
	}
	if s.StateDir == "" {
		return usageError("retry needs --state-dir (env PGARCHIVE_STATE_DIR): where the backlog is kept")
	}
	db := c.String("database")
	if db != "" {
		if err := naming.ValidateDatabase(db); err != nil {
			return usageError("%v", err)
		}
	}
	if err := config.ValidateRemote(s.Remote); err != nil {
		return usageError("%v", err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	if u, err := backlog.Usage(s.StateDir); err == nil && u.Archives == 0 {
		logger.Info(fmt.Sprintf("retry: the backlog in %s is empty", backlog.Root(s.StateDir)))
		return nil
	}
	if err := remote.LoadConfig(s.RcloneConfig); err != nil {
		return err
	}
	ups, err := remote.Resolve(ctx, s.Remote, remote.Options{})
	if err != nil {
		return err
	}
	return retryBacklog(ctx, s, db, ups)
}

// retryBacklog delivers the backlog (of db, or all when db is "") to ups
// and returns an error naming what remains.
func retryBacklog(ctx context.Context, s *Settings, db string, ups []*remote.Upstream) error {
	res := backlog.Retry(ctx, backlog.RetryOptions{StateDir: s.StateDir, Database: db, Upstreams: ups, Log: logger})
	if res.Entries == 0 && res.Broken == 0 {
		return nil
	}
	summary := fmt.Sprintf("retry: %s in the backlog%s: %d delivered to every upstream and removed, %d remaining",
		textfmt.Plural(res.Entries+res.Broken, "archive"), forDB(db), res.Cleared, res.Remaining)
	var parts []string
	if res.Delivered+res.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%s delivered, %d failed", textfmt.Plural(res.Delivered, "copy"), res.Failed))
	}
	if res.Busy > 0 {
		parts = append(parts, fmt.Sprintf("%d in use by another pgarchive process", res.Busy))
	}
	if res.Broken > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable", res.Broken))
	}
	if len(parts) > 0 {
		summary += " (" + strings.Join(parts, "; ") + ")"
	}
	logger.Info(summary, "backlog_remaining", res.Remaining)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if res.Remaining > 0 {
		u, _ := backlog.Usage(s.StateDir)
		return fmt.Errorf("the backlog in %s still holds %s%s (%s in all): some upstream lacks them (see above)",
			backlog.Root(s.StateDir), textfmt.Plural(res.Remaining, "archive"), forDB(db), textfmt.Bytes(u.Bytes))
	}
	return nil
}
