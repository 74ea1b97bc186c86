package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/basebackup"
	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

func basebackupCommand() *cli.Command {
	return &cli.Command{
		Name:      "basebackup",
		Usage:     "take a base backup with pg_basebackup and archive it like a dump",
		ArgsUsage: " ",
		Description: `Runs pg_basebackup (tar format to stdout, -X none: the WAL comes from the archive that
wal-push fills, so archive_mode must be on) and streams its output through the same encrypt,
fan-out, verify and manifest path as archive: the backup is stored on every upstream as
database base-<system identifier>-pg<major>, <prefix>/base-.../base-..._<time>-<id>.tar<suffix>.age.
Its manifest (format 4) records the cluster, timeline, and the WAL positions the backup starts
at and must be replayed to; PostgreSQL's own backup_manifest stays inside the tar, so
pg_verifybackup can check a restored copy. With --state-dir a copy some upstream missed waits
in the backlog, as for dumps; list, verify, heal, prune and status treat base backups as the
archives of that database.

Only the main tablespace is supported (pg_basebackup writes one tar to stdout).

Examples:
   pgarchive --config /etc/pgarchive.json basebackup
   pgarchive --config /etc/pgarchive.json basebackup --database-cluster-connection "host=/run/postgresql user=postgres"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database-cluster-connection", Aliases: []string{"connection"}, EnvVars: []string{"PGARCHIVE_CLUSTER_CONNECTION"}, Usage: "libpq connection `STRING` of a replication-capable role; default: libpq's environment (PGHOST, PGUSER, ...), e.g. the local socket as postgres"},
			&cli.StringFlag{Name: "compression", Value: "gzip", Usage: "pg_basebackup's client-side compression: " + strings.Join(basebackup.Compressions, ", ")},
		},
		Action: runBasebackup,
	}
}

func runBasebackup(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("basebackup takes no arguments")
	}
	if !slices.Contains(basebackup.Compressions, c.String("compression")) {
		return usageError("--compression %q: one of %s", c.String("compression"), strings.Join(basebackup.Compressions, ", "))
	}
	st, err := openStore(c, "")
	if err != nil {
		return err
	}
	s := st.settings
	k, err := keys.Load(s.Keys)
	if err != nil {
		return err
	}
	signer, err := loadSigner(s)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	ups, err := st.upstreams(ctx, remote.Options{StreamTotal: 1 << 40})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	res, err := job.BaseBackup(ctx, job.BaseBackupOptions{Conn: c.String("database-cluster-connection"), PgBin: s.PgBin,
		Compression: c.String("compression"), Archive: job.NightlyOptions{Prefix: st.prefix, Remote: s.Remote, Keys: k, Signer: signer,
			Upstreams: ups, StateDir: s.StateDir, BacklogMaxSize: s.BacklogMaxSize, MetricsDir: s.MetricsDir,
			Log: logger, Version: version, Host: host, Now: time.Now}})
	if errors.Is(err, job.ErrInterrupted) {
		return cli.Exit(err.Error(), exitInterrupted)
	}
	if err != nil {
		return err
	}
	b := res.Manifest.Base
	logger.Info(fmt.Sprintf("basebackup: %s stored (WAL %s to %s, timeline %d)", res.Key, b.StartLSN, b.StopLSN, b.Timeline))
	return nil
}

func restoreClusterCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore-cluster",
		Usage:     "restore a base backup into a new data directory, set up to recover to a point in time",
		ArgsUsage: " ",
		Description: `Chooses the newest complete base backup that ends before the target (untrusted and
future-dated ones never), unpacks it into --target-dir (created, or empty; mode 0700), and
writes the recovery settings into its postgresql.auto.conf with recovery.signal:
restore_command (pgarchive wal-fetch with this run's settings, see --restore-command),
recovery_target_time or _lsn, recovery_target_timeline = 'latest' and
recovery_target_action. Start PostgreSQL on the directory (as the user that will own it):
it replays the archived WAL up to the target, then, with the default --target-action
promote, opens read-write on a new timeline.

Exactly one target: --to-time T (RFC 3339 or "2026-12-04 20:15:00+01"; without a zone, local
time), --to-lsn L, or --latest (every archived WAL). The tar is checked against its manifest
(size and SHA-256, signature with --trusted-signer) and unpacked safely: no path leaves the
directory. PostgreSQL's backup_manifest is kept, so pg_verifybackup -n DIR checks the files
before the first start. Run restore-cluster as the user PostgreSQL runs as, or chown -R the
directory afterwards.

Examples:
   pgarchive --config /etc/pgarchive.json restore-cluster --to-time "2026-12-04 14:00:00+00" --target-dir /var/lib/postgresql/15-restored
   pgarchive --config /etc/pgarchive.json restore-cluster --latest --target-dir /srv/pg-new`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "target-dir", Required: true, Usage: "the new data `DIR` (must not exist, or be empty)", TakesFile: true},
			&cli.StringFlag{Name: "to-time", Usage: "recover up to this `TIME`"},
			&cli.StringFlag{Name: "to-lsn", Usage: "recover up to this WAL position (`LSN`, e.g. 0/3000060)"},
			&cli.BoolFlag{Name: "latest", Usage: "recover every archived WAL"},
			&cli.StringFlag{Name: "target-action", Value: "promote", Usage: "recovery_target_action once the target is reached: promote, pause or shutdown"},
			&cli.Uint64Flag{Name: "system-identifier", Usage: "the cluster to restore, when the store holds base backups of several (its `ID`, from pgarchive list)"},
			&cli.StringFlag{Name: "restore-command", Usage: "restore_command to write; default: this pgarchive's wal-fetch with the settings of this run (--config, --rclone-config, --remote, --prefix, key and trust files)"},
		}, keyFlags()...),
		Action: runRestoreCluster,
	}
}

// parseTarget reads --to-time, --to-lsn and the flag named latest; with
// none of them, ok is false.
func parseTarget(c *cli.Context, latest string) (t basebackup.Target, ok bool, err error) {
	n := 0
	if s := c.String("to-time"); s != "" {
		n++
		if t.Time, err = basebackup.ParseTime(s); err != nil {
			return t, false, usageError("--to-time: %v", err)
		}
	}
	if s := c.String("to-lsn"); s != "" {
		n++
		if t.LSN, err = walname.ParseLSN(s); err != nil {
			return t, false, usageError("--to-lsn: %v", err)
		}
	}
	if c.Bool(latest) {
		n++
		t.Latest = true
	}
	if n > 1 {
		return t, false, usageError("give one of --to-time, --to-lsn and --%s", latest)
	}
	return t, n == 1, nil
}

func runRestoreCluster(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("restore-cluster takes no arguments")
	}
	t, ok, err := parseTarget(c, "latest")
	if err != nil {
		return err
	}
	if !ok {
		return usageError("give one of --to-time, --to-lsn and --latest")
	}
	if !slices.Contains(basebackup.Actions, c.String("target-action")) {
		return usageError("--target-action %q: promote, pause or shutdown", c.String("target-action"))
	}
	dir, err := filepath.Abs(c.String("target-dir"))
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	sess, err := openSession(ctx, c, "")
	if err != nil {
		return err
	}
	ids, err := decryptKey(c, sess.settings)
	if err != nil {
		return err
	}
	cmd := c.String("restore-command")
	if cmd == "" {
		if cmd, err = restoreCommandLine(c, sess.settings); err != nil {
			return err
		}
	}
	res, err := basebackup.RestoreCluster(ctx, basebackup.RestoreOptions{Catalog: sess.cat, Upstreams: sess.ups, Remote: sess.settings.Remote,
		Keys: ids, SystemID: c.Uint64("system-identifier"), Target: t, Dir: dir, RestoreCommand: cmd, Action: c.String("target-action"), Log: logger})
	if ctx.Err() != nil {
		return cli.Exit(fmt.Sprintf("restore-cluster interrupted: %v; %s is incomplete, remove it", err, dir), exitInterrupted)
	}
	if err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("restore-cluster: %s unpacked into %s (%d files), set to recover to %s; start PostgreSQL on it (pg_verifybackup -n %s checks it first)",
		res.Archive.Key, dir, res.Files, t, textfmt.ShellQuote(dir)))
	return nil
}

// restoreCommandLine is the restore_command that gives recovery this run's
// view of the store: the same pgarchive, settings file, remote, prefix,
// key and trusted signers, by path (never a secret's content).
func restoreCommandLine(c *cli.Context, s *Settings) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	g := globalContext(c)
	args := []string{self}
	add := func(flag, v string) {
		if v != "" {
			args = append(args, "--"+flag, v)
		}
	}
	add("config", g.String("config"))
	add("rclone-config", s.RcloneConfig)
	add("remote", s.Remote)
	add("prefix", s.Prefix)
	id, pass := c.String("identity-file"), c.String("passphrase-file")
	if id == "" && pass == "" {
		id, pass = s.Keys.IdentityFile, s.Keys.PassphraseFile
	}
	for _, p := range []*string{&id, &pass} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	add("identity-file", id)
	add("passphrase-file", pass)
	add("trusted-signers-file", g.String("trusted-signers-file"))
	for _, k := range g.StringSlice("trusted-signer") {
		add("trusted-signer", k)
	}
	add("pg-bin", s.PgBin)
	var q []string
	for _, a := range args {
		// PostgreSQL replaces %f, %p, %r and %% in restore_command.
		q = append(q, strings.ReplaceAll(textfmt.ShellQuote(a), "%", "%%"))
	}
	// A segment the prefetcher (see wal-fetch --help) already fetched and
	// checked is moved into place by the shell PostgreSQL runs the command
	// with: no pgarchive starts for it.
	fast := `f=` + walarchive.PrefetchDir + `/%f; if [ -f "$f" ]; then exec mv -f "$f" "%p"; fi; exec `
	return fast + strings.Join(q, " ") + " wal-fetch %f %p", nil
}
