package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/heal"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/textfmt"
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
	// From here on every outcome, early failures included, is a data point.
	var res *archive.Result
	defer func() { writeArchiveMetrics(s, db, res, err) }()
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
	signer, err := loadSigner(s)
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
	// systemd stops a unit with SIGTERM (shutdown, systemctl stop,
	// TimeoutStartSec=): the run then aborts its uploads, records the
	// failure and says what it left, instead of dying mid-way unheard.
	ctx, cancel := signalContext()
	defer cancel()
	defer func() {
		if ctx.Err() != nil {
			err = interrupted(db, res)
		}
	}()
	ups, err := remote.Resolve(ctx, s.Remote, remote.Options{StreamTotal: streamTotal})
	if err != nil {
		return err
	}
	// Yesterday's failures first: a run that heals them is what makes a
	// failed night cost nothing. Their failure must not cost today's archive.
	var backlogErr error
	if s.StateDir != "" {
		backlogErr = retryBacklog(ctx, s, db, ups)
	}
	host, _ := os.Hostname()
	job := archive.Job{
		Database: db, Prefix: prefix, Source: src, Keys: k, Upstreams: ups,
		Log: logger, Version: version, Host: host, Now: time.Now, Signer: signer,
		CheckDump: !c.Bool("skip-dump-check"),
	}
	spool := startSpool(s, src)
	if spool != nil {
		job.Spool = spool
	}
	res, err = archive.Run(ctx, job)
	if spool != nil {
		keepInBacklog(spool, s, res)
	}
	var healErr error
	if c.Bool("heal") {
		healErr = healDatabase(ctx, s, prefix, db)
	}
	switch {
	case err != nil:
		return err
	case backlogErr != nil:
		return backlogErr
	}
	return healErr
}

// startSpool prepares the backlog copy of this run's ciphertext, or says
// why there is none. It never fails the run.
func startSpool(s *Settings, src *archive.Source) *backlog.Spool {
	if s.StateDir == "" {
		return nil
	}
	if src.Size >= 0 && crypt.StreamSize(src.Size) > s.BacklogMaxSize {
		logger.Warn(fmt.Sprintf("backlog: the dump (%s) is larger than --backlog-max-size (%s): if an upstream fails, this archive can't be kept for retry",
			textfmt.Bytes(src.Size), textfmt.Bytes(s.BacklogMaxSize)))
		return nil
	}
	sp, err := backlog.NewSpool(s.StateDir, s.BacklogMaxSize)
	if err != nil {
		logger.Warn(fmt.Sprintf("%v; archiving without a backlog copy", err))
		return nil
	}
	return sp
}

// keepInBacklog keeps the spooled archive if some upstream lacks it and
// drops it otherwise.
func keepInBacklog(sp *backlog.Spool, s *Settings, res *archive.Result) {
	if res == nil || res.Manifest == nil || res.Failed() == 0 {
		if res != nil && res.SpoolErr != nil && res.Manifest != nil {
			logger.Warn(fmt.Sprintf("backlog: %s could not have been kept had an upstream failed: %v", res.Key, res.SpoolErr))
		}
		sp.Discard()
		return
	}
	k := backlog.Keep{Key: res.Key, Remote: s.Remote, Size: res.Manifest.Ciphertext.Size, Manifest: res.ManifestBody,
		Signature: res.Signature, LastErrors: map[string]string{}}
	for _, o := range res.Outcomes {
		if o.Err != nil {
			k.Pending = append(k.Pending, o.Upstream)
			k.LastErrors[o.Upstream] = o.Err.Error()
		} else {
			k.Held = append(k.Held, o.Upstream)
		}
	}
	pending := strings.Join(k.Pending, ", ")
	if !res.Spooled {
		sp.Discard()
		logger.Error(fmt.Sprintf("backlog: %s was NOT kept for %s (%v); run pgarchive heal once the upstream is back", res.Key, pending, res.SpoolErr), "archive", res.Key)
		return
	}
	if err := sp.Keep(k, logger); err != nil {
		logger.Error(fmt.Sprintf("backlog: %s was NOT kept for %s: %v", res.Key, pending, err), "archive", res.Key)
		return
	}
	logger.Warn(fmt.Sprintf("backlog: kept %s (%s) in %s for %s; the next archive of %s or pgarchive retry uploads it",
		res.Key, textfmt.Bytes(res.Manifest.Ciphertext.Size), backlog.Root(s.StateDir), pending, res.Manifest.Database), "archive", res.Key)
}

// healDatabase runs a quick heal of db over every upstream, read-only ones
// included as sources.
func healDatabase(ctx context.Context, s *Settings, prefix, db string) error {
	ups, err := remote.Resolve(ctx, s.Remote, remote.Options{Read: true})
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	cat, err := scan(ctx, s, ups, prefix, db)
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if err := healAndReport(ctx, cat, heal.Options{Upstreams: ups, Writable: writableOf(ups), Quick: true, Log: logger}, db, s.MetricsDir); err != nil {
		return err
	}
	return (&session{cat: cat}).unlisted()
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

// interrupted says what a run stopped by SIGTERM or SIGINT left: no upload
// it had started gets a manifest (S3 multipart uploads are aborted), the
// dump is untouched, and copies completed before the signal stay.
func interrupted(db string, res *archive.Result) error {
	left := "no archive was stored: uploads in flight were aborted and got no manifest"
	if res != nil && res.Manifest != nil {
		if held := len(res.Outcomes) - res.Failed(); held > 0 {
			left = fmt.Sprintf("%s is complete on %d of %d upstreams; the rest got no manifest", res.Key, held, len(res.Outcomes))
		}
	}
	return cli.Exit(fmt.Sprintf("%s: archive interrupted by a signal (SIGTERM or SIGINT); %s; the dump is untouched", db, left), exitInterrupted)
}

// exitInterrupted is the exit status of a run stopped by a signal, as a
// shell reports one killed by SIGTERM (128+15), so systemd and scripts see
// the cause.
const exitInterrupted = 143
