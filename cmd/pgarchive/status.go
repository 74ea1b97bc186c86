package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/render"
	"github.com/pgarchive/pgarchive/internal/status"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "check that every upstream holds a recent complete archive of each database (a monitoring check)",
		Description: `Lists every upstream of --remote (read-only union members too) and judges each database
on each upstream by its newest complete archive (manifest present, data of the manifest's
size). Ages come from archive names, never from storage timestamps. States:
   OK        a complete archive no older than --max-age
   STALE     complete archives, but the newest is older than --max-age
   MISSING   no complete archive of the database on that upstream
   UNLISTED  the upstream could not be listed (the error is shown)
A union member that takes no new archives (:ro, :nc) holds history: it is reported (what
it holds, its newest) but never STALE or MISSING.
   UNTRUSTED an archive there has no valid signature by a --trusted-signer (a forgery, or
             written without --signing-key); named, and never counted as fresh
   FUTURE    an archive there is named more than --max-clock-skew ahead of this host's
             clock (a wrong clock, or a forgery meant to look fresh forever)
Base backups (databases base-<system identifier>-pg<major>) are judged by
--base-backup-max-age instead of --max-age. Without --database, status also judges each
cluster's archived WAL (see list --help): it fails when a cluster has WAL but no usable base
backup, when the newest base backup's WAL is not all archived, or when a gap on every
upstream cuts the recovery window short; each problem is an error entry, the table ends
with the windows, --json has them under "wal", and --metrics-dir writes pgarchive-wal.prom
(pgarchive_wal_ok, pgarchive_wal_recovery_window_start_timestamp_seconds,
pgarchive_wal_newest_timestamp_seconds, pgarchive_wal_gaps).
--database and --max-age default to the "status" section of the --config file ({"status":
{"database": ["db1"], "max-age": "26h"}}), where the NixOS module writes them; flags win.
Databases given with --database are expected: one without any archive is MISSING on every
upstream. Without --database every database found on the remote is checked. No key is
needed; status never downloads an archive.

Output: a one-line summary (the status text monitoring systems show), then a table of
database, upstream, newest archive, its age, complete archives held and state.

Exit status: 0 when every entry is OK; 1 when anything is STALE, MISSING, UNLISTED,
UNTRUSTED or FUTURE, when
nothing was found at all, or when the remote cannot be reached; 2 for usage errors. That
fits Nagios/Icinga plugin conventions (0 OK, 1 WARNING, 2 CRITICAL/UNKNOWN).

With --metrics-dir (a global option) status also writes pgarchive-status.prom for
node_exporter's textfile collector: pgarchive_status_ok, pgarchive_archives and
pgarchive_newest_archive_age_seconds, labelled command="status", database, upstream, and
pgarchive_status_max_age_seconds (the limit each database was judged by). pgarchive report
shows the same verdict as a page.

--json prints one object with these fields:
   ok               true when the exit status is 0
   summary          the summary line
   time             when the check ran (RFC 3339, UTC)
   max_age_seconds  --max-age in seconds (0: no limit)
   entries          one per database and upstream, sorted by database, then upstream order:
     database, upstream, state (OK|STALE|MISSING|UNLISTED),
     archive      newest complete archive's file name    (absent when there is none)
     key          its object key                         (absent when there is none)
     created      its creation time, from its name       (absent when there is none)
     age_seconds  whole seconds since then               (absent when there is none)
     archives     complete archives of the database there (absent when UNLISTED)
     error        why the upstream could not be listed   (UNLISTED only)

Examples:
   pgarchive --config /etc/pgarchive.json status
   pgarchive status --database shop --database crm --max-age 26h
   pgarchive status --json | jq -r '.entries[] | select(.state != "OK") | "\(.database) \(.upstream)"'
   pgarchive --metrics-dir /var/lib/prometheus-node-exporter status    # from a timer
   # Nagios/Icinga via NRPE: the first output line and the exit status are the check result
   command[check_pgarchive]=/run/wrappers/bin/sudo pgarchive --config /etc/pgarchive.json status`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "database", Aliases: []string{"d"}, Usage: "check database `NAME` (repeatable; default: every database on the remote); one with no archive is MISSING"},
			&cli.StringFlag{Name: "max-age", Value: "26h", Usage: "STALE when the newest complete archive is older than `DURATION` (0: no limit); 26h suits nightly dumps"},
			&cli.StringFlag{Name: "base-backup-max-age", Value: "192h", Usage: "the same for base backups (databases base-*: pgarchive basebackup); 192h suits weekly ones"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object for scripts instead of the table (fields above)"},
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("status takes no arguments (got %q)", c.Args().First())
	}
	opt, err := statusSettings(c)
	if err != nil {
		return err
	}
	dbs, maxAge := opt.Databases, opt.MaxAge
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSessionFor(ctx, c, dbs)
	if err != nil {
		return err
	}
	r := checkStatus(s, dbs, maxAge, opt.BaseMaxAge)
	var invs []*walarchive.Inventory
	var windows []walarchive.Window
	if len(dbs) == 0 {
		invs, windows = s.walView(ctx)
	}
	if c.Bool("json") {
		err = render.StatusJSON(c.App.Writer, r, render.WALValues(invs, windows))
	} else {
		render.StatusTable(c.App.Writer, r)
		render.WALTable(c.App.Writer, invs, windows)
	}
	if err != nil {
		return err
	}
	job.RecordStatus(s.settings.MetricsDir, r, len(dbs) == 0, logger)
	if len(dbs) == 0 {
		recordWAL(s.settings.MetricsDir, invs, windows)
	}
	if v := status.Judge(r, walarchive.Problems(windows)); !v.OK {
		logProblems(r)
		return errors.New(v.Summary)
	}
	return nil
}

// checkStatus judges dumps by maxAge and base backups (databases
// base-<sysid>-pg<major>) by baseMaxAge, in one report.
func checkStatus(s *session, dbs []string, maxAge, baseMaxAge time.Duration) status.Report {
	now := time.Now().UTC()
	if len(dbs) == 0 {
		dbs = s.cat.Databases()
	}
	var dumps, bases []string
	for _, db := range dbs {
		if _, ok := walname.ParseBaseDatabase(db); ok {
			bases = append(bases, db)
		} else {
			dumps = append(dumps, db)
		}
	}
	if len(bases) == 0 {
		return status.Check(s.cat, dumps, now, maxAge)
	}
	rb := status.Check(s.cat, bases, now, baseMaxAge)
	if len(dumps) == 0 {
		return rb
	}
	r := status.Check(s.cat, dumps, now, maxAge)
	r.Entries = append(r.Entries, rb.Entries...)
	return r
}

// logProblems writes one error entry per database and upstream that is not
// OK, with the database and upstream as journal fields, so that a failure
// notice (pgarchive notify, reading the unit's journal) can name them.
func logProblems(r status.Report) {
	for _, e := range r.Entries {
		if e.State == status.OK {
			continue
		}
		logger.Error(fmt.Sprintf("status: %s on %s is %s: %s", e.Database, e.Upstream, e.State, e.Detail(e.MaxAge)),
			"database", e.Database, "upstream", e.Upstream)
	}
}
