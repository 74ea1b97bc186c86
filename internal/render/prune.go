package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/pgarchive/pgarchive/internal/prune"
	"github.com/pgarchive/pgarchive/internal/retention"
)

// PrunePlans writes a dry run's plan per database, with the archives
// skipped and why.
func PrunePlans(w io.Writer, res *prune.Result, p retention.Policy) {
	if len(res.Databases) == 0 {
		fmt.Fprintln(w, "no archives found: nothing to prune")
		return
	}
	for i, d := range res.Databases {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "database %s: %s, as of %s (dry run: nothing deleted)\n", d.Database, describePolicy(p), res.Now.Format(retention.TimeLayout))
		fmt.Fprint(w, d.Plan.Table())
		for _, a := range d.Archives {
			if a.Action == "skip" {
				fmt.Fprintf(w, "skip %s: %s\n", a.Key, strings.Join(a.Reasons, ", "))
			}
		}
	}
}

func describePolicy(p retention.Policy) string {
	var parts []string
	for _, r := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		switch {
		case r.n == -1:
			parts = append(parts, "keep-"+r.name+" all")
		case r.n > 0:
			parts = append(parts, fmt.Sprintf("keep-%s %d", r.name, r.n))
		}
	}
	if p.Within > 0 {
		parts = append(parts, "keep-within "+retention.FormatDuration(p.Within))
	}
	return strings.Join(parts, ", ")
}
