package job

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/heal"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// HealOptions are a heal of one catalog.
type HealOptions struct {
	Catalog    *catalog.Catalog
	Upstreams  []*remote.Upstream // in the catalog's order, read-only members too
	Database   string             // what the catalog was narrowed to, for messages; "" for all
	Quick      bool
	DryRun     bool
	MetricsDir string // "" for no metrics
	Log        *slog.Logger
}

// Heal copies archives to the writable upstreams that lack them, logs a
// summary, records metrics, and returns an error if any copy could not be
// healed or an upstream could not be listed.
func Heal(ctx context.Context, opt HealOptions) error {
	res := heal.Run(ctx, opt.Catalog.Archives, heal.Options{Upstreams: opt.Upstreams, Writable: Writable(opt.Upstreams),
		Quick: opt.Quick, DryRun: opt.DryRun, Log: opt.Log})
	if err := ctx.Err(); err != nil {
		return err // an interrupted run's counts would be partial
	}
	writeHealMetrics(opt, res)
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
	opt.Log.Info(fmt.Sprintf("heal: %s%s checked, %d intact everywhere; %s", textfmt.Plural(res.Archives, "archive"), forDB(opt.Database), res.Healthy, strings.Join(parts, ", ")),
		"healed", res.Healed, "failed", res.Failed)
	if res.Failed > 0 {
		return fmt.Errorf("heal: %s could not be healed (see above)", textfmt.Plural(res.Failed, "copy"))
	}
	return Unlisted(opt.Catalog)
}

// Writable names the upstreams that take new copies (not :ro or :nc).
func Writable(ups []*remote.Upstream) map[string]bool {
	w := map[string]bool{}
	for _, u := range ups {
		w[u.Name] = u.Creates()
	}
	return w
}

// Unlisted reports upstreams that could not be listed; their absence makes
// every listing incomplete, so commands fail after showing the rest.
func Unlisted(cat *catalog.Catalog) error {
	bad := cat.ListFailures()
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("could not list %d of %d upstreams: %s", len(bad), len(cat.Upstreams), strings.Join(bad, "; "))
}

// writeHealMetrics records, per database and writable upstream, whether
// every copy there that needed healing was healed (OK) and how many of the
// database's archives hold a complete copy there now. An upstream that
// could not be listed is a failure with no count. A dry run changes
// nothing, so it records nothing. Metrics are a side channel: a failure to
// write them is a warning, never the run's outcome.
func writeHealMetrics(opt HealOptions, res *heal.Result) {
	if opt.MetricsDir == "" || opt.DryRun {
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
	if err := metrics.WriteCounts(opt.MetricsDir, run); err != nil {
		opt.Log.Warn(fmt.Sprintf("heal: writing metrics: %v", err))
	}
}
