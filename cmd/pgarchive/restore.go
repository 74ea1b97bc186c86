package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/pgload"
	"github.com/pgarchive/pgarchive/internal/restore"
	"github.com/pgarchive/pgarchive/internal/textfmt"
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

--output writes the plain SQL (decompressed; --raw keeps the dump as stored, e.g. .sql.gz).
--into loads it with psql into the database named by a libpq URL or key=value string,
creating it if absent and refusing a non-empty one unless --force (which DROPS and recreates
it). The dump's own CREATE DATABASE and \connect (postgresqlBackup runs pg_dump -C) are
rewritten, so --into another name loads there and leaves the original database untouched.
The load is one transaction: if it fails, nothing is left (a database restore created is
dropped again). --sanitize then runs an SQL script in it, e.g. to scrub personal data.
A pg_dumpall archive (database "all") can only be restored with --output.

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
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing --output file; DROP and recreate a non-empty --into database"},
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
	case into != "" && c.String("database") == "all":
		return usageError("database \"all\" is a pg_dumpall archive of a whole cluster: restore it with --output and load it with psql")
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
	a, err := pickArchive(s, db, c.String("archive"))
	if err != nil {
		return err
	}
	bar := progress(c, a.Manifest.Ciphertext.Size)
	r := restore.Open(ctx, restore.CopiesOf(s.ups, a), restore.Options{
		Manifest: a.Manifest, Identities: ids, Raw: c.Bool("raw"), Log: logger,
		OnCiphertext: func(n int) {
			if bar != nil {
				bar.Add(n)
			}
		},
	})
	defer r.Close()
	logger.Info(fmt.Sprintf("%s: restoring %s (%s)", db, a.Key, textfmt.Bytes(a.Manifest.Ciphertext.Size)), "database", db, "archive", a.Key)
	var what string
	if into != "" {
		res, err := pgload.Load(ctx, into, r, pgload.Options{SourceDB: db, Force: c.Bool("force"), Archive: a.Key,
			Sanitize: c.String("sanitize"), SkipRoles: c.Bool("no-owner"), PgBin: s.settings.PgBin, Log: logger})
		if err != nil {
			return err
		}
		what = fmt.Sprintf("loaded into database %s", res.Database)
		if c.String("sanitize") != "" {
			what += ", sanitized with " + c.String("sanitize")
		}
	} else {
		if err := writeOutput(output, r); err != nil {
			return err
		}
		what = "written to " + output
		if output == "-" {
			what = "written to stdout"
		}
	}
	if bar != nil {
		bar.Finish()
	}
	logger.Info(fmt.Sprintf("%s: restored %s from %s (%s) %s", db, a.Key, r.Used, textfmt.Bytes(r.Delivered()), what),
		"database", db, "archive", a.Key, "upstream", r.Used)
	return nil
}

// pickArchive finds the requested archive, or the newest usable one: an
// untrusted or future-dated archive is never taken for the latest, and
// each one skipped is named.
func pickArchive(s *session, db, ref string) (*catalog.Archive, error) {
	if ref == "" {
		a := s.cat.Latest(db)
		for _, x := range s.cat.SuspectNewer(db, a) {
			logger.Warn(fmt.Sprintf("%s: skipping %s, newer than the archive restored: %s", db, x.Key, x.Why()),
				"database", db, "archive", x.Key)
		}
		if a != nil {
			return a, nil
		}
		if err := s.unlisted(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no complete archive of database %s on remote %q that may be restored (pgarchive list shows what there is)", db, s.settings.Remote)
	}
	a := s.cat.Find(ref)
	if a == nil || a.Name.Database != db {
		return nil, fmt.Errorf("archive %s of database %s not found on remote %q (pgarchive list --database %s shows what there is)", ref, db, s.settings.Remote, db)
	}
	if a.Trust == catalog.TrustUntrusted {
		return nil, fmt.Errorf("%s is %s: refusing to restore it", a.Key, a.Why())
	}
	if len(a.CompleteCopies()) == 0 {
		return nil, fmt.Errorf("%s has no complete copy on any upstream (see pgarchive list --database %s)", a.Key, db)
	}
	if a.Future {
		logger.Warn(fmt.Sprintf("%s: restoring %s as asked, though it is %s", db, a.Key, a.Why()), "database", db, "archive", a.Key)
	}
	return a, nil
}

// writeOutput writes to stdout, or to a file that appears only complete:
// a temporary file beside it is renamed into place once every check passed.
func writeOutput(path string, r io.Reader) error {
	if path == "-" {
		_, err := io.Copy(os.Stdout, r)
		return err
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

// progress draws a bar on a terminal only: under journald or in a pipe,
// the log lines say what happened.
func progress(c *cli.Context, size int64) *progressbar.ProgressBar {
	if !logging.StderrTerminal() || logHandler == nil || logHandler.Target() != logging.Stderr {
		return nil
	}
	return progressbar.DefaultBytes(size, "restoring")
}
