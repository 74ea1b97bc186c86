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

Examples:
   pgarchive --config /etc/pgarchive.json list
   pgarchive list --database db1 --json | jq '.[0]'`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array for scripts instead of a table"},
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
	if c.Bool("json") {
		err = render.ListJSON(c.App.Writer, s.cat)
	} else {
		render.ListTable(c.App.Writer, s.cat)
	}
	if err != nil {
		return err
	}
	return s.unlisted()
}
