package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/checks"
	"github.com/pgarchive/pgarchive/internal/drill"
	"github.com/pgarchive/pgarchive/internal/job"
)

func drillCommand() *cli.Command {
	return &cli.Command{
		Name:  "drill",
		Usage: "restore the newest archive of each database into a throwaway PostgreSQL and check it",
		Description: `The continuous restore test. For each database (--database, repeatable; default: every
database with archives on the remote) it starts a private PostgreSQL cluster (initdb and
pg_ctl from --pg-bin, socket in a private temporary directory, no TCP), restores the newest
archive with a complete copy into it, runs each check query with pgx, and always stops and
deletes the cluster, also when interrupted with SIGTERM or SIGINT. The drill fails when the
newest archive is older than --max-age, when it cannot be decrypted, decompressed or loaded
(a truncated dump fails), or when a check's result does not meet its expectation.

With --trusted-signer (a global flag), the newest archive signed by a trusted key is drilled
and its data must match the age header its signed manifest pins before anything is
decrypted; the drill also fails naming every UNTRUSTED archive newer than the one it
drilled (a forgery, or an archive written without --signing-key), and warns about FUTURE
ones (named more than --max-clock-skew ahead). The dump reaches psql through a filter that
refuses every meta-command pg_dump does not write (\! and the like) before psql sees it.
The load runs as the scratch cluster's superuser: see README, Authenticity.

One summary line per database goes to the log (journald under systemd, with
PGARCHIVE_DATABASE, PGARCHIVE_ARCHIVE and PGARCHIVE_DRILL=passed|failed); exit status 1 if
any database failed. initdb refuses to run as root: run drill as an unprivileged user (the
NixOS unit uses DynamicUser=).

--database, --max-age and --checks-file default to the "drill" section of the --config
file ({"drill": {"database": ["db1"], "max-age": "26h", "checks-file": "..."}}), where the
NixOS module writes them; flags win.

Checks: --check SQL and --expect EXPR are paired in order and apply to every database;
--checks-file FILE.json gives them per database: {"db1": [{"query": "...", "expect": ">= 1"}]},
with "*" for every database. The query's first column of its first row is compared:
   >= N, > N, <= N, < N   numerically
   = V, != V, or V        numerically if both are numbers, else as text (NULL is "NULL")

Point-in-time drill (--pitr, --to-time T or --to-lsn L): the newest base backup that ends
before the target is unpacked into a scratch cluster, which replays the archived WAL through
pgarchive wal-fetch (this run's settings) up to the target and is promoted there; archiving
is off in it, so it never pushes WAL into the archive. Then the checks run in every database
it holds (by name from --checks-file, "*" in each). The outcome is filed under the base
backups' database, base-<system identifier>-pg<major>. A recovery that cannot reach the
target (WAL missing, a damaged or untrusted segment) fails the drill. Dump drills skip the
base-* databases.

Examples:
   pgarchive drill --pitr -i key.txt --check "select count(*) from orders" --expect ">= 1"
   pgarchive drill --identity-file key.txt --max-age 26h
   pgarchive drill -d shop -i key.txt --check "select count(*) from registrations" --expect ">= 1000"`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "database", Aliases: []string{"d"}, Usage: "drill database `NAME` (repeatable; default: all on the remote)"},
			&cli.StringFlag{Name: "max-age", Value: "26h", Usage: "fail when the newest archive is older than this `DURATION` (0: no limit)"},
			&cli.StringSliceFlag{Name: "check", Usage: "run this `SQL` in each restored database (repeatable, paired with --expect)"},
			&cli.StringSliceFlag{Name: "expect", Usage: "what the matching --check must return, e.g. \">= 1000\" (`EXPR`)"},
			&cli.StringFlag{Name: "checks-file", Usage: "per-database checks as JSON `FILE`", TakesFile: true},
			&cli.StringFlag{Name: "temp-dir", Usage: "create scratch clusters, and the private spool of custom and tar dumps, below `DIR` (default $TMPDIR)", TakesFile: true},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, Usage: "restore custom-format (pg_dump -Fc) archives with pg_restore --jobs `N`"},
			&cli.BoolFlag{Name: "pitr", Usage: "drill point-in-time recovery instead: the newest base backup and every archived WAL (see below)"},
			&cli.StringFlag{Name: "to-time", Usage: "drill point-in-time recovery to `TIME` (see restore-cluster)"},
			&cli.StringFlag{Name: "to-lsn", Usage: "drill point-in-time recovery to `LSN`"},
			&cli.Uint64Flag{Name: "system-identifier", Usage: "with --pitr, --to-time or --to-lsn: the cluster (`ID`) when the store holds base backups of several"},
		}, keyFlags()...),
		Action: runDrill,
	}
}

func runDrill(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("drill takes no arguments (got %q)", c.Args().First())
	}
	if os.Geteuid() == 0 {
		return usageError("drill cannot run as root: initdb refuses it; run it as an unprivileged user (the NixOS unit uses DynamicUser)")
	}
	st, err := settings(c)
	if err != nil {
		return err
	}
	opt, err := resolveDrill(c, st)
	if err != nil {
		return err
	}
	cs, err := drillChecks(c, opt.ChecksFile)
	if err != nil {
		return err
	}
	target, pitr, err := parseTarget(c, "pitr")
	if err != nil {
		return err
	}
	dbs := opt.Databases
	if pitr {
		dbs = nil // the whole catalog: base backups are found by cluster
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSessionFor(ctx, c, dbs)
	if err != nil {
		return err
	}
	ids, err := decryptKey(c, s.settings)
	if err != nil {
		return err
	}
	if err := s.unlisted(); err != nil {
		logger.Warn(err.Error())
	}
	if len(dbs) == 0 && len(s.cat.Databases()) == 0 {
		return fmt.Errorf("no archives found on remote %q: nothing to drill", s.settings.Remote)
	}
	dj := drill.Job{
		Databases: dbs, Catalog: s.cat, Upstreams: s.ups, Identities: ids,
		MaxAge: opt.MaxAge, Checks: cs, PgBin: s.settings.PgBin, TempDir: c.String("temp-dir"), Jobs: c.Int("jobs"),
		Now: time.Now, Log: logger,
	}
	var out []drill.Outcome
	if pitr {
		cmd, err := restoreCommandLine(c, s.settings)
		if err != nil {
			return err
		}
		out = []drill.Outcome{drill.RunPITR(ctx, dj, drill.PITR{SystemID: c.Uint64("system-identifier"), Target: target, RestoreCommand: cmd})}
	} else {
		out = drill.Run(ctx, dj)
	}
	job.RecordDrill(s.settings.MetricsDir, out, logger)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("drill interrupted (%v); scratch clusters were removed", err)
	}
	if err := drill.Err(out); err != nil {
		return fmt.Errorf("drill failed: %w", err)
	}
	return nil
}

// drillChecks merges --checks-file with the --check/--expect pairs, which
// apply to every database.
func drillChecks(c *cli.Context, file string) (map[string][]checks.Check, error) {
	m := map[string][]checks.Check{}
	if p := file; p != "" {
		var err error
		if m, err = checks.LoadFile(p); err != nil {
			return nil, err
		}
	}
	qs, es := c.StringSlice("check"), c.StringSlice("expect")
	if len(qs) != len(es) {
		return nil, usageError("%d --check but %d --expect: give one --expect after each --check", len(qs), len(es))
	}
	for i, q := range qs {
		if _, err := checks.ParseExpect(es[i]); err != nil {
			return nil, usageError("--expect %q: %v", es[i], err)
		}
		m["*"] = append(m["*"], checks.Check{Query: q, Expect: es[i]})
	}
	return m, nil
}
