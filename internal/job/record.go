package job

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/drill"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/status"
)

// The Record functions write a command's metrics to node_exporter's
// textfile directory (dir; "" writes nothing). Metrics are a side channel:
// a failure to write them is logged and never changes a run's outcome.

// RecordPrune records, per database and upstream, whether the prune worked
// there and how many complete archives it kept. A dry run changes nothing,
// so it records nothing. A prune refused as a whole (an upstream unlisted,
// deletes denied) is a failure on every pair the catalog knows.
func RecordPrune(dir string, cat *catalog.Catalog, dryRun bool, res *prune.Result, runErr error, log *slog.Logger) {
	if dir == "" || dryRun {
		return
	}
	run := metrics.CountsRun{Command: "prune", Time: time.Now()}
	if res == nil {
		if runErr == nil {
			return
		}
		for _, db := range cat.Databases() {
			for _, u := range cat.Upstreams {
				run.Entries = append(run.Entries, metrics.CountEntry{Database: db, Upstream: u, Archives: -1})
			}
		}
		res = &prune.Result{}
	}
	for _, d := range res.Databases {
		for _, u := range d.Upstreams {
			run.Entries = append(run.Entries, metrics.CountEntry{
				Database: d.Database, Upstream: u.Upstream,
				OK: runErr == nil && u.Failed == 0, Archives: u.Kept,
			})
		}
	}
	if err := metrics.WriteCounts(dir, run); err != nil {
		log.Warn(fmt.Sprintf("prune: writing metrics: %v", err))
	}
}

// RecordDrill records each database's drill, an interrupted one as failed:
// it proved nothing.
func RecordDrill(dir string, out []drill.Outcome, log *slog.Logger) {
	if dir == "" {
		return
	}
	now := time.Now()
	res := make([]metrics.DrillResult, 0, len(out))
	for _, o := range out {
		r := metrics.DrillResult{Database: o.Database, Time: now, OK: len(o.Failures) == 0, Duration: o.Took, Checks: len(o.Checks)}
		for _, c := range o.Checks {
			if c.Err != nil {
				r.Failed++
			}
		}
		res = append(res, r)
	}
	if err := metrics.WriteDrill(dir, res); err != nil {
		log.Warn(fmt.Sprintf("drill: writing metrics: %v", err))
	}
}

// RecordStatus records a status report; all says whether every database on
// the remote was checked (then a database that vanished loses its series).
func RecordStatus(dir string, r status.Report, all bool, log *slog.Logger) {
	if dir == "" {
		return
	}
	run := metrics.StatusRun{All: all, Databases: r.Databases()}
	for _, e := range r.Entries {
		run.Entries = append(run.Entries, metrics.StatusEntry{
			Database: e.Database, Upstream: e.Upstream, Listed: e.State != status.Unlisted,
			Archives: e.Archives, HasNewest: e.Newest != nil, NewestAge: e.Age, OK: e.State == status.OK, MaxAge: e.MaxAge,
		})
	}
	if err := metrics.WriteStatus(dir, run); err != nil {
		log.Warn(fmt.Sprintf("status: writing metrics: %v", err))
	}
}
