package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/render"
	"github.com/pgarchive/pgarchive/internal/retention"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete old archives on every upstream, keeping generations as restic's forget does",
		Description: `Plans, per database, which archives to keep by their creation time (from the archive name,
never from storage timestamps), then deletes the others on every upstream: each archive's
manifest on every upstream first, then its data objects, so an interrupted prune never leaves
a copy that looks complete. Run it with --dry-run first.

Keep rules (an archive is kept if any rule keeps it; N = -1 means no limit):
   --keep-last N      the N newest archives
   --keep-hourly N    the newest archive of each of the N newest hours that have one
   --keep-daily N     ... days, --keep-weekly N: ISO weeks, --keep-monthly N, --keep-yearly N
   --keep-within D    every archive younger than D, counted back from now
Periods are in UTC, like the names. At least one rule is required. Without any --keep-*
flag the rules (and --database) come from the "prune" section of the --config file, where
the NixOS module writes them; a "rclone-config" there names the credentials allowed to
delete, unless --rclone-config is given. Whatever the rules, the
newest archive with a complete copy is always kept. Archives without a complete copy on any
upstream (failed uploads) never fill a period; they are removed when older than the newest
complete archive and kept when newer (they may still be uploading).

--keep-within takes Go durations (36h, 1h30m) and restic's spans (30d, 2w, 1y6m, 1y5m7d2h),
with fixed lengths y = 365d, m = 30d, w = 7d; units from largest to smallest. "m" is months
after y or before w/d/h, minutes after h or before s; "6m" alone is refused as ambiguous
(write 180d, or 0y6m).

Differences from restic's forget: --keep-within counts back from now, not from the newest
archive; a bucket rule with periods left over does not also keep the oldest archive; the
newest complete archive is always kept; a policy without rules is an error.

Before deleting anything, prune writes and deletes a small probe object (` + prune.ProbeName + `)
under --prefix on every upstream it is about to delete from: if any refuses (e.g. upload-only
credentials on the database host), nothing is deleted anywhere and the exit status is 1. If
an upstream cannot be listed, prune refuses too: it may hold copies the plan would not see.
Read-only union members (:ro) are listed, and their copies count, but are never deleted from.
An archive whose manifest exists but cannot be read is left out of the plan and never
deleted (a failed read must not cost a backup); verify reports it.
Untrusted archives (with --trusted-signer configured: no valid signature by one of them)
and future-dated ones (named more than --max-clock-skew ahead) are never counted toward a
keep rule, so a forgery can't make prune delete the genuine archives; they are listed as
"skip" and never deleted, except untrusted ones with --remove-untrusted.

Unfinished S3 multipart uploads under --prefix (left by runs killed mid-upload: invisible
to list, status and prune's plan, yet stored and billed) older than
--abort-uploads-older-than (24h) are aborted, one log line each; --dry-run lists them.
Younger ones may belong to an archive still running and are never touched.

Base backups (database base-<system identifier>-pg<major>, see basebackup) are pruned by the
same rules. When prune runs over every database (no --database), archived WAL follows: a WAL
file goes once no base backup that stays could need it in recovery (decided by each backup's
timeline and start position, never by file-name order across timelines); history files
stay. Without any base backup of a cluster, its WAL is kept whole.

One log line per removed archive and a summary (journald under systemd, with
PGARCHIVE_DATABASE and PGARCHIVE_ARCHIVE). Exit status: 0 ok, 1 on any failure (a failed
deletion is retried by the next prune), 2 for a usage error.

Examples:
   pgarchive prune --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly -1 --dry-run
   pgarchive --config /etc/pgarchive.json prune -d db1 --keep-last 3 --keep-within 30d
   pgarchive prune --keep-within 1y6m --json | jq '.databases[].removed'`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "database", Aliases: []string{"d"}, Usage: "prune database `NAME` (repeatable; default: every database on the remote)"},
			&cli.IntFlag{Name: "keep-last", Usage: "keep the `N` newest archives (-1: all)"},
			&cli.IntFlag{Name: "keep-hourly", Usage: "keep the newest archive of each of the last `N` hours with one (-1: all)"},
			&cli.IntFlag{Name: "keep-daily", Usage: "keep the newest archive of each of the last `N` days with one (-1: all)"},
			&cli.IntFlag{Name: "keep-weekly", Usage: "keep the newest archive of each of the last `N` ISO weeks with one (-1: all)"},
			&cli.IntFlag{Name: "keep-monthly", Usage: "keep the newest archive of each of the last `N` months with one (-1: all)"},
			&cli.IntFlag{Name: "keep-yearly", Usage: "keep the newest archive of each of the last `N` years with one (-1: all)"},
			&cli.StringFlag{Name: "keep-within", Usage: "keep every archive younger than `DURATION`, counted back from now: 36h, 30d, 2w, 1y6m, ..."},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print each database's plan (keep/remove and why) and delete nothing"},
			&cli.DurationFlag{Name: "abort-uploads-older-than", Value: 24 * time.Hour, Usage: "abort unfinished S3 multipart uploads under --prefix older than this `AGE` (what runs killed mid-upload leave behind, invisible to list); younger ones may belong to a running archive and are never touched; 0: leave them all"},
			&cli.BoolFlag{Name: "remove-untrusted", Usage: "also delete UNTRUSTED archives (no valid signature by a --trusted-signer); without it they are listed and never deleted"},
			&cli.BoolFlag{Name: "json", Usage: "print the plan and what was done as JSON, for scripts"},
		},
		Action: runPrune,
	}
}

// prunePolicy reads the keep flags; every mistake in them is a usage error.
func prunePolicy(c *cli.Context) (retention.Policy, error) {
	p := retention.Policy{
		Last: c.Int("keep-last"), Hourly: c.Int("keep-hourly"), Daily: c.Int("keep-daily"),
		Weekly: c.Int("keep-weekly"), Monthly: c.Int("keep-monthly"), Yearly: c.Int("keep-yearly"),
	}
	if c.IsSet("keep-within") {
		d, err := retention.ParseDuration(c.String("keep-within"))
		if err != nil {
			return p, usageError("--keep-within: %v", err)
		}
		p.Within = d
	}
	if err := p.Validate(); err != nil {
		return p, usageError("%v", err)
	}
	return p, nil
}

func runPrune(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("prune takes no arguments (got %q)", c.Args().First())
	}
	st, err := settings(c)
	if err != nil {
		return err
	}
	opt, err := resolvePrune(c, st)
	if err != nil {
		return err
	}
	policy, dbs := opt.Policy, opt.Databases
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSessionFor(ctx, c, dbs)
	if err != nil {
		return err
	}
	res, err := prune.Run(ctx, s.ups, s.cat, s.prefix, prune.Options{
		Policy: policy, Now: time.Now(), Databases: dbs, Deletable: s.deletable(),
		DryRun: c.Bool("dry-run"), RemoveUntrusted: c.Bool("remove-untrusted"), Log: logger,
		UploadsOlderThan: c.Duration("abort-uploads-older-than"),
	})
	job.RecordPrune(s.settings.MetricsDir, s.cat, c.Bool("dry-run"), res, err, logger)
	var wal []walarchive.ClusterPrune
	if res != nil && err == nil && len(dbs) == 0 {
		// WAL goes only with the whole catalog in view: every base backup
		// that stays must be known.
		invs, _ := s.walView(ctx)
		wal = walarchive.PruneAll(ctx, s.ups, s.prefix, invs, keptBases(s.cat, res), res.DryRun, logger)
		for _, w := range wal {
			if n := len(w.Result.Errors); n > 0 {
				err = fmt.Errorf("prune: %d WAL deletions of %s failed; the next prune tries again", n, w.Cluster)
			}
		}
	}
	if res != nil {
		switch {
		case c.Bool("json"):
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			out := struct {
				*prune.Result
				WAL []walPruneJSON `json:"wal"`
			}{res, walPruneValues(wal)}
			if jerr := enc.Encode(out); jerr != nil && err == nil {
				err = jerr
			}
		case res.DryRun:
			render.PrunePlans(c.App.Writer, res, policy)
			for _, w := range wal {
				fmt.Fprintf(c.App.Writer, "\nWAL of %s: %d base backups kept; would remove %d files no kept base backup needs%s\n",
					w.Cluster, w.Kept, len(w.Remove), walSpan(w.Remove))
			}
		}
	}
	return err
}

// keptBases are the base backups of each cluster that the prune leaves.
// Every one counts, untrusted ones too: keeping WAL for a forgery wastes
// space, deleting WAL a genuine backup needs would lose it.
func keptBases(cat *catalog.Catalog, res *prune.Result) map[walname.Cluster][]*manifest.Base {
	removed := map[string]bool{}
	for _, d := range res.Databases {
		for _, a := range d.Archives {
			if a.Action == "remove" {
				removed[a.Key] = true
			}
		}
	}
	out := map[walname.Cluster][]*manifest.Base{}
	for _, a := range cat.Archives {
		c, ok := walname.ParseBaseDatabase(a.Name.Database)
		if !ok || removed[a.Key] || a.Manifest == nil || a.Manifest.Base == nil {
			continue
		}
		out[c] = append(out[c], a.Manifest.Base)
	}
	return out
}

type walPruneJSON struct {
	SystemID string   `json:"system_identifier"`
	Kept     int      `json:"base_backups_kept"`
	Remove   []string `json:"remove"`
	Removed  int      `json:"removed"`
	Errors   []string `json:"errors"`
}

func walPruneValues(ws []walarchive.ClusterPrune) []walPruneJSON {
	out := []walPruneJSON{}
	for _, w := range ws {
		j := walPruneJSON{SystemID: fmt.Sprint(w.Cluster.SystemID), Kept: w.Kept, Remove: []string{}, Removed: w.Result.Removed, Errors: append([]string{}, w.Result.Errors...)}
		for _, f := range w.Remove {
			j.Remove = append(j.Remove, f.Name)
		}
		out = append(out, j)
	}
	return out
}

func walSpan(fs []walname.File) string {
	if len(fs) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s to %s)", fs[0].Name, fs[len(fs)-1].Name)
}
