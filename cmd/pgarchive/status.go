package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/status"
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
pgarchive_newest_archive_age_seconds, labelled command="status", database, upstream.

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
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object for scripts instead of the table (fields above)"},
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("status takes no arguments (got %q)", c.Args().First())
	}
	st, err := settings(c)
	if err != nil {
		return err
	}
	opt, err := resolveStatus(c, st)
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
	r := status.Check(s.cat, dbs, time.Now().UTC(), maxAge)
	if c.Bool("json") {
		err = printStatusJSON(c, r)
	} else {
		printStatusTable(c, r)
	}
	if err != nil {
		return err
	}
	if dir := s.settings.MetricsDir; dir != "" {
		if err := metrics.WriteStatus(dir, statusMetrics(r, len(dbs) == 0)); err != nil {
			logger.Warn(fmt.Sprintf("status: writing metrics: %v", err))
		}
	}
	if !r.OK() {
		logProblems(r)
		return errors.New(r.Summary())
	}
	return nil
}

// logProblems writes one error entry per database and upstream that is not
// OK, with the database and upstream as journal fields, so that a failure
// notice (pgarchive notify, reading the unit's journal) can name them.
func logProblems(r status.Report) {
	for _, e := range r.Entries {
		if e.State == status.OK {
			continue
		}
		logger.Error(fmt.Sprintf("status: %s on %s is %s: %s", e.Database, e.Upstream, e.State, e.Detail(r.MaxAge)),
			"database", e.Database, "upstream", e.Upstream)
	}
}

func statusMetrics(r status.Report, all bool) metrics.StatusRun {
	run := metrics.StatusRun{All: all, Databases: r.Databases()}
	for _, e := range r.Entries {
		run.Entries = append(run.Entries, metrics.StatusEntry{
			Database: e.Database, Upstream: e.Upstream, Listed: e.State != status.Unlisted,
			Archives: e.Archives, HasNewest: e.Newest != nil, NewestAge: e.Age, OK: e.State == status.OK,
		})
	}
	return run
}

func printStatusTable(c *cli.Context, r status.Report) {
	fmt.Fprintln(c.App.Writer, r.Summary())
	if len(r.Entries) == 0 {
		return
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DATABASE\tUPSTREAM\tNEWEST ARCHIVE\tAGE\tARCHIVES\tSTATE")
	for _, e := range r.Entries {
		newest, age, n := "-", "-", "-"
		if e.Newest != nil {
			newest, age = e.Newest.Name.Base(), status.HumanAge(e.Age)
		}
		if e.State != status.Unlisted {
			n = strconv.Itoa(e.Archives)
		}
		state := string(e.State)
		if e.History {
			state += " (read-only: history)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Database, e.Upstream, newest, age, n, state)
	}
	w.Flush()
}

type statusJSON struct {
	OK            bool              `json:"ok"`
	Summary       string            `json:"summary"`
	Time          time.Time         `json:"time"`
	MaxAgeSeconds int64             `json:"max_age_seconds"`
	Entries       []statusJSONEntry `json:"entries"`
}

type statusJSONEntry struct {
	Database   string     `json:"database"`
	Upstream   string     `json:"upstream"`
	State      string     `json:"state"`
	Archive    string     `json:"archive,omitempty"`
	Key        string     `json:"key,omitempty"`
	Created    *time.Time `json:"created,omitempty"`
	AgeSeconds *int64     `json:"age_seconds,omitempty"`
	Archives   *int       `json:"archives,omitempty"`
	History    bool       `json:"history,omitempty"` // a :ro or :nc member: nothing new expected there
	Error      string     `json:"error,omitempty"`
}

func printStatusJSON(c *cli.Context, r status.Report) error {
	out := statusJSON{OK: r.OK(), Summary: r.Summary(), Time: r.Now.Truncate(time.Second),
		MaxAgeSeconds: int64(r.MaxAge / time.Second), Entries: make([]statusJSONEntry, 0, len(r.Entries))}
	for _, e := range r.Entries {
		j := statusJSONEntry{Database: e.Database, Upstream: e.Upstream, State: string(e.State), History: e.History}
		if e.Newest != nil {
			created, age := e.Newest.Name.Created, int64(e.Age/time.Second)
			j.Archive, j.Key, j.Created, j.AgeSeconds = e.Newest.Name.Base(), e.Newest.Key, &created, &age
		}
		if e.State != status.Unlisted {
			n := e.Archives
			j.Archives = &n
		}
		if e.Err != nil {
			j.Error = e.Err.Error()
		}
		out.Entries = append(out.Entries, j)
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
