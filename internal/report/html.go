package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/status"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

//go:embed page.html.tmpl
var pageTemplate string

// States are the marks a timeline shows, in the legend's order: the state
// as JSON spells it, the letter the page prints in the mark (so colour is
// never the only carrier) and the words its legend and tooltips use.
var States = []struct{ State, Letter, Words string }{
	{"ok", "+", "complete copy"},
	{"missing", "M", "missing"},
	{"incomplete", "I", "incomplete (data without manifest)"},
	{"no-data", "N", "manifest without data"},
	{"wrong-size", "W", "wrong size"},
	{"bad-manifest", "B", "manifest unreadable"},
	{"differs", "D", "manifest differs"},
	{"untrusted", "U", "untrusted (no valid signature)"},
	{"future", "F", "future-dated"},
	{"unlisted", "?", "upstream not listed"},
	{"not-expected", "-", "not expected (read-only member)"},
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"letter": func(state string) string {
		for _, s := range States {
			if s.State == state {
				return s.Letter
			}
		}
		return "?"
	},
	"words": func(state string) string {
		for _, s := range States {
			if s.State == state {
				return s.Words
			}
		}
		return state
	},
	"states": func() any { return States },
	"age":    func(s int64) string { return status.HumanAge(time.Duration(s) * time.Second) },
	"bytes":  textfmt.Bytes,
	"plural": textfmt.Plural,
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"day":    func(d string) string { return strings.TrimLeft(d[8:], "0") },
	"month": func(i int, d string) string {
		if i == 0 || d[8:] == "01" {
			t, _ := time.Parse(time.DateOnly, d)
			return t.Format("Jan")
		}
		return ""
	},
	"pct": func(f *float64) string {
		if f == nil {
			return ""
		}
		return fmt.Sprintf("%+.0f%%", math.Round(*f*100))
	},
	"seconds": func(s float64) string {
		return status.HumanAge(time.Duration(s * float64(time.Second)))
	},
	"chart": chart,
	"clip":  clip,
	"more": func(list any) string {
		if n := reflect.ValueOf(list).Len(); n > Shown {
			return fmt.Sprintf("… and %d more in report.json (report --json)", n-Shown)
		}
		return ""
	},
	// The header's line is the summary's verdict part, "STALE: 1 stale
	// of 4"; the entries it names follow as the problem list.
	"headline": func(summary string) string {
		if i := strings.Index(summary, " ("); i > 0 {
			return summary[:i]
		}
		return summary
	},
	"anchor": func(db string) string { return "db-" + db },
}).Parse(pageTemplate))

// Shown is how many problems, missing runs and suspects the page lists
// (report.json has them all), and ClipAt how long a sentence from the
// store may get on it: a store holding thousands of forged archives must
// not make a page nobody can read.
const (
	Shown  = 50
	ClipAt = 400
)

// Shown is for the template: the page's list limit.
func (r *Report) Shown() int { return Shown }

func clip(s string) string {
	if r := []rune(s); len(r) > ClipAt {
		return string(r[:ClipAt]) + "… (clipped; report.json has it whole)"
	}
	return s
}

// HTML writes the report as one self-contained page: inline CSS and SVG,
// no script, no external font or image, and a Content-Security-Policy that
// forbids loading anything, so it renders the same on an air-gapped host.
// Every name from the store goes through html/template's escaping.
func (r *Report) HTML(w io.Writer) error {
	return page.Execute(w, r)
}

// JSON writes the report as indented JSON.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Chart is a size chart ready for the page: an SVG polyline in a fixed
// viewBox, and the labels of its axes.
type Chart struct {
	Width, Height int
	Points        string // "x,y x,y ..."
	Dots          []Dot
	Min, Max      string
	From, To      string
}

// Dot is one archive on the chart, with its tooltip.
type Dot struct {
	X, Y  float64
	Title string
}

// chart scales the points into the viewBox; nil with fewer than two.
func chart(pts []SizePoint) *Chart {
	if len(pts) < 2 {
		return nil
	}
	c := &Chart{Width: 640, Height: 160}
	const pad = 8.0
	lo, hi := pts[0].Bytes, pts[0].Bytes
	for _, p := range pts {
		lo, hi = min(lo, p.Bytes), max(hi, p.Bytes)
	}
	t0, t1 := pts[0].Created, pts[len(pts)-1].Created
	span := t1.Sub(t0).Seconds()
	var b strings.Builder
	for _, p := range pts {
		x := pad
		if span > 0 {
			x += p.Created.Sub(t0).Seconds() / span * (float64(c.Width) - 2*pad)
		}
		y := float64(c.Height) / 2
		if hi > lo {
			y = pad + float64(hi-p.Bytes)/float64(hi-lo)*(float64(c.Height)-2*pad)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		c.Dots = append(c.Dots, Dot{X: math.Round(x*10) / 10, Y: math.Round(y*10) / 10,
			Title: p.Created.UTC().Format("2006-01-02 15:04") + ": " + textfmt.Bytes(p.Bytes)})
	}
	c.Points = strings.TrimSpace(b.String())
	c.Min, c.Max = textfmt.Bytes(lo), textfmt.Bytes(hi)
	c.From, c.To = t0.UTC().Format(time.DateOnly), t1.UTC().Format(time.DateOnly)
	return c
}
