package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pgarchive/pgarchive/internal/status"
)

// StatusTable writes the summary line, then a row per database and
// upstream.
func StatusTable(out io.Writer, r status.Report) {
	fmt.Fprintln(out, r.Summary())
	if len(r.Entries) == 0 {
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DATABASE\tUPSTREAM\tNEWEST ARCHIVE\tAGE\tARCHIVES\tSTATE")
	for _, e := range r.Entries {
		newest, age, n := "-", "-", "-"
		if e.Newest != nil {
			newest, age = e.Newest.Name.Base(), status.HumanAge(e.Age)
		}
		if e.State != status.Unlisted {
			n = strconv.Itoa(e.Archives)
		}
		state := string(e.State)
		if e.History {
			state += " (read-only: history)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Database, e.Upstream, newest, age, n, state)
	}
	w.Flush()
}

type statusJSON struct {
	OK            bool              `json:"ok"`
	Summary       string            `json:"summary"`
	Time          time.Time         `json:"time"`
	MaxAgeSeconds int64             `json:"max_age_seconds"`
	Entries       []statusJSONEntry `json:"entries"`
	WAL           []walJSON         `json:"wal"`
}

type statusJSONEntry struct {
	Database   string     `json:"database"`
	Upstream   string     `json:"upstream"`
	State      string     `json:"state"`
	Archive    string     `json:"archive,omitempty"`
	Key        string     `json:"key,omitempty"`
	Created    *time.Time `json:"created,omitempty"`
	AgeSeconds *int64     `json:"age_seconds,omitempty"`
	Archives   *int       `json:"archives,omitempty"`
	History    bool       `json:"history,omitempty"` // a :ro or :nc member: nothing new expected there
	Error      string     `json:"error,omitempty"`
}

// StatusJSON writes the report as status --json prints it.
// wal (render.WALValues) is each cluster's WAL and recovery window, empty
// when status was asked about named databases only.
func StatusJSON(w io.Writer, r status.Report, wal []walJSON) error {
	out := statusJSON{OK: r.OK(), Summary: r.Summary(), Time: r.Now.Truncate(time.Second),
		MaxAgeSeconds: int64(r.MaxAge / time.Second), Entries: make([]statusJSONEntry, 0, len(r.Entries)), WAL: wal}
	for _, e := range r.Entries {
		j := statusJSONEntry{Database: e.Database, Upstream: e.Upstream, State: string(e.State), History: e.History}
		if e.Newest != nil {
			created, age := e.Newest.Name.Created, int64(e.Age/time.Second)
			j.Archive, j.Key, j.Created, j.AgeSeconds = e.Newest.Name.Base(), e.Newest.Key, &created, &age
		}
		if e.State != status.Unlisted {
			n := e.Archives
			j.Archives = &n
		}
		if e.Err != nil {
			j.Error = e.Err.Error()
		}
		out.Entries = append(out.Entries, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
