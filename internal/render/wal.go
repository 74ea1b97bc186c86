package render

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/walarchive"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// WALTable prints each cluster's archived WAL per upstream (runs, gaps,
// history files, pushes cut short) and its recovery window.
func WALTable(out io.Writer, invs []*walarchive.Inventory, windows []walarchive.Window) {
	for i, inv := range invs {
		fmt.Fprintf(out, "\nWAL of %s (base backups: database %s)\n", inv.Cluster, inv.Cluster.BaseDatabase())
		for _, u := range inv.Upstreams {
			fmt.Fprintf(out, "  %s: %s\n", u.Name, upstreamLine(u, inv.SegSize))
		}
		w := windows[i]
		for _, b := range w.Bases {
			where := "on every upstream"
			if len(b.MissingOn) > 0 {
				where = "MISSING on " + strings.Join(b.MissingOn, ", ")
			}
			fmt.Fprintf(out, "  base backup %s needs %s..%s: %s\n", path.Base(b.Key), b.First, b.Last, where)
		}
		fmt.Fprintf(out, "  recovery window: %s\n", windowLine(w))
		for _, p := range w.Problems {
			fmt.Fprintf(out, "  PROBLEM: %s\n", p)
		}
	}
}

func upstreamLine(u walarchive.UpstreamWAL, segSize int64) string {
	if u.Err != nil {
		return "UNLISTED: " + u.Err.Error()
	}
	if len(u.Files) == 0 {
		return "no WAL"
	}
	var parts []string
	for _, r := range u.Runs {
		parts = append(parts, fmt.Sprintf("timeline %d: %s", r.Timeline, r.Format(segSize)))
	}
	for _, g := range u.Gaps {
		parts = append(parts, "GAP "+g.Format(segSize))
	}
	if len(u.Histories) > 0 {
		parts = append(parts, "history "+strings.Join(u.Histories, " "))
	}
	if u.Incomplete > 0 {
		parts = append(parts, fmt.Sprintf("%d INCOMPLETE (no manifest)", u.Incomplete))
	}
	return strings.Join(parts, "; ")
}

func windowLine(w walarchive.Window) string {
	if w.From.IsZero() {
		return "none"
	}
	to := "segment " + w.To
	if !w.ToTime.IsZero() {
		to = w.ToTime.UTC().Format(time.RFC3339) + " (" + to + ", the newest archived)"
	}
	return fmt.Sprintf("from %s (end of %s) to %s", w.From.UTC().Format(time.RFC3339), w.FromBackup, to)
}

type baseJSON struct {
	Key       string   `json:"key"`
	Timeline  uint32   `json:"timeline"`
	First     string   `json:"first_segment"`
	Last      string   `json:"last_segment"`
	MissingOn []string `json:"missing_on"`
}

type walJSON struct {
	SystemID  string            `json:"system_identifier"`
	Major     int               `json:"major"`
	Database  string            `json:"base_backup_database"`
	Newest    string            `json:"newest_wal,omitempty"`
	Upstreams []walUpstreamJSON `json:"upstreams"`
	Window    windowJSON        `json:"recovery_window"`
}

type walUpstreamJSON struct {
	Upstream   string   `json:"upstream"`
	Error      string   `json:"error,omitempty"`
	Ranges     []string `json:"ranges"`
	Gaps       []string `json:"gaps"`
	Histories  []string `json:"histories"`
	Incomplete int      `json:"incomplete"`
}

type windowJSON struct {
	Bases      []baseJSON `json:"base_backups"`
	From       *time.Time `json:"from,omitempty"`
	FromBackup string     `json:"from_backup,omitempty"`
	To         string     `json:"to_segment,omitempty"`
	ToTime     *time.Time `json:"to,omitempty"`
	Problems   []string   `json:"problems"`
}

// WALValues is the JSON form of WALTable, for list --wal --json and
// status --json.
func WALValues(invs []*walarchive.Inventory, windows []walarchive.Window) []walJSON {
	out := []walJSON{}
	for i, inv := range invs {
		j := walJSON{SystemID: fmt.Sprint(inv.Cluster.SystemID), Major: inv.Cluster.Major, Database: inv.Cluster.BaseDatabase(), Newest: inv.Newest}
		for _, u := range inv.Upstreams {
			uj := walUpstreamJSON{Upstream: u.Name, Ranges: formatRanges(u.Runs, inv.SegSize), Gaps: formatRanges(u.Gaps, inv.SegSize),
				Histories: append([]string{}, u.Histories...), Incomplete: u.Incomplete}
			if u.Err != nil {
				uj.Error = u.Err.Error()
			}
			j.Upstreams = append(j.Upstreams, uj)
		}
		w := windows[i]
		j.Window = windowJSON{FromBackup: w.FromBackup, To: w.To, Problems: append([]string{}, w.Problems...), Bases: []baseJSON{}}
		for _, b := range w.Bases {
			j.Window.Bases = append(j.Window.Bases, baseJSON{Key: b.Key, Timeline: b.Timeline, First: b.First, Last: b.Last, MissingOn: append([]string{}, b.MissingOn...)})
		}
		if !w.From.IsZero() {
			j.Window.From = &w.From
		}
		if !w.ToTime.IsZero() {
			j.Window.ToTime = &w.ToTime
		}
		out = append(out, j)
	}
	return out
}

func formatRanges(rs []walname.Range, segSize int64) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d:%s", r.Timeline, r.Format(segSize)))
	}
	return out
}

// WALJSON prints WALValues.
func WALJSON(w io.Writer, invs []*walarchive.Inventory, windows []walarchive.Window) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(WALValues(invs, windows))
}
