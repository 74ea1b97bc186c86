package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/notify"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// maxJournalLines bounds --journal-lines: the lines leave the host.
const maxJournalLines = 200

func notifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "notify",
		Usage:     "post a failure, success or daily summary notice to a webhook (Slack or JSON)",
		ArgsUsage: " ",
		Description: `Meant for systemd handler units: OnFailure=pgarchive-notify-failure@%n.service on a backup,
drill or prune unit, with ExecStart=pgarchive notify --event failure --unit %i ... in the
template. The notice names the host, the unit, the database, how the unit ended, the
upstreams pgarchive's error entries blame (PGARCHIVE_UPSTREAM at priority err or worse) and
the unit's last journal lines.

How the unit ended comes from the MONITOR_* variables systemd (>= 251) gives handler units:
MONITOR_SERVICE_RESULT, MONITOR_EXIT_CODE, MONITOR_EXIT_STATUS. The journal is read with
journalctl from PATH (the unit needs SupplementaryGroups=systemd-journal or root): the
failed run's entries by MONITOR_INVOCATION_ID, else the newest run of --unit, or exactly the
entries --journal-match selects. The database is --database, else the one a NixOS
postgresqlBackup-<db> unit name implies (postgresqlBackup: "all"), else the only one the
journal names. If the journal cannot be read the notice still goes out, saying why.

--event summary reads the remote like list (the global --config, --rclone-config, --remote
and --prefix apply) and reports per upstream the complete archives created in the last
--window (by the time in their names): count, bytes and databases, the known databases that
got nothing there, and archives incomplete there; plus the backlog in --state-dir. If the
remote or one of its upstreams cannot be read, the summary says so, is still sent, and the
exit status is 1.

The webhook URL is a secret: prefer --webhook-url-file (first line; may start with
$CREDENTIALS_DIRECTORY, as LoadCredential= gives it) or $PGARCHIVE_WEBHOOK_URL over
--webhook-url, which other users can see in the process list. Logs and errors show only
its scheme and host. Each POST times out after 10 s; network errors, timeouts, 408, 429
and 5xx are retried 3 times (1 s, 2 s, 4 s apart); other statuses fail at once. Exit
status 1 when the notice was not delivered, 2 on bad usage.

--format slack posts {"text": "..."} in Slack's mrkdwn (Mattermost, Rocket.Chat and
Discord's /slack endpoint accept it too). --format json posts this object (version 1; every
key always present, new keys may be added):
   version           1
   event             "failure", "success" or "summary"
   host              host name
   time              when the notice was made (RFC 3339, UTC)
   unit              the unit reported on ("" for summaries)
   invocation_id     MONITOR_INVOCATION_ID of the run, or ""
   database          the database concerned, or "" when unknown or several
   databases         every database the journal entries (or the summary) name
   result            MONITOR_SERVICE_RESULT: success, exit-code, signal, timeout, core-dump, ...
   exit_code         MONITOR_EXIT_CODE: exited, killed or dumped
   exit_status       MONITOR_EXIT_STATUS: the exit status, or a signal name such as TERM
   failed_upstreams  upstreams pgarchive's error entries name; for summaries, upstreams that
                     could not be listed or miss something from the window
   journal           the last --journal-lines entries, "TIME IDENT[PID]: MESSAGE", each at
                     most 500 bytes
   journal_error     why there are no journal lines, or ""
   summary           null, or for summaries: {since, until, databases, stale_databases
                     (no complete copy anywhere in the window), upstreams: [{name, archives,
                     bytes, databases: [{database, archives, bytes, newest}],
                     missing_databases, incomplete, error}], backlog: null (no --state-dir)
                     or {archives, bytes, oldest, databases: [{database, archives, bytes,
                     oldest}], error}, error}

Examples:
   pgarchive notify --event failure --unit %i --webhook-url-file '${CREDENTIALS_DIRECTORY}/webhook-url'
   pgarchive notify --event failure --unit postgresqlBackup-db1.service --format json --dry-run
   pgarchive --config /etc/pgarchive.json notify --event summary --webhook-url-file /run/secrets/webhook-url`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "event", Required: true, Usage: "what to report: failure, success (of --unit) or summary (of the remote)"},
			&cli.StringFlag{Name: "webhook-url", EnvVars: []string{"PGARCHIVE_WEBHOOK_URL"}, Usage: "post to this `URL` (a secret: prefer --webhook-url-file)"},
			&cli.StringFlag{Name: "webhook-url-file", EnvVars: []string{"PGARCHIVE_WEBHOOK_URL_FILE"}, Usage: "post to the URL on the first line of `FILE`, e.g. ${CREDENTIALS_DIRECTORY}/webhook-url", TakesFile: true},
			&cli.StringFlag{Name: "format", Value: notify.FormatSlack, Usage: "payload: slack ({\"text\": ...}) or json (the object above)"},
			&cli.StringFlag{Name: "unit", Usage: "the systemd `UNIT` to report on (%i in a handler template); default $MONITOR_UNIT"},
			&cli.IntFlag{Name: "journal-lines", Value: 20, Usage: fmt.Sprintf("send the unit's last `N` journal lines (0 to %d); they leave the host with the notice", maxJournalLines)},
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "the database `NAME` concerned (failure, success); only this database (summary)"},
			&cli.StringSliceFlag{Name: "journal-match", Usage: "read the journal entries journalctl selects with this `MATCH` (repeatable, e.g. SYSLOG_IDENTIFIER=pgarchive) instead of the unit's"},
			&cli.DurationFlag{Name: "window", Value: 24 * time.Hour, Usage: "summary: report archives created within this long before now"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the payload on stdout instead of posting it (no webhook needed)"},
		},
		Action: runNotify,
	}
}

func runNotify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("notify takes no arguments (got %q)", c.Args().First())
	}
	event, format := c.String("event"), c.String("format")
	if event != notify.Failure && event != notify.Success && event != notify.Summary {
		return usageError("--event %q: want failure, success or summary", event)
	}
	if format != notify.FormatSlack && format != notify.FormatJSON {
		return usageError("--format %q: want slack or json", format)
	}
	if n := c.Int("journal-lines"); n < 0 || n > maxJournalLines {
		return usageError("--journal-lines %d: want 0 to %d", n, maxJournalLines)
	}
	if c.Duration("window") <= 0 {
		return usageError("--window must be positive")
	}
	db := c.String("database")
	if db != "" {
		if err := naming.ValidateDatabase(db); err != nil {
			return usageError("--database: %v", err)
		}
	}
	hook, err := webhook(c)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	host, _ := os.Hostname()

	var n *notify.Notice
	var runErr error // reported after the notice went out
	if event == notify.Summary {
		n, runErr = summaryNotice(ctx, c, host, db)
	} else {
		n = notify.GatherUnit(ctx, notify.UnitRequest{Event: event, Host: host, Database: db, Unit: c.String("unit"),
			Matches: c.StringSlice("journal-match"), Lines: c.Int("journal-lines"), Getenv: os.Getenv, Now: time.Now(),
			Journal: notify.Journal{Timeout: 15 * time.Second}, Log: logger})
	}
	body, err := notify.Body(n, format)
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		fmt.Fprintf(c.App.Writer, "%s\n", body)
		return runErr
	}
	about := event + " notice"
	if n.Unit != "" {
		about += " for " + n.Unit
	}
	sender := notify.DefaultSender()
	sender.Log = func(attempt int, err error, wait time.Duration) {
		logger.Warn(fmt.Sprintf("notify: %s: attempt %d failed (%v); retrying in %s", about, attempt, err, wait))
	}
	res, err := sender.Send(ctx, hook, body, "application/json")
	if err != nil {
		return errors.Join(fmt.Errorf("notify: %s NOT delivered: %w", about, err), runErr)
	}
	logger.Log(ctx, logging.Notice, fmt.Sprintf("notify: %s delivered to %s (HTTP %d, %s)", about, hook.Host(), res.Status, textfmt.Plural(res.Attempts, "attempt")),
		"unit", n.Unit, "database", n.Database)
	return runErr
}

// webhook reads the URL from exactly one place; --dry-run needs none.
func webhook(c *cli.Context) (*notify.Webhook, error) {
	raw, file := c.String("webhook-url"), c.String("webhook-url-file")
	switch {
	case raw != "" && file != "":
		return nil, usageError("give --webhook-url or --webhook-url-file, not both")
	case raw != "":
		w, err := notify.ParseWebhook(raw)
		if err != nil {
			return nil, usageError("--webhook-url: %v", err)
		}
		return w, nil
	case file != "":
		p, err := config.ExpandCredentials(file, os.Getenv)
		if err != nil {
			return nil, err
		}
		return notify.ReadWebhookFile(p)
	case c.Bool("dry-run"):
		return nil, nil
	}
	return nil, usageError("no webhook: give --webhook-url-file FILE or --webhook-url URL (or --dry-run)")
}

// summaryNotice builds the daily summary. A remote that cannot be read
// still gives a notice, naming the error, which is returned as well.
func summaryNotice(ctx context.Context, c *cli.Context, host, db string) (*notify.Notice, error) {
	now := time.Now()
	window := c.Duration("window")
	s, err := openSession(ctx, c, db)
	if err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() == exitUsage {
			return nil, err
		}
		var bl *notify.Backlog
		if st, serr := settings(c); serr == nil {
			bl = notify.BacklogDigest(st.StateDir, logger)
		}
		return notify.SummaryNotice(host, now, db, notify.UnreadableDigest(now, window, err, bl)), err
	}
	d := notify.Summarize(s.cat, now, window)
	d.Backlog = notify.BacklogDigest(s.settings.StateDir, logger)
	return notify.SummaryNotice(host, now, db, d), s.unlisted()
}
