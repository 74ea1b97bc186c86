package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Snapshot is what pgarchive's runs left in a metrics directory, read back
// for the report: the drills and backlogs nothing else records.
type Snapshot struct {
	Drills  map[string]Drill   // by database
	Backlog map[string]Backlog // by database, from its archive runs
	// Errs name the files that could not be read; what they held is missing.
	Errs []error
}

// Drill is a database's last restore drill.
type Drill struct {
	LastRun     time.Time
	OK          bool
	LastSuccess time.Time // zero: never passed (as far as the file knows)
	Duration    time.Duration
	Checks      int
	Failed      int
}

// Backlog is what a database has waiting in the backlog.
type Backlog struct {
	Archives int
	Bytes    int64
	MaxBytes int64 // 0: unknown
}

// Read reads every pgarchive-*.prom file in dir. A directory that cannot
// be read is an error (the caller says what is then not shown); a file that
// cannot be parsed is skipped and named in Errs.
func Read(dir string) (*Snapshot, error) {
	snap := &Snapshot{Drills: map[string]Drill{}, Backlog: map[string]Backlog{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("metrics directory: %w", err)
	}
	for _, e := range ents { // sorted by name
		base := e.Name()
		if !strings.HasPrefix(base, "pgarchive-") || !strings.HasSuffix(base, ".prom") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, base)
		st, err := load(path)
		if err != nil {
			snap.Errs = append(snap.Errs, fmt.Errorf("metrics file %s: %w", path, err))
			continue
		}
		switch {
		case base == DrillFile:
			snap.addDrills(st)
		case strings.HasPrefix(base, "pgarchive-archive-"):
			snap.addBacklog(st)
		}
	}
	return snap, nil
}

func fromUnix(v float64) time.Time {
	if v <= 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v*1e9)).UTC()
}

func (snap *Snapshot) addDrills(st store) {
	for _, s := range st {
		db := s.label(LabelDatabase)
		d := snap.Drills[db]
		switch s.name {
		case DrillLastRun:
			d.LastRun = fromUnix(s.value)
		case DrillSuccess:
			d.OK = s.value == 1
		case DrillSucceeded:
			d.LastSuccess = fromUnix(s.value)
		case DrillDuration:
			d.Duration = time.Duration(s.value * float64(time.Second))
		case DrillChecks:
			d.Checks = int(s.value)
		case DrillFailed:
			d.Failed = int(s.value)
		default:
			continue
		}
		snap.Drills[db] = d
	}
}

func (snap *Snapshot) addBacklog(st store) {
	for _, s := range st {
		db := s.label(LabelDatabase)
		b := snap.Backlog[db]
		switch s.name {
		case BacklogCount:
			b.Archives = int(s.value)
		case BacklogBytes:
			b.Bytes = int64(s.value)
		case BacklogMax:
			b.MaxBytes = int64(s.value)
		default:
			continue
		}
		snap.Backlog[db] = b
	}
}
