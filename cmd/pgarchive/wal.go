package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// exitAbortRecovery is wal-fetch's status for anything but "not found":
// PostgreSQL treats an exit status above 125 from restore_command as
// fatal and stops recovery, instead of taking the file for the end of the
// archive and opening the database early.
const exitAbortRecovery = 126

func pgdataFlag() cli.Flag {
	return &cli.StringFlag{Name: "pgdata", EnvVars: []string{"PGDATA"}, Value: ".", Usage: "PostgreSQL's data `DIR`, for the cluster's system identifier and major version (archive_command and restore_command run in it)", TakesFile: true}
}

func walPushCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-push",
		Usage:     "archive one WAL file (PostgreSQL's archive_command: pgarchive wal-push %p)",
		ArgsUsage: "PATH",
		Description: `Encrypts the WAL file at PATH (a segment, .partial, .history or .backup file; relative
to --pgdata) with the configured recipients, compressed with zstd first unless --compression
none, and stores it on every writable upstream as
<prefix>/wal/<system identifier>/<major>/<file>.age with its .manifest.json (and signature,
with --signing-key), verified like an archive. The system identifier and major version come
from the data directory, so two clusters never mix.

Exit status 0 means durable under --durability:
   every-upstream            (default) every writable upstream holds a verified copy
   one-upstream-and-backlog  at least one does, and the copy for the others is in the
                             backlog under --state-dir (fsynced), delivered by pgarchive retry
Otherwise the status is 1 and each failing upstream gets an error entry naming it;
PostgreSQL keeps the segment and calls wal-push again. Pushing a file that is already
archived with the same content (PostgreSQL does that after a crash) exits 0; a different
file under the same name is refused loudly and never overwritten.

One process per file costs about a third of a second (start-up, page faults, connections):
busy clusters fall behind. With --async the command only waits for a marker: an uploader
(started by the first call, one per data directory, exiting after a minute without work)
pushes every file PostgreSQL has marked ready in pg_wal/archive_status, --async-jobs at once,
ahead of the calls, over connections it keeps, and writes
pg_wal/pgarchive-async/ok/<file> (fsynced) only once the file is durable under --durability.
The command exits 0 on that marker, 1 on the uploader's error or after --async-wait.

NixOS: services.pgarchive.wal.enable sets archive_command. By hand (postgresql.conf):
   archive_mode = on
   archive_command = 'pgarchive --config /etc/pgarchive.json wal-push %p'`,
		Flags: []cli.Flag{
			pgdataFlag(),
			&cli.StringFlag{Name: "durability", EnvVars: []string{"PGARCHIVE_WAL_DURABILITY"}, Value: "every-upstream", Usage: "when a file counts as archived: every-upstream or one-upstream-and-backlog (see above)"},
			&cli.StringFlag{Name: "compression", Value: "zstd", Usage: "zstd or none, applied before encryption"},
			&cli.BoolFlag{Name: "async", EnvVars: []string{"PGARCHIVE_WAL_ASYNC"}, Usage: "wait for the uploader instead of pushing (see above); starts it when none runs"},
			&cli.IntFlag{Name: "async-jobs", Value: 2, Usage: "with --async or --uploader: files the uploader pushes at once"},
			&cli.DurationFlag{Name: "async-wait", Value: time.Minute, Usage: "with --async: how long to wait for the uploader before exiting 1 (PostgreSQL calls again)"},
			&cli.BoolFlag{Name: "uploader", Usage: "run the uploader in the foreground (a systemd unit of its own, say) instead of pushing PATH; it exits after --uploader-idle without work"},
			&cli.DurationFlag{Name: "uploader-idle", Value: time.Minute, Usage: "with --uploader: exit after this long without work (0: never)"},
		},
		Action: runWALPush,
	}
}

func runWALPush(c *cli.Context) error {
	if c.Bool("uploader") {
		if c.NArg() != 0 {
			return usageError("wal-push --uploader takes no WAL file")
		}
	} else if c.NArg() != 1 {
		return usageError("wal-push takes one argument, the WAL file's path (%%p)")
	}
	if c.Bool("async") && !c.Bool("uploader") {
		return waitForUploader(c)
	}
	st, err := openStore(c, "")
	if err != nil {
		return err
	}
	s := st.settings
	dur, err := walarchive.ParseDurability(c.String("durability"))
	if err != nil {
		return usageError("--durability: %v", err)
	}
	if comp := c.String("compression"); comp != "zstd" && comp != "none" {
		return usageError("--compression %q: zstd or none", comp)
	}
	k, err := keys.Load(s.Keys)
	if err != nil {
		return err
	}
	var signer *sign.Signer
	if s.SigningKey != "" {
		if signer, err = sign.LoadSigner(s.SigningKey); err != nil {
			return err
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	ups, err := st.upstreams(ctx, remote.Options{})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	opt := walarchive.PushOptions{Path: c.Args().First(), DataDir: c.String("pgdata"), Prefix: st.prefix, Keys: k, Signer: signer,
		Upstreams: ups, Compression: c.String("compression"), Durability: dur, Log: logger, Version: version, Host: host, Now: time.Now}
	if dur == walarchive.DurabilityBacklog {
		if s.StateDir == "" {
			return usageError("--durability one-upstream-and-backlog needs --state-dir")
		}
		opt.Backlog = walarchive.DirBacklog{StateDir: s.StateDir}
	}
	if c.Bool("uploader") {
		spool := walarchive.SpoolFor(opt.DataDir)
		return spool.RunUploader(ctx, walarchive.UploaderOptions{Push: opt, Jobs: c.Int("async-jobs"), IdleExit: c.Duration("uploader-idle"), Log: logger})
	}
	if s.StateDir != "" {
		// Files an upstream missed earlier go first, as with dumps.
		if _, err := (walarchive.DirBacklog{StateDir: s.StateDir}).Retry(ctx, ups, logger); err != nil {
			logger.Warn(fmt.Sprintf("WAL backlog: %v", err))
		}
	}
	res, err := walarchive.Push(ctx, opt)
	if ctx.Err() != nil {
		return cli.Exit("wal-push interrupted; PostgreSQL will push the file again", 1)
	}
	if err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("wal-push %s: archived as %s on %d upstreams", res.File.Name, res.Key, len(res.Outcomes)))
	return nil
}

// waitForUploader is wal-push --async: wait for the uploader's marker,
// starting the uploader (this program, with these settings, --uploader)
// when none runs.
func waitForUploader(c *cli.Context) error {
	path := c.Args().First()
	name := filepath.Base(path)
	if _, err := walname.Parse(name); err != nil {
		return usageError("%v", err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	spool := walarchive.SpoolFor(c.String("pgdata"))
	err := spool.Wait(ctx, name, c.Duration("async-wait"), func() error { return startUploader(path, spool) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, walarchive.ErrNotYet):
		return fmt.Errorf("wal-push --async %s: the uploader has not stored it within --async-wait %s; PostgreSQL will call again", name, c.Duration("async-wait"))
	default:
		return fmt.Errorf("wal-push --async %s: %w", name, err)
	}
}

// startUploader runs this very command line as the uploader, detached:
// the WAL file's argument is dropped and --uploader added.
func startUploader(path string, spool walarchive.AsyncSpool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return startDetached(exec.Command(self, append(withoutLast(os.Args[1:], path), "--uploader")...), spool.Dir, "uploader.log")
}

// startDetached starts a helper in a session of its own, so that it
// outlives the command PostgreSQL waits for. Its log goes to the journal
// under systemd (--log-target auto), else to a file in dir: holding the
// caller's stderr open would hold up whoever reads it.
func startDetached(cmd *exec.Cmd, dir, logName string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// withoutLast is args without the last element equal to v: a command
// line minus one of its positional arguments, for a helper started with
// the same settings.
func withoutLast(args []string, v string) []string {
	out := append([]string{}, args...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == v {
			return append(out[:i], out[i+1:]...)
		}
	}
	return out
}

func walFetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-fetch",
		Usage:     "restore one WAL file (PostgreSQL's restore_command: pgarchive wal-fetch %f %p)",
		ArgsUsage: "FILE PATH",
		Description: fmt.Sprintf(`Fetches WAL file FILE of the cluster in --pgdata (the one being recovered) and writes it
to PATH (relative to --pgdata), after checking it: the manifest must be this file's, signed
by a --trusted-signer when any is configured, and the data must match its SHA-256 and age
header; the decrypted file its size and SHA-256. Upstreams are tried in order until one
gives a good copy.

Exit status:
   0    the file is at PATH
   1    not found: every upstream answered that it does not hold FILE (the end of the
        archive, as recovery expects)
   %d  anything else: an upstream that could not answer, a wrong key, a bad signature, a
        damaged copy, SIGTERM. PostgreSQL then stops recovery instead of ending it early
        with writes missing; fix the cause and start the server again.

After fetching a segment, wal-fetch starts a prefetcher (one per data directory, gone a
minute after recovery stops asking) that fetches the next --prefetch segments, checked the
same way, into pg_wal/pgarchive-prefetch/ (renamed into place only once whole); a later
wal-fetch of one of them just moves it to PATH, and the restore_command that
restore-cluster writes moves it without starting pgarchive at all.`, exitAbortRecovery),
		Flags: append([]cli.Flag{pgdataFlag(),
			&cli.IntFlag{Name: "prefetch", Value: 8, Usage: "after a segment, fetch up to `N` of the next ones in the background (0: off)"},
			&cli.IntFlag{Name: "prefetch-jobs", Value: 4, Usage: "segments the prefetcher fetches at once"},
			&cli.BoolFlag{Name: "prefetcher", Hidden: true, Usage: "run the prefetcher (started by wal-fetch itself)"},
			&cli.Int64Flag{Name: "segment-size", Hidden: true, Usage: "the cluster's WAL segment size, for the prefetcher"},
		}, keyFlags()...),
		Action: runWALFetch,
	}
}

func runWALFetch(c *cli.Context) error {
	if c.Bool("prefetcher") {
		return runPrefetcher(c)
	}
	if c.NArg() != 2 {
		return cli.Exit("wal-fetch takes two arguments, the file name (%f) and the path to write (%p)", exitAbortRecovery)
	}
	err := walFetch(c)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, walarchive.ErrNotFound):
		logger.Info(err.Error())
		return cli.Exit("", 1)
	default:
		return cli.Exit(fmt.Sprintf("wal-fetch %s: %v; recovery stops here", c.Args().First(), err), exitAbortRecovery)
	}
}

// fetchPrelude is what wal-fetch and its prefetcher start from: the
// store, the key that decrypts, and every member of the remote.
func fetchPrelude(ctx context.Context, c *cli.Context) (*store, *keys.Identities, []*remote.Upstream, error) {
	st, err := openStore(c, "")
	if err != nil {
		return nil, nil, nil, err
	}
	ids, err := decryptKey(c, st.settings)
	if err != nil {
		return nil, nil, nil, err
	}
	ups, err := st.upstreams(ctx, remote.Options{Read: true})
	return st, ids, ups, err
}

func walFetch(c *cli.Context) error {
	ctx, cancel := signalContext()
	defer cancel()
	name, dest, pgdata := c.Args().Get(0), c.Args().Get(1), c.String("pgdata")
	spool := walarchive.PrefetchFor(pgdata)
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(pgdata, dest)
	}
	if spool.Take(name, dest) {
		logger.Debug(fmt.Sprintf("wal-fetch %s: prefetched", name))
		return nil
	}
	st, ids, ups, err := fetchPrelude(ctx, c)
	if err != nil {
		return err
	}
	used, err := walarchive.Fetch(ctx, walarchive.FetchOptions{File: name, Dest: c.Args().Get(1), DataDir: pgdata,
		Prefix: st.prefix, Upstreams: ups, Identities: ids, Trusted: st.settings.Trusted, Log: logger})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("wal-fetch %s: restored from %s", name, used))
	if f, _ := walname.Parse(name); f.Kind == walname.Segment && c.Int("prefetch") > 0 {
		startPrefetcher(c, spool, f, dest)
	}
	return nil
}

// startPrefetcher tells the prefetcher which segment comes next and starts
// it (this command line, detached) when none runs. Failures only cost
// speed: they are logged, never returned.
func startPrefetcher(c *cli.Context, spool walarchive.PrefetchSpool, f walname.File, dest string) {
	fi, err := os.Stat(dest)
	if err != nil || !walname.ValidSegmentSize(fi.Size()) {
		return
	}
	n, err := f.SegNo(fi.Size())
	if err != nil {
		return
	}
	if err := spool.Want(walname.SegmentName(f.Timeline, n+1, fi.Size())); err != nil {
		logger.Warn(fmt.Sprintf("wal-fetch: prefetching: %v", err))
		return
	}
	if spool.Running() {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	args := withoutLast(os.Args[1:], c.Args().Get(1))
	args = withoutLast(args, c.Args().Get(0))
	cmd := exec.Command(self, append(args, "--prefetcher", "--segment-size", strconv.FormatInt(fi.Size(), 10))...)
	if err := startDetached(cmd, spool.Dir, "prefetcher.log"); err != nil {
		logger.Warn(fmt.Sprintf("wal-fetch: starting the prefetcher: %v", err))
	}
}

func runPrefetcher(c *cli.Context) error {
	ctx, cancel := signalContext()
	defer cancel()
	st, ids, ups, err := fetchPrelude(ctx, c)
	if err != nil {
		return err
	}
	if !walname.ValidSegmentSize(c.Int64("segment-size")) {
		return usageError("--segment-size %d is not a WAL segment size", c.Int64("segment-size"))
	}
	return walarchive.PrefetchFor(c.String("pgdata")).Run(ctx, walarchive.PrefetchOptions{
		Fetch:   walarchive.FetchOptions{DataDir: c.String("pgdata"), Prefix: st.prefix, Upstreams: ups, Identities: ids, Trusted: st.settings.Trusted},
		SegSize: c.Int64("segment-size"), Ahead: c.Int("prefetch"), Jobs: c.Int("prefetch-jobs"), IdleExit: time.Minute, Log: logger})
}
