package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
)

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "archive",
		Usage:     "encrypt one dump and store it on every upstream of the remote",
		ArgsUsage: " ",
		Description: `Reads the dump once, encrypts it with age as a stream and uploads the ciphertext to
every upstream of --remote at the same time; nothing is written to local disk but the
backlog copy described below. Each copy is
stored as <prefix>/<db>/<db>_<YYYYMMDDTHHMMSSZ>-<run id>.sql<suffix>.age, verified (size,
and hash where the backend offers one), and only then given its .manifest.json (docs/format.md).
An existing archive is never overwritten: each run draws a random run ID for its name, so
two runs at once (of one host or two sharing the remote) never write the same key. If any upstream fails, the good copies stay,
the failed upstream gets no manifest, the dump is left untouched, and the exit status is 1.

With --state-dir, the ciphertext is also written to <state-dir>/backlog while it uploads
(encrypted: the same bytes the upstreams get, never plaintext). It is deleted as soon as
every upstream holds a verified copy; if some upstream failed it is kept, with the
upstreams still lacking it, and the run still fails. Each run first delivers the backlog of its database to those
upstreams (see pgarchive retry --help); if that leaves anything behind, the run exits 1 even
when today's archive is stored everywhere, so an alert keeps firing until no copy is
missing. The backlog is capped by --backlog-max-size: the oldest entries are dropped first,
each with an error naming the archive and who still holds it. A dump larger than the cap
is not spooled. A failing backlog disk (full, read-only) only logs a warning: the upload
goes on.

The dump is checked while it streams, at no extra read: its compression must decompress
to the end (gzip and zstd trailers included), and it must be a dump pg_dump finished: plain
SQL (pg_dump, pg_dumpall) ending with pg_dump's completion comment, a custom-format archive
(pg_dump -Fc: its header; pg_restore reads the table of contents) or a tar archive (pg_dump
-Ft: its end). A dump that fails (empty, truncated, not the compression its name says, cut
short by a crashed pg_dump) fails the run naming the file and what is wrong; every upload
in flight is aborted, so no copy is stored as complete, and the dump stays where it is for
inspection. --skip-dump-check stores any file.

--heal then copies this database's archives to the upstreams that lack them, from a
complete copy on another upstream (a quick heal, see pgarchive heal --help).

With --file DUMP the size is known, so uploads of any size work (S3 picks its chunk size
from it). With --file - the dump is read from stdin and its size is unknown: S3 upstreams
then use chunks of at least --stdin-max-size / max_upload_parts (105 MiB for 1 TiB at
S3's 10,000 parts), which costs about that much memory per concurrent chunk
(upload_concurrency, default 4) per S3 upstream. Prefer --file for large dumps.

Examples:
   pgarchive --config /etc/pgarchive.json archive --database db1
   pgarchive -r age1ql3z... --rclone-config rclone.conf archive --database db1 --file /var/backup/postgresql/db1.sql.gz
   pg_dump -C -h db.example db2 | zstd | pgarchive --config /etc/pgarchive.json archive --database db2 --file -
   pgarchive --config /etc/pgarchive.json --state-dir /var/lib/pgarchive archive --database db1 --heal`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Required: true, Usage: "database `NAME` the dump belongs to (\"all\" for pg_dumpall)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the dump `FILE`, or - for stdin (compression from its magic bytes); default <dump-dir>/<database>.sql<suffix of dump-compression>", TakesFile: true},
			&cli.StringFlag{Name: "stdin-max-size", Value: "1Ti", Usage: "largest dump --file - must be able to upload to S3 upstreams (sets their chunk size)"},
			&cli.BoolFlag{Name: "skip-dump-check", Usage: "store the file even if it is not a dump pg_dump finished (see above); for files that are not pg_dump output"},
			&cli.BoolFlag{Name: "heal", Usage: "after the upload, copy this database's archives to upstreams that lack them (pgarchive heal --quick --database NAME)"},
		},
		Action: runArchive,
	}
}

func runArchive(c *cli.Context) (err error) {
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
	opt, err := nightlyOptions(c, db)
	if err != nil {
		// A run that fails before it starts is a data point too.
		job.RecordArchive(s.MetricsDir, job.Backlog{Dir: s.StateDir, MaxBytes: s.BacklogMaxSize}, db, nil, err, logger)
		return err
	}
	defer opt.Source.Close()
	// systemd stops a unit with SIGTERM (shutdown, systemctl stop,
	// TimeoutStartSec=): the run then aborts its uploads, records the
	// failure and says what it left, instead of dying mid-way unheard.
	ctx, cancel := signalContext()
	defer cancel()
	_, err = job.Nightly(ctx, opt)
	if errors.Is(err, job.ErrInterrupted) {
		return cli.Exit(err.Error(), exitInterrupted)
	}
	return err
}

// nightlyOptions resolves and checks, before any upload, everything the run
// needs: settings, keys, signer, the dump, the remote's upstreams.
func nightlyOptions(c *cli.Context, db string) (job.NightlyOptions, error) {
	st, err := openStore(c, db)
	if err != nil {
		return job.NightlyOptions{}, err
	}
	s := st.settings
	k, err := keys.Load(s.Keys)
	if err != nil {
		return job.NightlyOptions{}, err
	}
	signer, err := loadSigner(s)
	if err != nil {
		return job.NightlyOptions{}, err
	}
	var streamTotal int64
	var max fs.SizeSuffix
	if err := max.Set(c.String("stdin-max-size")); err != nil {
		return job.NightlyOptions{}, usageError("--stdin-max-size: %v", err)
	}
	src, err := openDump(c, s, db)
	if err != nil {
		return job.NightlyOptions{}, err
	}
	if src.Size < 0 {
		streamTotal = int64(max)
	}
	ups, err := st.upstreams(context.Background(), remote.Options{StreamTotal: streamTotal})
	if err != nil {
		src.Close()
		return job.NightlyOptions{}, err
	}
	host, _ := os.Hostname()
	opt := job.NightlyOptions{
		Database: db, Prefix: st.prefix, Remote: s.Remote, Source: src, Keys: k, Signer: signer,
		CheckDump: !c.Bool("skip-dump-check"), Upstreams: ups,
		StateDir: s.StateDir, BacklogMaxSize: s.BacklogMaxSize, MetricsDir: s.MetricsDir,
		Heal: c.Bool("heal"),
		Log:  logger, Version: version, Host: host, Now: time.Now,
	}
	if opt.Heal {
		opt.Policy = st.policy()
		opt.ReadUpstreams = func(ctx context.Context) ([]*remote.Upstream, error) {
			return st.upstreams(ctx, remote.Options{Read: true})
		}
	}
	return opt, nil
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

// loadSigner reads --signing-key, or says once that archives go unsigned.
func loadSigner(s *Settings) (*sign.Signer, error) {
	if s.SigningKey == "" {
		logger.Warn("archives are not signed: no --signing-key is configured, so readers can't tell them from forgeries")
		return nil, nil
	}
	return sign.LoadSigner(s.SigningKey)
}

// exitInterrupted is the exit status of a run stopped by a signal, as a
// shell reports one killed by SIGTERM (128+15), so systemd and scripts see
// the cause.
const exitInterrupted = 143
