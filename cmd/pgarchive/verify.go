package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/verify"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that every upstream holds every archive intact",
		Description: `Without a key: checks each archive on every upstream: manifest present and equal to the
other upstreams' copies, data object of the manifest's size, and the backend's own hash
where the manifest records one of its kind (S3 single-part uploads: MD5; local folders:
CRC-32; SFTP: SHA-256). S3 multipart objects carry no whole-object hash: size only.
With --trusted-signer (a global flag), every copy of an UNTRUSTED archive (no valid
signature by a trusted key on any upstream) is a problem, named with the reason.

With --deep and a key: also downloads every copy, decrypts it (age's authenticated
encryption proves each chunk intact), decompresses it, compares the dump's SHA-256 with
the manifest and checks that a plain-SQL dump ends with pg_dump's completion line.

Every problem is logged naming the archive and the upstream; exit status 1 if any.

Examples:
   pgarchive --config /etc/pgarchive.json verify
   pgarchive verify --database db1 --latest --deep --identity-file /run/agenix/restore-key`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "latest", Usage: "only the newest archive of each database"},
			&cli.BoolFlag{Name: "deep", Usage: "download, decrypt and decompress every copy (needs a key)"},
		}, keyFlags()...),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("verify takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSession(ctx, c, c.String("database"))
	if err != nil {
		return err
	}
	opt := verify.Options{Deep: c.Bool("deep"), Log: logger}
	if opt.Deep {
		if opt.Identities, err = decryptKey(c, s.settings); err != nil {
			return err
		}
	} else if c.IsSet("identity-file") || c.IsSet("passphrase-file") {
		return usageError("a key is only used with --deep")
	}
	archives := s.cat.Archives
	if c.Bool("latest") {
		archives = newestPerDatabase(archives)
	}
	if len(archives) == 0 {
		if err := s.unlisted(); err != nil {
			return err
		}
		return fmt.Errorf("no archives found on remote %q%s", s.settings.Remote, forDB(c.String("database")))
	}
	res := verify.Run(ctx, s.ups, s.cat, archives, opt)
	if err := ctx.Err(); err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("verify: %s, %s ok, %s", textfmt.Plural(res.Archives, "archive"), textfmt.Plural(res.CopiesOK, "copy"), textfmt.Plural(len(res.Problems), "problem")))
	if n := len(res.Problems); n > 0 {
		return fmt.Errorf("verify found %s (listed above)", textfmt.Plural(n, "problem"))
	}
	return nil
}

func newestPerDatabase(all []*catalog.Archive) []*catalog.Archive {
	seen := map[string]bool{}
	var out []*catalog.Archive
	for _, a := range all { // newest first
		if !seen[a.Name.Database] {
			seen[a.Name.Database] = true
			out = append(out, a)
		}
	}
	return out
}

func forDB(db string) string {
	if db == "" {
		return ""
	}
	return " for database " + db
}
