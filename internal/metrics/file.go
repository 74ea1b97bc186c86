// Package metrics writes pgarchive's Prometheus metrics as text files for
// node_exporter's textfile collector. Each kind of run owns one file
// (archive: one per database); runs that share one (heal, from several
// archive --heal at once) take turns under a lock on the directory. A file
// is always replaced whole (temporary file, fsync, rename), so the collector
// never reads half of one. The file is also the only state: values a run does not renew,
// such as the last success after a failure, are read back from it.
//
// node_exporter merges all files of its directory and refuses a scrape in
// which two files hold the same series or give one name two HELP texts. So
// every name has exactly one HELP text here, and every series keyed by
// database and upstream carries a command label (archive, prune, heal,
// status): several commands report pgarchive_archives and the last
// success and failure times, and the label keeps their series apart.
package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
)

// Series names and their HELP texts. A name missing here is never written,
// and one read back from an old file is dropped.
const (
	LastSuccess    = "pgarchive_last_success_timestamp_seconds"
	LastFailure    = "pgarchive_last_failure_timestamp_seconds"
	LastBytes      = "pgarchive_last_bytes"
	LastDuration   = "pgarchive_last_duration_seconds"
	Archives       = "pgarchive_archives"
	NewestAge      = "pgarchive_newest_archive_age_seconds"
	StatusOK       = "pgarchive_status_ok"
	BacklogCount   = "pgarchive_backlog_archives"
	BacklogBytes   = "pgarchive_backlog_bytes"
	BacklogMax     = "pgarchive_backlog_max_bytes"
	DrillLastRun   = "pgarchive_drill_last_run_timestamp_seconds"
	DrillSuccess   = "pgarchive_drill_last_success"
	DrillSucceeded = "pgarchive_drill_last_success_timestamp_seconds"
	DrillDuration  = "pgarchive_drill_last_duration_seconds"
	DrillChecks    = "pgarchive_drill_last_checks"
	DrillFailed    = "pgarchive_drill_last_checks_failed"
	StatusMaxAge   = "pgarchive_status_max_age_seconds"
	WALOK          = "pgarchive_wal_ok"
	WALWindowStart = "pgarchive_wal_recovery_window_start_timestamp_seconds"
	WALNewest      = "pgarchive_wal_newest_timestamp_seconds"
	WALGaps        = "pgarchive_wal_gaps"
)

var help = map[string]string{
	LastSuccess:    "Unix time a run of the command last succeeded for the database on the upstream.",
	LastFailure:    "Unix time a run of the command last failed for the database on the upstream.",
	LastBytes:      "Ciphertext bytes of the last copy the command completed on the upstream.",
	LastDuration:   "Seconds the last run spent on the upstream (upload and verification for archive).",
	Archives:       "Complete archives of the database the upstream holds, as the command last saw them.",
	NewestAge:      "Age in seconds of the newest complete archive of the database on the upstream, from its name.",
	StatusOK:       "1 if pgarchive status judged the database OK on the upstream, else 0 (stale, missing or unlisted).",
	BacklogCount:   "Archives of the database waiting in the backlog for an upstream that did not take them.",
	BacklogBytes:   "Ciphertext bytes of the database waiting in the backlog.",
	BacklogMax:     "The largest the whole backlog (every database) may grow before its oldest archives are dropped (--backlog-max-size).",
	DrillLastRun:   "Unix time the restore drill of the database last ran.",
	DrillSuccess:   "1 if the last restore drill of the database passed, else 0.",
	DrillSucceeded: "Unix time the restore drill of the database last passed.",
	DrillDuration:  "Seconds the last restore drill of the database took.",
	DrillChecks:    "Check queries the last restore drill of the database ran.",
	DrillFailed:    "Check queries of the last restore drill of the database that failed.",
	StatusMaxAge:   "The age limit pgarchive status judged the database's newest archive by, in seconds (0: none).",
	WALOK:          "1 if the cluster's archived WAL and base backups give a recovery window without problems, else 0.",
	WALWindowStart: "Unix time of the earliest point the cluster can be recovered to (the end of its oldest usable base backup).",
	WALNewest:      "Unix time the newest WAL segment of the cluster was stored (the listing's time).",
	WALGaps:        "Ranges of WAL segments missing on every upstream inside a timeline's archived span.",
}

// Label names.
const (
	LabelCommand  = "command"
	LabelDatabase = "database"
	LabelUpstream = "upstream"
	LabelSystemID = "system_identifier"
)

// sample is one series and its value.
type sample struct {
	name   string
	labels [][2]string // sorted by name
	value  float64
}

func (s *sample) label(name string) string {
	for _, l := range s.labels {
		if l[0] == name {
			return l[1]
		}
	}
	return ""
}

// store is a file's series, keyed by name and labels.
type store map[string]*sample

func seriesKey(name string, labels [][2]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l[0])
		b.WriteByte(0)
		b.WriteString(l[1])
	}
	return b.String()
}

// pairs turns "k1", "v1", "k2", "v2" into sorted label pairs.
func pairs(kv ...string) [][2]string {
	ls := make([][2]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, [2]string{kv[i], kv[i+1]})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i][0] < ls[j][0] })
	return ls
}

func (st store) set(name string, value float64, kv ...string) {
	ls := pairs(kv...)
	st[seriesKey(name, ls)] = &sample{name: name, labels: ls, value: value}
}

func (st store) get(name string, kv ...string) (float64, bool) {
	s, ok := st[seriesKey(name, pairs(kv...))]
	if !ok {
		return 0, false
	}
	return s.value, true
}

func (st store) del(name string, kv ...string) {
	delete(st, seriesKey(name, pairs(kv...)))
}

// drop removes every series for which match is true.
func (st store) drop(match func(*sample) bool) {
	for k, s := range st {
		if match(s) {
			delete(st, k)
		}
	}
}

// load reads a file written before. A missing file is an empty store; an
// unreadable one is an empty store and an error, so that a damaged file
// costs its history but never stops new metrics from being written.
func load(path string) (store, error) {
	st := store{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	fams, err := parseText(f)
	if err != nil {
		return st, err
	}
	for name, fam := range fams {
		if _, known := help[name]; !known {
			continue
		}
		for _, m := range fam.GetMetric() {
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue // never written by pgarchive; render would refuse it
			}
			kv := make([]string, 0, 2*len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName(), l.GetValue())
			}
			st.set(name, v, kv...)
		}
	}
	return st, nil
}

// parseText is expfmt's parser, which in prometheus/common v0.70.0 panics
// on some damaged input (a line "{}": prometheus/common#922, fixed after
// that release). A damaged file must cost its history, not the run.
func parseText(r io.Reader) (fams map[string]*dto.MetricFamily, err error) {
	defer func() {
		if p := recover(); p != nil {
			fams, err = nil, fmt.Errorf("text parser failed: %v", p)
		}
	}()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// render writes the store as gauges in the text format, names and series
// sorted so that equal stores give equal files.
func (st store) render(w io.Writer) error {
	byName := map[string][]*sample{}
	for _, s := range st {
		byName[s.name] = append(byName[s.name], s)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ss := byName[n]
		sort.Slice(ss, func(i, j int) bool { return seriesKey("", ss[i].labels) < seriesKey("", ss[j].labels) })
		fam := &dto.MetricFamily{Name: ptr(n), Help: ptr(help[n]), Type: dto.MetricType_GAUGE.Enum()}
		for _, s := range ss {
			if math.IsNaN(s.value) || math.IsInf(s.value, 0) {
				return fmt.Errorf("%s: value %v is not a number", n, s.value)
			}
			m := &dto.Metric{Gauge: &dto.Gauge{Value: ptr(s.value)}}
			for _, l := range s.labels {
				m.Label = append(m.Label, &dto.LabelPair{Name: ptr(l[0]), Value: ptr(l[1])})
			}
			fam.Metric = append(fam.Metric, m)
		}
		if _, err := expfmt.MetricFamilyToText(w, fam); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// update reads path, lets change edit its series and replaces the file. The
// file is written even when the old one was unreadable; that error is
// returned after the new file is in place.
func update(dir, file string, change func(store)) error {
	if dir == "" {
		return errors.New("no metrics directory given")
	}
	path := filepath.Join(dir, file)
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("metrics directory %s: %w", dir, err)
	}
	defer unlock()
	st, loadErr := load(path)
	change(st)
	if err := writeAtomic(path, st.render); err != nil {
		return err
	}
	if loadErr != nil {
		return fmt.Errorf("metrics file %s was unreadable (%v); rewritten without its earlier values", path, loadErr)
	}
	return nil
}

// lockDir serialises read-change-write cycles between processes: several
// postgresqlBackup-<db> units run `archive --heal` at once and all update
// pgarchive-heal.prom. The lock is taken on the directory itself, so no lock
// file sits among the collector's files; it ends with the process at worst.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(d.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("lock: %w", err)
	}
	return func() { d.Close() }, nil
}

// writeAtomic replaces path with what fill writes: mode 0644 for
// node_exporter's user, and a temporary name that does not end in .prom, so
// the collector skips it while it is written.
func writeAtomic(path string, fill func(io.Writer) error) error {
	if err := atomicfile.Write(path, atomicfile.Options{Perm: 0o644}, fill); err != nil {
		return fmt.Errorf("metrics file %w", err)
	}
	return nil
}
