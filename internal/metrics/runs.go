package metrics

import (
	"fmt"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
)

// File names, one per kind of run (archive: one per database).
const (
	DrillFile  = "pgarchive-drill.prom"
	StatusFile = "pgarchive-status.prom"
	PruneFile  = "pgarchive-prune.prom"
	HealFile   = "pgarchive-heal.prom"
)

// ArchiveFile is the file of one database's archive runs.
func ArchiveFile(db string) string { return "pgarchive-archive-" + db + ".prom" }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// UpstreamRun is what one archive run did on one upstream.
type UpstreamRun struct {
	Name     string // as rclone.conf spells it
	OK       bool   // a complete, verified copy with its manifest is there
	Bytes    int64  // ciphertext bytes of that copy; used when OK
	Duration time.Duration
}

// ArchiveRun is one archive run of one database. A run that failed before
// it could upload (no dump, no key) lists every upstream with OK false.
type ArchiveRun struct {
	Database        string
	Time            time.Time // when the run ended
	Upstreams       []UpstreamRun
	BacklogArchives int   // left in the backlog after the run
	BacklogBytes    int64 // their ciphertext bytes
	BacklogMax      int64 // --backlog-max-size; 0: no backlog (the series is not written)
	// FailedEarly marks a run that failed before it knew its upstreams (no
	// dump, no key, a broken rclone.conf): every upstream the file already
	// knows gets a failure, or, in a file without any, a series with an
	// empty upstream label, so that the failure is never invisible.
	FailedEarly bool
}

// WriteArchive records an archive run in ArchiveFile(run.Database). For each
// upstream, a success renews the last success time and bytes, a failure the
// last failure time; the other keeps its earlier value. Upstreams that were
// not part of the run keep their series (remove the file to forget one).
func WriteArchive(dir string, run ArchiveRun) error {
	if err := naming.ValidateDatabase(run.Database); err != nil {
		return err
	}
	return update(dir, ArchiveFile(run.Database), func(st store) {
		if run.FailedEarly && len(run.Upstreams) == 0 {
			known := map[string]bool{}
			for _, s := range st {
				if s.name == LastSuccess || s.name == LastFailure {
					known[s.label(LabelUpstream)] = true
				}
			}
			if len(known) == 0 {
				known[""] = true
			}
			for up := range known {
				st.set(LastFailure, unixSeconds(run.Time), LabelCommand, "archive", LabelDatabase, run.Database, LabelUpstream, up)
			}
		}
		for _, u := range run.Upstreams {
			kv := []string{LabelCommand, "archive", LabelDatabase, run.Database, LabelUpstream, u.Name}
			if u.OK {
				st.set(LastSuccess, unixSeconds(run.Time), kv...)
				st.set(LastBytes, float64(u.Bytes), kv...)
			} else {
				st.set(LastFailure, unixSeconds(run.Time), kv...)
			}
			st.set(LastDuration, u.Duration.Seconds(), kv...)
		}
		st.set(BacklogCount, float64(run.BacklogArchives), LabelDatabase, run.Database)
		st.set(BacklogBytes, float64(run.BacklogBytes), LabelDatabase, run.Database)
		if run.BacklogMax > 0 {
			st.set(BacklogMax, float64(run.BacklogMax), LabelDatabase, run.Database)
		} else {
			st.del(BacklogMax, LabelDatabase, run.Database)
		}
	})
}

// DrillResult is one database's restore drill.
type DrillResult struct {
	Database string
	Time     time.Time // when its drill ended
	OK       bool
	Duration time.Duration
	Checks   int // check queries run
	Failed   int // of them, failed
}

// WriteDrill records drill results in DrillFile. A failed drill keeps the
// time of the database's last passed drill; databases not drilled this time
// keep their series.
func WriteDrill(dir string, results []DrillResult) error {
	for _, r := range results {
		if err := naming.ValidateDatabase(r.Database); err != nil {
			return err
		}
	}
	return update(dir, DrillFile, func(st store) {
		for _, r := range results {
			st.set(DrillLastRun, unixSeconds(r.Time), LabelDatabase, r.Database)
			ok := 0.0
			if r.OK {
				ok = 1
				st.set(DrillSucceeded, unixSeconds(r.Time), LabelDatabase, r.Database)
			}
			st.set(DrillSuccess, ok, LabelDatabase, r.Database)
			st.set(DrillDuration, r.Duration.Seconds(), LabelDatabase, r.Database)
			st.set(DrillChecks, float64(r.Checks), LabelDatabase, r.Database)
			st.set(DrillFailed, float64(r.Failed), LabelDatabase, r.Database)
		}
	})
}

// StatusEntry is what status found for one database on one upstream.
type StatusEntry struct {
	Database  string
	Upstream  string
	Listed    bool          // false: the upstream could not be listed, nothing else is known
	Archives  int           // complete archives of the database there
	HasNewest bool          // at least one complete archive
	NewestAge time.Duration // age of the newest, from its name
	OK        bool          // status's verdict (not stale, not missing, listed)
	MaxAge    time.Duration // the limit the database was judged by (0: none)
}

// StatusRun is one status check. Databases are the databases it checked:
// their series are replaced, those of other databases are kept, so that
// `status --database db1` does not erase db2. All says every database was
// checked: the file is then replaced whole and forgets databases that no
// longer have archives.
type StatusRun struct {
	All       bool
	Databases []string
	Entries   []StatusEntry
}

// WriteStatus records a status check in StatusFile.
func WriteStatus(dir string, run StatusRun) error {
	checked := map[string]bool{}
	for _, db := range run.Databases {
		checked[db] = true
	}
	for _, e := range run.Entries {
		if err := naming.ValidateDatabase(e.Database); err != nil {
			return err
		}
		if !checked[e.Database] {
			return fmt.Errorf("status entry for %s, which is not among the databases checked", e.Database)
		}
	}
	return update(dir, StatusFile, func(st store) {
		st.drop(func(s *sample) bool { return run.All || checked[s.label(LabelDatabase)] })
		for _, e := range run.Entries {
			kv := []string{LabelCommand, "status", LabelDatabase, e.Database, LabelUpstream, e.Upstream}
			ok := 0.0
			if e.OK {
				ok = 1
			}
			st.set(StatusOK, ok, kv...)
			st.set(StatusMaxAge, e.MaxAge.Seconds(), LabelCommand, "status", LabelDatabase, e.Database)
			if !e.Listed {
				continue
			}
			st.set(Archives, float64(e.Archives), kv...)
			if e.HasNewest {
				st.set(NewestAge, e.NewestAge.Seconds(), kv...)
			}
		}
	})
}

// CountEntry is what a prune or heal run did for one database on one
// upstream.
type CountEntry struct {
	Database string
	Upstream string
	OK       bool // the run's work there succeeded
	Archives int  // complete archives held after the run; < 0: unknown, the series is removed
}

// CountsRun is one prune or heal run.
type CountsRun struct {
	Command string    // "prune" or "heal": the file (pgarchive-<command>.prom) and the command label
	Time    time.Time // when the run ended
	Entries []CountEntry
}

// WriteCounts records a prune or heal run in its own file. As with archive
// runs, a failure keeps the last success time and pairs not in the run keep
// their series.
func WriteCounts(dir string, run CountsRun) error {
	var file string
	switch run.Command {
	case "prune":
		file = PruneFile
	case "heal":
		file = HealFile
	default:
		return fmt.Errorf("metrics: no counts file for command %q (prune or heal)", run.Command)
	}
	for _, e := range run.Entries {
		if err := naming.ValidateDatabase(e.Database); err != nil {
			return err
		}
	}
	return update(dir, file, func(st store) {
		for _, e := range run.Entries {
			kv := []string{LabelCommand, run.Command, LabelDatabase, e.Database, LabelUpstream, e.Upstream}
			if e.OK {
				st.set(LastSuccess, unixSeconds(run.Time), kv...)
			} else {
				st.set(LastFailure, unixSeconds(run.Time), kv...)
			}
			if e.Archives >= 0 {
				st.set(Archives, float64(e.Archives), kv...)
			} else {
				st.del(Archives, kv...)
			}
		}
	})
}

// WALFile holds what status found of each cluster's WAL.
const WALFile = "pgarchive-wal.prom"

// WALEntry is one cluster's WAL as status judged it.
type WALEntry struct {
	SystemID    uint64
	OK          bool
	WindowStart time.Time // zero: no recovery window
	Newest      time.Time // zero: unknown
	Gaps        int
}

// WriteWAL replaces the WAL file with entries.
func WriteWAL(dir string, entries []WALEntry) error {
	return update(dir, WALFile, func(st store) {
		st.drop(func(*sample) bool { return true })
		for _, e := range entries {
			kv := []string{LabelCommand, "status", LabelSystemID, fmt.Sprint(e.SystemID)}
			ok := 0.0
			if e.OK {
				ok = 1
			}
			st.set(WALOK, ok, kv...)
			st.set(WALGaps, float64(e.Gaps), kv...)
			if !e.WindowStart.IsZero() {
				st.set(WALWindowStart, unixSeconds(e.WindowStart), kv...)
			}
			if !e.Newest.IsZero() {
				st.set(WALNewest, unixSeconds(e.Newest), kv...)
			}
		}
	})
}
