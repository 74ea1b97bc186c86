package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/report"
)

// exitReportFailed is report's exit status when no report could be made
// or written, kept apart from status's 1 (the backups have a problem) so
// that a unit regenerating the page can accept 1 and still fail on this.
const exitReportFailed = 3

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "write a dashboard of the backups: one self-contained HTML page (--html) or JSON",
		Description: `Builds, from one listing of every upstream of --remote (the catalog list and status read),
a report per database:
   - its state on each upstream, as pgarchive status judges it, and the newest usable archive's
     age against --max-age (--base-backup-max-age for base backups);
   - a timeline of the last --days days (default 35) by upstream, one mark per archive and
     upstream, coloured by state AND lettered (+ complete, M missing, I incomplete, U untrusted,
     F future-dated, ...), so a gap or a one-sided upstream stands out without colour;
   - the stretches of archives an upstream lacks while another holds them, and every untrusted
     or future-dated archive by name;
   - the dump size of each archive as a chart, and the newest size against the median of the
     week before it (a fall of more than 20% is pointed out: a dropped table looks like that);
   - the last restore drill (result, when, how long, checks run and failed) and the backlog,
     read from the files drill and archive runs wrote in --metrics-dir (a global option);
   - what the next prune would remove, planned with the rules of the "prune" section of the
     --config file (nothing is deleted; without rules there is no plan);
   - each cluster's WAL recovery window (point-in-time recovery).
The header says OK or what is wrong, in words: the verdict and exit status are exactly those
of pgarchive status with the same --database, --max-age and --base-backup-max-age.

--html FILE writes the page (- for standard output): HTML with inline CSS and SVG, no script,
no font, image or stylesheet from elsewhere (a Content-Security-Policy forbids loading any),
so it renders on an air-gapped host, on a phone, and on paper. --json prints the same report
as JSON; --json-file FILE writes it to a file. Files are replaced atomically (a temporary file
renamed over the old one), so a web server never serves half a page; they are mode 0644.
--database, --max-age and --base-backup-max-age default to the "status" section of --config.

Exit status: 0 when status would exit 0; 1 when it would exit 1 (the page was still written:
it says why); 2 for usage errors; 3 when no report could be made or written (an unreadable
settings file, an unwritable --html path).

Examples:
   pgarchive --config /etc/pgarchive.json report --html /var/lib/pgarchive-report/index.html
   pgarchive report --days 90 --json | jq '.databases[] | {database, ok, size}'
   pgarchive --metrics-dir /var/lib/prometheus-node-exporter report --html - > report.html`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "html", Usage: "write the HTML page to `FILE` (- for standard output)", TakesFile: true},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on standard output"},
			&cli.StringFlag{Name: "json-file", Usage: "write the report as JSON to `FILE`", TakesFile: true},
			&cli.IntFlag{Name: "days", Value: report.DefaultDays, Usage: "the timeline and the size chart cover the last `N` days"},
			&cli.StringSliceFlag{Name: "database", Aliases: []string{"d"}, Usage: "report on database `NAME` (repeatable; default: every database on the remote), as status --database"},
			&cli.StringFlag{Name: "max-age", Value: "26h", Usage: "as status --max-age: an archive older than `DURATION` is STALE"},
			&cli.StringFlag{Name: "base-backup-max-age", Value: "192h", Usage: "as status --base-backup-max-age"},
		},
		Action: func(c *cli.Context) error {
			err := runReport(c)
			var ec cli.ExitCoder
			if err == nil || errors.As(err, &ec) || errors.Is(err, errVerdict) {
				return err
			}
			return cli.Exit(err.Error(), exitReportFailed)
		},
	}
}

// errVerdict wraps the verdict of a report that was written: status's exit
// status 1, not a failure of the report itself.
var errVerdict = errors.New("the backups have problems")

func runReport(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("report takes no arguments (got %q)", c.Args().First())
	}
	if c.String("html") == "" && !c.Bool("json") && c.String("json-file") == "" {
		return usageError("report: say where to put it: --html FILE, --json or --json-file FILE")
	}
	if c.String("html") == "-" && (c.Bool("json") || c.String("json-file") == "-") {
		return usageError("report: --html - and the JSON would both go to standard output: write one of them to a file")
	}
	if c.Int("days") < 1 || c.Int("days") > 3660 {
		return usageError("--days: %d is not between 1 and 3660", c.Int("days"))
	}
	opt, err := statusSettings(c)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSessionFor(ctx, c, opt.Databases)
	if err != nil {
		return err
	}
	in := report.Input{Now: time.Now(), Days: c.Int("days"), Catalog: s.cat,
		Status: checkStatus(s, opt.Databases, opt.MaxAge, opt.BaseMaxAge)}
	if len(opt.Databases) == 0 {
		_, in.WAL = s.walView(ctx)
	}
	in.Prune, in.PruneNote = prunePlan(ctx, s, opt.Databases)
	if dir := s.settings.MetricsDir; dir == "" {
		in.MetricsNote = "no --metrics-dir: the last drills and the backlog are not shown"
	} else if in.Metrics, err = metrics.Read(dir); err != nil {
		in.MetricsNote = err.Error()
	}
	r := report.Build(in)
	if err := writeReport(c, r); err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("%w: %s", errVerdict, r.Summary)
	}
	return nil
}

// prunePlan is prune's dry run with the settings' prune rules; without
// rules, or when it cannot plan, a note says why.
func prunePlan(ctx context.Context, s *session, dbs []string) (*prune.Result, string) {
	if s.settings.File.Prune == nil {
		return nil, `no prune rules (the "prune" section of --config): what the next prune would remove is not shown`
	}
	policy, err := s.settings.File.Prune.Policy()
	if err != nil {
		return nil, fmt.Sprintf("prune rules: %v", err)
	}
	res, err := prune.Run(ctx, s.ups, s.cat, s.prefix, prune.Options{Policy: policy, Now: time.Now(), Databases: dbs, Deletable: s.deletable(), DryRun: true})
	if err != nil {
		return nil, fmt.Sprintf("no prune plan: %v", err)
	}
	return res, ""
}

func writeReport(c *cli.Context, r *report.Report) error {
	put := func(path string, fill func(io.Writer) error) error {
		if path == "-" {
			return fill(c.App.Writer)
		}
		return atomicfile.Write(path, atomicfile.Options{Perm: 0o644}, fill)
	}
	if p := c.String("html"); p != "" {
		if err := put(p, r.HTML); err != nil {
			return fmt.Errorf("report --html: %w", err)
		}
	}
	if p := c.String("json-file"); p != "" {
		if err := put(p, r.JSON); err != nil {
			return fmt.Errorf("report --json-file: %w", err)
		}
	}
	if c.Bool("json") {
		return r.JSON(c.App.Writer)
	}
	return nil
}
