package main

import (
	"errors"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/naming"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "decrypt an archive to a file, stdout, or straight into a database",
		Description: `With trusted signers configured (--trusted-signer), only an archive whose manifest
carries a valid signature by one of them is restored, and its data must match the age
header the signed manifest pins before a byte is decrypted; --latest skips untrusted and
future-dated archives, naming each, and --archive refuses an untrusted one.

Fetches the archive from the first upstream holding a complete copy; if that copy turns
out missing or corrupt part way, carries on from the next upstream at the same offset.
Decryption and decompression are streamed: no plaintext is written anywhere but the output.
At the end the dump's SHA-256 is checked against the manifest and a plain-SQL dump must end
with pg_dump's completion line; otherwise the exit status is 1 and --output FILE is not
created (output already written to stdout cannot be taken back: check the exit status).

--output writes the dump (decompressed; --raw keeps it as stored, e.g. .sql.gz).
--into loads it into the database named by a libpq URL or key=value string. The dump's
format is read from its first bytes: plain SQL loads with psql, the dump's own CREATE
DATABASE and \connect (postgresqlBackup runs pg_dump -C) rewritten, so --into another name
loads there and leaves the original database untouched; custom (pg_dump -Fc) and tar
(pg_dump -Ft) dumps load with pg_restore. pg_restore needs a file: those dumps are first
spooled, decrypted, into a private directory (mode 0700) below --temp-dir (default $TMPDIR),
removed when the restore ends, also on SIGTERM; a spool left by a restore killed with
SIGKILL is removed by the next one. Plain SQL is never spooled.

A missing target is created like the dump's database: its encoding, locale (collate,
ctype) and owner, where that role exists (else the loading user, with a log line); a locale
this system lacks falls back to C with the dump's encoding. A non-empty target is refused
unless --force: then the dump loads into a new database, which takes the target's name only
once the load succeeded (connections to the old one are ended then, and it is dropped), so a
failed forced restore leaves it as it was. The load is one transaction (with --jobs above 1,
pg_restore's is not: a failed load's new database is dropped instead), so a failure leaves
nothing behind. Errors name the archive, its format, the tool and its first error line.
--sanitize then runs an SQL script in it, e.g. to scrub personal data.

A pg_dumpall archive (database "all", NixOS' backupAll) restores --into a server: name its
maintenance database (--into postgresql:///postgres). Roles come first (those that exist are
kept as they are, and named), then every database but template1, each created like the
dump's and loaded as above; before anything changes, the restore is refused if a database it
would load exists and is not empty, unless --force. The dump is spooled privately first, to
find its databases. --only NAME loads just that database of it into the --into database.
A cluster dump creates its roles, superusers and passwords included: restore only archives
whose signature you trust (--trusted-signer), as restore does when signers are configured.

Examples:
   pgarchive restore --database db1 --output - --identity-file key.txt | less
   pgarchive restore -d db1 --archive db1_20261121T020000Z.sql.gz.age --output db1.sql -i key.txt
   pgarchive restore -d db1 --into postgresql:///db1_dev --sanitize scrub.sql -i key.txt`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Required: true, Usage: "database `NAME` whose archive to restore"},
			&cli.BoolFlag{Name: "latest", Usage: "the newest archive with a complete copy (the default)"},
			&cli.StringFlag{Name: "archive", Usage: "this archive: its name as list shows it, or its full `KEY`"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the dump to `FILE`, or - for stdout", TakesFile: true},
			&cli.StringFlag{Name: "into", Usage: "load into the database at `CONNSTRING`, e.g. postgresql:///db1_copy or \"host=/run/postgresql dbname=db1_copy\""},
			&cli.BoolFlag{Name: "raw", Usage: "with --output: the dump as stored (still compressed), byte for byte"},
			&cli.StringFlag{Name: "sanitize", Usage: "with --into: run this SQL `FILE` in the database after loading", TakesFile: true},
			&cli.BoolFlag{Name: "no-owner", Usage: "with --into: leave out ownership and grants (like pg_restore --no-owner --no-privileges), for a cluster without the dump's roles"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing --output file; replace a non-empty --into database (once the new data loaded)"},
			&cli.StringFlag{Name: "only", Usage: "with --database all --into: load just database `NAME` of the pg_dumpall archive into the --into database (roles are not created: ownership needs them, else --no-owner)"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, Usage: "with --into: restore a custom-format archive with pg_restore --jobs `N` (not one transaction then; a failed load's new database is dropped)"},
			&cli.StringFlag{Name: "temp-dir", Usage: "with --into: spool custom and tar archives, decrypted, into a private directory below `DIR` (default $TMPDIR), removed afterwards", TakesFile: true},
		}, keyFlags()...),
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("restore takes no arguments (got %q)", c.Args().First())
	}
	output, into := c.String("output"), c.String("into")
	switch {
	case (output == "") == (into == ""):
		return usageError("give exactly one of --output FILE|- and --into CONNSTRING")
	case c.IsSet("latest") && c.IsSet("archive"):
		return usageError("give --latest or --archive, not both")
	case c.Bool("raw") && into != "":
		return usageError("--raw only applies to --output")
	case (c.String("sanitize") != "" || c.Bool("no-owner")) && into == "":
		return usageError("--sanitize and --no-owner only apply to --into")
	case c.String("only") != "" && c.String("database") != naming.AllDatabases:
		return usageError("--only picks one database out of a pg_dumpall archive: give it with --database all")
	case c.String("only") != "" && into == "":
		return usageError("--only applies to --into")
	}
	if output != "" && output != "-" && !c.Bool("force") {
		if _, err := os.Lstat(output); err == nil {
			return usageError("%s exists; pass --force to overwrite it", output)
		}
	}
	if p := c.String("sanitize"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return usageError("--sanitize: %v", err)
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	db := c.String("database")
	s, err := openSession(ctx, c, db)
	if err != nil {
		return err
	}
	ids, err := decryptKey(c, s.settings)
	if err != nil {
		return err
	}
	err = job.Restore(ctx, job.RestoreOptions{
		Catalog: s.cat, Upstreams: s.ups, Remote: s.settings.Remote, Database: db, Archive: c.String("archive"),
		Keys: ids, Raw: c.Bool("raw"), Output: output, Stdout: os.Stdout,
		Into: into, Only: c.String("only"), Force: c.Bool("force"), Jobs: c.Int("jobs"), TempDir: c.String("temp-dir"), Sanitize: c.String("sanitize"), NoOwner: c.Bool("no-owner"), PgBin: s.settings.PgBin,
		Progress: progress, Log: logger,
	})
	if errors.Is(err, job.ErrInterrupted) {
		return cli.Exit(err.Error(), exitInterrupted)
	}
	return err
}

// progress draws a bar on a terminal only: under journald or in a pipe,
// the log lines say what happened.
func progress(size int64) (func(int), func()) {
	if !logging.StderrTerminal() || logHandler == nil || logHandler.Target() != logging.Stderr {
		return func(int) {}, func() {}
	}
	bar := progressbar.DefaultBytes(size, "restoring")
	return func(n int) { bar.Add(n) }, func() { bar.Finish() }
}
