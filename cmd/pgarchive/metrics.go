package main

import (
	"fmt"
	"time"

	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/prune"
)

// Metrics are a side channel: a failure to write them is logged and never
// changes a run's outcome or exit status.

// writePruneMetrics records, per database and upstream, whether the prune
// worked there and how many complete archives it kept. A dry run changes
// nothing, so it records nothing. A prune refused as a whole (an upstream
// unlisted, deletes denied) is a failure on every pair the catalog knows.
func writePruneMetrics(dir string, s *session, dryRun bool, res *prune.Result, runErr error) {
	if dir == "" || dryRun {
		return
	}
	run := metrics.CountsRun{Command: "prune", Time: time.Now()}
	if res == nil {
		if runErr == nil {
			return
		}
		for _, db := range s.cat.Databases() {
			for _, u := range s.cat.Upstreams {
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
		logger.Warn(fmt.Sprintf("prune: writing metrics: %v", err))
	}
}
