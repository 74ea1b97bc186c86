package retention

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// TimeLayout is how Table prints archive times: the name's UTC instant,
// readable, to the second.
const TimeLayout = "2006-01-02 15:04:05Z"

// Table renders the plan for a dry run: one row per archive, newest first,
// keeps and removals interleaved so the gaps a policy leaves are visible,
// then a count.
func (p Plan) Table() string {
	type row struct {
		d      Decision
		action string
	}
	rows := make([]row, 0, len(p.Keep)+len(p.Remove))
	for _, d := range p.Keep {
		rows = append(rows, row{d, "keep"})
	}
	for _, d := range p.Remove {
		rows = append(rows, row{d, "remove"})
	}
	sort.SliceStable(rows, func(i, j int) bool { return Newer(rows[i].d.Item, rows[j].d.Item) })

	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ARCHIVE\tTIME\tACTION\tREASONS")
	for _, r := range rows {
		id := r.d.ID
		if !r.d.Complete {
			id += " (incomplete)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", id, r.d.Time.UTC().Format(TimeLayout), r.action, strings.Join(r.d.Reasons, ", "))
	}
	w.Flush()
	fmt.Fprintf(&b, "keep %d, remove %d\n", len(p.Keep), len(p.Remove))
	return b.String()
}
