package main

import (
	"context"
	"fmt"

	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// walView lists every cluster's WAL and judges its recovery window against
// the base backups in the session's catalog (which must be the whole one).
func (s *session) walView(ctx context.Context) ([]*walarchive.Inventory, []walarchive.Window) {
	segSize := func(c walname.Cluster) int64 {
		for _, a := range s.cat.Archives { // newest first
			if a.Name.Database == c.BaseDatabase() && a.Manifest != nil && a.Manifest.Base != nil {
				return a.Manifest.Base.SegmentSize
			}
		}
		return 0
	}
	invs := walarchive.Scan(ctx, s.ups, s.prefix, segSize)
	windows := make([]walarchive.Window, len(invs))
	for i, inv := range invs {
		windows[i] = walarchive.RecoveryWindow(inv, s.cat)
	}
	return invs, windows
}

// recordWAL writes the WAL metrics and logs each problem as an error entry.
func recordWAL(dir string, invs []*walarchive.Inventory, windows []walarchive.Window) {
	var entries []metrics.WALEntry
	for i, w := range windows {
		for _, p := range w.Problems {
			logger.Error("status: WAL: "+p, "system_identifier", fmt.Sprint(w.Cluster.SystemID))
		}
		entries = append(entries, metrics.WALEntry{SystemID: w.Cluster.SystemID, OK: w.OK(), WindowStart: w.From,
			Newest: invs[i].NewestTime, Gaps: len(invs[i].Union.Gaps)})
	}
	if dir == "" {
		return
	}
	if err := metrics.WriteWAL(dir, entries); err != nil {
		logger.Warn(fmt.Sprintf("status: writing WAL metrics: %v", err))
	}
}
