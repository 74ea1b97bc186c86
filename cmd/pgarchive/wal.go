package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/walarchive"
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

NixOS: services.pgarchive.wal.enable sets archive_command. By hand (postgresql.conf):
   archive_mode = on
   archive_command = 'pgarchive --config /etc/pgarchive.json wal-push %p'`,
		Flags: []cli.Flag{
			pgdataFlag(),
			&cli.StringFlag{Name: "durability", EnvVars: []string{"PGARCHIVE_WAL_DURABILITY"}, Value: "every-upstream", Usage: "when a file counts as archived: every-upstream or one-upstream-and-backlog (see above)"},
			&cli.StringFlag{Name: "compression", Value: "zstd", Usage: "zstd or none, applied before encryption"},
		},
		Action: runWALPush,
	}
}

func runWALPush(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("wal-push takes one argument, the WAL file's path (%%p)")
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
        with writes missing; fix the cause and start the server again.`, exitAbortRecovery),
		Flags:  append([]cli.Flag{pgdataFlag()}, keyFlags()...),
		Action: runWALFetch,
	}
}

func runWALFetch(c *cli.Context) error {
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

func walFetch(c *cli.Context) error {
	st, err := openStore(c, "")
	if err != nil {
		return err
	}
	ids, err := decryptKey(c, st.settings)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	ups, err := st.upstreams(ctx, remote.Options{Read: true})
	if err != nil {
		return err
	}
	used, err := walarchive.Fetch(ctx, walarchive.FetchOptions{File: c.Args().Get(0), Dest: c.Args().Get(1), DataDir: c.String("pgdata"),
		Prefix: st.prefix, Upstreams: ups, Identities: ids, Trusted: st.settings.Trusted, Log: logger})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("wal-fetch %s: restored from %s", c.Args().First(), used))
	return nil
}
