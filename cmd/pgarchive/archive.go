package main

import (
	"context"
	"os"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "archive",
		Usage:     "encrypt one dump and store it on every upstream of the remote",
		ArgsUsage: " ",
		Description: `Reads the dump once, encrypts it with age as a stream and uploads the ciphertext to
every upstream of --remote at the same time; nothing is written to local disk. Each copy is
stored as <prefix>/<db>/<db>_<YYYYMMDDTHHMMSSZ>.sql<suffix>.age, verified (size, and hash
where the backend offers one), and only then given its .manifest.json (docs/format.md).
An existing archive is never overwritten. If any upstream fails, the good copies stay,
the failed upstream gets no manifest, the dump is left untouched, and the exit status is 1.

With --file DUMP the size is known, so uploads of any size work (S3 picks its chunk size
from it). With --file - the dump is read from stdin and its size is unknown: S3 upstreams
then use chunks of at least --stdin-max-size / max_upload_parts (105 MiB for 1 TiB at
S3's 10,000 parts), which costs about that much memory per concurrent chunk
(upload_concurrency, default 4) per S3 upstream. Prefer --file for large dumps.

Examples:
   pgarchive --config /etc/pgarchive.json archive --database db1
   pgarchive -r age1ql3z... --rclone-config rclone.conf archive --database db1 --file /var/backup/postgresql/db1.sql.gz
   pg_dump -C -h db.example db2 | zstd | pgarchive --config /etc/pgarchive.json archive --database db2 --file -`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Required: true, Usage: "database `NAME` the dump belongs to (\"all\" for pg_dumpall)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the dump `FILE`, or - for stdin (compression from its magic bytes); default <dump-dir>/<database>.sql<suffix of dump-compression>", TakesFile: true},
			&cli.StringFlag{Name: "stdin-max-size", Value: "1Ti", Usage: "largest dump --file - must be able to upload to S3 upstreams (sets their chunk size)"},
		},
		Action: runArchive,
	}
}

func runArchive(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("archive takes no arguments (got %q); pass the dump with --file", c.Args().First())
	}
	s, err := settings(c)
	if err != nil {
		return err
	}
	db := c.String("database")
	if err := naming.ValidateDatabase(db); err != nil {
		return usageError("%v", err)
	}
	prefix, err := naming.CleanPrefix(s.Prefix)
	if err != nil {
		return usageError("%v", err)
	}
	if err := config.ValidateRemote(s.Remote); err != nil {
		return usageError("%v", err)
	}
	// Everything that can be checked locally is checked before any upload.
	k, err := keys.Load(s.Keys)
	if err != nil {
		return err
	}
	src, err := openDump(c, s, db)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := remote.LoadConfig(s.RcloneConfig); err != nil {
		return err
	}
	var streamTotal int64
	if src.Size < 0 {
		var max fs.SizeSuffix
		if err := max.Set(c.String("stdin-max-size")); err != nil {
			return usageError("--stdin-max-size: %v", err)
		}
		streamTotal = int64(max)
	}
	ctx := context.Background()
	ups, err := remote.Resolve(ctx, s.Remote, remote.Options{StreamTotal: streamTotal})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	_, err = archive.Run(ctx, archive.Job{
		Database: db, Prefix: prefix, Source: src, Keys: k, Upstreams: ups,
		Log: logger, Version: version, Host: host, Now: time.Now,
	})
	return err
}

func openDump(c *cli.Context, s *Settings, db string) (*archive.Source, error) {
	switch f := c.String("file"); f {
	case "-":
		return archive.OpenStream(os.Stdin)
	case "":
		comp, err := naming.CompressionByName(s.DumpCompression)
		if err != nil {
			return nil, usageError("%v", err)
		}
		return archive.OpenFile(naming.DumpPath(s.DumpDir, db, comp))
	default:
		return archive.OpenFile(f)
	}
}
