package main

import (
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/render"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list archives, newest first, and which upstreams hold a complete copy",
		Description: `Lists every upstream of --remote (read-only union members too) and shows each archive once:
database, creation time (from its name, never from storage timestamps), size, and per
upstream one of:
   ok            its own manifest present and its data object of that manifest's size
   MISSING       nothing there
   INCOMPLETE    data without manifest: a failed (or still running) upload
   NO-DATA       manifest without data
   WRONG-SIZE    data object size differs from its manifest
   BAD-MANIFEST  its manifest can't be read or validated
   DIFFERS       its manifest differs from the archive's (the one the copies whose data
                 agrees with it hold, or the trusted one); heal replaces it
   UNTRUSTED     whole, but with trusted signers configured no copy's manifest carries a
                 valid signature by one of them (never restored, drilled or counted)
An archive named more than --max-clock-skew ahead of this host's clock is marked FUTURE.
No key is needed. Exit status 1 when an upstream could not be listed.

Base backups (pgarchive basebackup) are the archives of database
base-<system identifier>-pg<major>. Without --database, the table is followed by each
cluster's archived WAL (wal-push) per upstream: the runs of consecutive segments per
timeline, GAPs (segments missing inside a timeline's span), history files, and pushes cut
short (data without manifest); each base backup with the WAL range it needs and the upstreams
missing part of it; then the recovery window: from the end of the oldest base
backup whose WAL is archived to the last segment reachable without a gap from the newest
one, and what cuts it short. --wal shows only that part.

Examples:
   pgarchive --config /etc/pgarchive.json list
   pgarchive list --database db1 --json | jq '.[0]'`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array for scripts instead of a table"},
			&cli.BoolFlag{Name: "wal", Usage: "list only the archived WAL of each cluster (with --json: a JSON array)"},
		},
		Action: runList,
	}
}

func runList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("list takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSession(ctx, c, c.String("database"))
	if err != nil {
		return err
	}
	wal := c.String("database") == ""
	switch {
	case c.Bool("wal"):
		if !wal {
			return usageError("--wal lists every cluster's WAL: leave out --database")
		}
		invs, windows := s.walView(ctx)
		if c.Bool("json") {
			err = render.WALJSON(c.App.Writer, invs, windows)
		} else {
			render.WALTable(c.App.Writer, invs, windows)
		}
	case c.Bool("json"):
		err = render.ListJSON(c.App.Writer, s.cat)
	default:
		render.ListTable(c.App.Writer, s.cat)
		if wal {
			invs, windows := s.walView(ctx)
			render.WALTable(c.App.Writer, invs, windows)
		}
	}
	if err != nil {
		return err
	}
	return s.unlisted()
}
