package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/heal"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

func healCommand() *cli.Command {
	return &cli.Command{
		Name:      "heal",
		Usage:     "copy archives to the upstreams that lack a good copy, from one that has it (no key needed)",
		ArgsUsage: " ",
		Description: `Lists every upstream of --remote and, for each archive, finds the writable upstreams whose
copy is MISSING, INCOMPLETE, NO-DATA or WRONG-SIZE (as list shows them) or whose backend
hash contradicts the manifest (as keyless verify checks it: MD5 on S3 single-part
objects, CRC-32 on local folders). Each such copy is replaced from an upstream holding a
complete copy: the ciphertext streams from that source to the target, its SHA-256 is
computed on the way, and the target gets its manifest only if the SHA-256 matches the
manifest's and the target verifies the upload (size, and hash where it offers one). A
stale manifest on the target is removed before its data is replaced, so a half-healed
copy never looks complete. If a source turns out damaged while it is read, the next
complete copy is used, and the damaged one is healed as well. Only ciphertext moves: no
key is needed. Read-only (:ro) and no-create (:nc) union members serve as sources only.
An archive that only :ro members still hold whole is not copied to upstreams that hold
nothing of it: prune removed it there (prune never deletes on :ro), and bringing it back
would undo every prune.

--quick trusts the listing and skips asking for backend hashes, which local and SFTP
upstreams compute by reading every copy; it still never copies a damaged source (every
byte moved is checked). archive --heal runs a quick heal of its database.

Every copy healed (or not) is logged: "healed db1/db1_...age on minio-b from minio-a".
Exit status 1 if any copy could not be healed or an upstream could not be listed.

With --metrics-dir (a global option) each heal but a --dry-run writes pgarchive-heal.prom,
per database and writable upstream, labelled command="heal": the last success time, or the
last failure time when a copy there could not be healed or the upstream could not be
listed, and pgarchive_archives, the database's archives with a complete copy there after
the heal (dropped for an unlisted upstream). archive --heal records its database there too;
databases a run did not touch keep their series.

Examples:
   pgarchive --config /etc/pgarchive.json heal --dry-run
   pgarchive heal --database db1
   pgarchive --config /etc/pgarchive.json --metrics-dir /var/lib/prometheus-node-exporter heal --quick`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "only say what would be healed, from where"},
			&cli.BoolFlag{Name: "quick", Usage: "trust the listing: don't ask backends for hashes of complete copies"},
		},
		Action: runHeal,
	}
}

func runHeal(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("heal takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	db := c.String("database")
	s, err := openSession(ctx, c, db)
	if err != nil {
		return err
	}
	opt := heal.Options{Upstreams: s.ups, Writable: writableOf(s.ups), Quick: c.Bool("quick"), DryRun: c.Bool("dry-run"), Log: logger}
	if err := healAndReport(ctx, s.cat, opt, db, s.settings.MetricsDir); err != nil {
		return err
	}
	return s.unlisted()
}

// writableOf names the upstreams that take new copies (not :ro or :nc).
func writableOf(ups []*remote.Upstream) map[string]bool {
	w := map[string]bool{}
	for _, u := range ups {
		w[u.Name] = u.Creates()
	}
	return w
}

// healAndReport heals the catalog's archives, logs a summary, records the
// metrics (when metricsDir is set) and returns an error if any copy could
// not be healed.
func healAndReport(ctx context.Context, cat *catalog.Catalog, opt heal.Options, db, metricsDir string) error {
	res := heal.Run(ctx, cat.Archives, opt)
	if err := ctx.Err(); err != nil {
		return err // an interrupted run's counts would be partial
	}
	writeHealMetrics(metricsDir, opt.DryRun, res)
	var parts []string
	if opt.DryRun {
		parts = append(parts, fmt.Sprintf("%s to heal", textfmt.Plural(res.Planned, "copy")))
	} else {
		parts = append(parts, fmt.Sprintf("%s healed", textfmt.Plural(res.Healed, "copy")))
	}
	if res.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d could not be healed", res.Failed))
	}
	if res.BadSources > 0 {
		parts = append(parts, fmt.Sprintf("%s found damaged while read", textfmt.Plural(res.BadSources, "copy")))
	}
	logger.Info(fmt.Sprintf("heal: %s%s checked, %d intact everywhere; %s", textfmt.Plural(res.Archives, "archive"), forDB(db), res.Healthy, strings.Join(parts, ", ")),
		"healed", res.Healed, "failed", res.Failed)
	if res.Failed > 0 {
		return fmt.Errorf("heal: %s could not be healed (see above)", textfmt.Plural(res.Failed, "copy"))
	}
	return nil
}

// writeHealMetrics records, per database and writable upstream, whether
// every copy there that needed healing was healed (OK) and how many of the
// database's archives hold a complete copy there now. An upstream that
// could not be listed is a failure with no count. A dry run changes
// nothing, so it records nothing. Metrics are a side channel: a failure to
// write them is a warning, never the run's outcome.
func writeHealMetrics(dir string, dryRun bool, res *heal.Result) {
	if dir == "" || dryRun {
		return
	}
	run := metrics.CountsRun{Command: "heal", Time: time.Now()}
	for _, d := range res.Databases {
		for _, u := range d.Upstreams {
			if !u.Writable {
				continue
			}
			e := metrics.CountEntry{Database: d.Database, Upstream: u.Upstream, OK: u.Listed && u.Failed == 0, Archives: u.Complete}
			if !u.Listed {
				e.Archives = -1
			}
			run.Entries = append(run.Entries, e)
		}
	}
	if len(run.Entries) == 0 {
		return
	}
	if err := metrics.WriteCounts(dir, run); err != nil {
		logger.Warn(fmt.Sprintf("heal: writing metrics: %v", err))
	}
}
