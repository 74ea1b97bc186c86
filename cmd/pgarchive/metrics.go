package main

import (
	"fmt"
	"time"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/prune"
)

// writeArchiveMetrics records one archive run: per upstream whether it holds
// the new archive, its size and how long it took, and what this database
// still has in the backlog. A run that failed before it had a result (no
// dump, no key) is a failure everywhere.
func writeArchiveMetrics(s *Settings, db string, res *archive.Result, runErr error) {
	if s.MetricsDir == "" {
		return
	}
	run := metrics.ArchiveRun{Database: db, Time: time.Now()}
	switch {
	case res != nil:
		for _, o := range res.Outcomes {
			u := metrics.UpstreamRun{Name: o.Upstream, OK: o.Err == nil, Duration: o.Duration}
			if res.Manifest != nil {
				u.Bytes = res.Manifest.Ciphertext.Size
			}
			run.Upstreams = append(run.Upstreams, u)
		}
	case runErr != nil:
		run.FailedEarly = true
	default:
		return
	}
	if s.StateDir != "" {
		sum, err := backlog.Usage(s.StateDir)
		if err != nil {
			logger.Warn(fmt.Sprintf("archive: backlog size for metrics: %v", err))
		}
		d := sum.Databases[db]
		run.BacklogArchives, run.BacklogBytes = d.Archives, d.Bytes
	}
	if err := metrics.WriteArchive(s.MetricsDir, run); err != nil {
		logger.Warn(fmt.Sprintf("archive: writing metrics: %v", err))
	}
}

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
