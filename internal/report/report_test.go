package report

import (
	"bytes"
	"errors"

	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/status"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// nightly describes a test history: one archive of db a day at 03:00 for
// days days back, present on the upstreams on says (nil: all), with the
// dump size size says (nil: 1000).
type nightly struct {
	db   string
	days int
	on   func(day, upstream int) bool
	size func(day int) int64
}

func build(t testing.TB, ups []string, hs ...nightly) *catalog.Catalog {
	t.Helper()
	listings := make([][]catalog.Object, len(ups))
	sizes := map[string]int64{}
	for _, h := range hs {
		for day := 0; day < h.days; day++ {
			created := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.UTC).AddDate(0, 0, -day)
			n, err := naming.New(h.db, created, ".gz")
			if err != nil {
				t.Fatal(err)
			}
			key := n.Key("")
			sizes[key] = 1000
			if h.size != nil {
				sizes[key] = h.size(day)
			}
			for i := range ups {
				if h.on == nil || h.on(day, i) {
					listings[i] = append(listings[i], catalog.Object{Key: key, Size: 100}, catalog.Object{Key: key + naming.ManifestSuffix, Size: 1})
				}
			}
		}
	}
	c := catalog.Assemble("", ups, listings, make([]error, len(ups)))
	for _, a := range c.Archives {
		a.Manifest = &manifest.Manifest{Archive: a.Name.Base(), Ciphertext: manifest.Blob{Size: 100}, Dump: manifest.Dump{Size: sizes[a.Key]}}
	}
	return c
}

func input(c *catalog.Catalog, maxAge time.Duration) Input {
	return Input{Now: now, Catalog: c, Status: status.Check(c, nil, now, maxAge)}
}

func TestBuildSeededHistory(t *testing.T) {
	ups := []string{"minio-a", "minio-b"}
	c := build(t, ups,
		nightly{db: "db1", days: 60,
			on:   func(day, up int) bool { return up == 0 || day < 10 || day > 16 }, // minio-b lacks a week
			size: func(day int) int64 { return map[bool]int64{true: 400, false: 1000}[day == 0] }},
		nightly{db: "db2", days: 3})
	for _, a := range c.Archives {
		if a.Name.Database == "db1" && now.Sub(a.Name.Created) > 20*24*time.Hour && now.Sub(a.Name.Created) < 21*24*time.Hour {
			a.Trust, a.TrustErr = catalog.TrustUntrusted, errors.New("no valid signature by a trusted key")
		}
	}
	in := input(c, 26*time.Hour)
	in.Metrics = &metrics.Snapshot{
		Drills:  map[string]metrics.Drill{"db1": {LastRun: now.Add(-time.Hour), OK: false, Duration: 90 * time.Second, Checks: 3, Failed: 1}},
		Backlog: map[string]metrics.Backlog{"db2": {Archives: 2, Bytes: 2048, MaxBytes: 1 << 30}},
	}
	r := Build(in)
	if r.OK || r.ExitStatus != 1 || !strings.HasPrefix(r.Summary, "UNTRUSTED") {
		t.Fatalf("verdict: ok %v exit %d %q", r.OK, r.ExitStatus, r.Summary)
	}
	if v := status.Judge(in.Status, nil); v.Summary != r.Summary || v.ExitStatus() != r.ExitStatus {
		t.Fatalf("report %q/%d, status %q/%d", r.Summary, r.ExitStatus, v.Summary, v.ExitStatus())
	}
	if len(r.Dates) != DefaultDays || r.Dates[len(r.Dates)-1] != "2026-12-04" || r.Dates[0] != "2026-10-31" {
		t.Fatalf("dates %v", r.Dates)
	}
	db1 := r.Databases[0]
	if db1.Database != "db1" || len(db1.Timeline) != 2 || len(db1.Timeline[1].Cells) != DefaultDays {
		t.Fatalf("timeline: %+v", db1.Timeline)
	}
	// Day 10 back is the 25th cell (index 24); minio-b misses it, minio-a has it.
	if got := db1.Timeline[1].Cells[DefaultDays-1-10]; len(got) != 1 || got[0].State != "missing" {
		t.Fatalf("minio-b 10 days back: %+v", got)
	}
	if got := db1.Timeline[0].Cells[DefaultDays-1-10]; len(got) != 1 || got[0].State != "ok" {
		t.Fatalf("minio-a 10 days back: %+v", got)
	}
	if got := db1.Timeline[0].Cells[DefaultDays-1-20]; len(got) != 1 || got[0].State != "untrusted" {
		t.Fatalf("20 days back: %+v", got)
	}
	if len(db1.MissingCopies) != 1 || db1.MissingCopies[0].Upstream != "minio-b" || db1.MissingCopies[0].Archives != 7 {
		t.Fatalf("missing copies: %+v", db1.MissingCopies)
	}
	if len(db1.Suspects) != 1 || !strings.Contains(db1.Suspects[0].Why, "UNTRUSTED") {
		t.Fatalf("suspects: %+v", db1.Suspects)
	}
	if s := db1.Size; s == nil || s.Newest != 400 || s.Median != 1000 || !s.Drop {
		t.Fatalf("size trend: %+v", s)
	}
	if db1.Drill == nil || db1.Drill.Passed || db1.Drill.ChecksFailed != 1 || db1.Backlog != nil {
		t.Fatalf("drill %+v backlog %+v", db1.Drill, db1.Backlog)
	}
	if db2 := r.Databases[1]; db2.Backlog == nil || db2.Backlog.Archives != 2 || len(db2.MissingCopies) != 0 || db2.Size.Change != nil && *db2.Size.Change != 0 {
		t.Fatalf("db2: %+v", db2)
	}

	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{
		`class="verdict bad"`, `data-exit-status="1"`, "minio-b lacks 7 archives",
		db1.Suspects[0].Archive, "FAILED", "1 failed", "a sudden drop", "2 archives (2.0 KiB) waiting",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestPageSelfContained: nothing on the page loads from elsewhere, and text
// from the store (here a trust error an attacker could word) is escaped:
// the page's elements, as an HTML parser sees them, are only the
// template's.
func TestPageSelfContained(t *testing.T) {
	c := build(t, []string{"a", "b"}, nightly{db: "db1", days: 5})
	c.Archives[0].Trust = catalog.TrustUntrusted
	c.Archives[0].TrustErr = errors.New(`"><script src="https://evil.example/x.js"></script><img src=x onerror=alert(1)>`)
	var page bytes.Buffer
	if err := Build(input(c, 0)).HTML(&page); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"html": true, "head": true, "meta": true, "title": true, "style": true, "body": true,
		"header": true, "div": true, "h1": true, "h2": true, "h3": true, "p": true, "ul": true, "li": true, "code": true,
		"main": true, "nav": true, "a": true, "section": true, "span": true, "dl": true, "dt": true, "dd": true,
		"table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true, "br": true, "figure": true,
		"svg": true, "polyline": true, "circle": true, "footer": true}
	z := html.NewTokenizer(bytes.NewReader(page.Bytes()))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			if tt == html.TextToken && strings.Contains(strings.ToLower(string(z.Text())), "url(") {
				t.Errorf("text or style with url(): %.80s", z.Text())
			}
			continue
		}
		tok := z.Token()
		if !allowed[tok.Data] {
			t.Errorf("element <%s> on the page", tok.Data)
		}
		for _, a := range tok.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "style" ||
				(a.Key == "href" && !strings.HasPrefix(a.Val, "#")) {
				t.Errorf("<%s %s=%q>", tok.Data, a.Key, a.Val)
			}
		}
	}
	if !strings.Contains(page.String(), "&lt;script") {
		t.Error("the trust error is not on the page, escaped")
	}
}

func TestHealthyAndEmpty(t *testing.T) {
	c := build(t, []string{"a", "b"}, nightly{db: "db1", days: 10})
	r := Build(input(c, 26*time.Hour))
	if !r.OK || r.ExitStatus != 0 || len(r.Problems) != 0 || !strings.HasPrefix(r.Summary, "OK") {
		t.Fatalf("healthy: %+v", r)
	}
	if d := r.Databases[0]; d.Newest == nil || d.AgeSeconds != 9*3600 || d.MaxAgeSeconds != 26*3600 || d.Archives != 10 {
		t.Fatalf("db1: %+v", d)
	}
	// Nothing archived: status fails, so does the report.
	empty := catalog.Assemble("", []string{"a"}, [][]catalog.Object{nil}, []error{nil})
	r = Build(input(empty, 0))
	if r.OK || r.ExitStatus != 1 {
		t.Fatalf("empty: %+v", r)
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := r.JSON(&js); err != nil || !strings.Contains(js.String(), `"exit_status": 1`) {
		t.Fatalf("json %v: %s", err, js.String())
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want int64
	}{{nil, 0}, {[]int64{5}, 5}, {[]int64{9, 1, 5}, 5}, {[]int64{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestFloodedStore: a store holding hundreds of forged archives, each with
// a long error, makes a page of bounded length; report.json keeps them all.
func TestFloodedStore(t *testing.T) {
	c := build(t, []string{"a", "b"}, nightly{db: "db1", days: 300})
	long := errors.New(strings.Repeat("forged by someone who writes at length ", 100))
	for _, a := range c.Archives[1:] {
		a.Trust, a.TrustErr = catalog.TrustUntrusted, long
	}
	r := Build(input(c, 26*time.Hour))
	if len(r.Databases[0].Suspects) != 299 {
		t.Fatalf("%d suspects in the report, want 299", len(r.Databases[0].Suspects))
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	if n := strings.Count(html, `<li data-archive=`); n != Shown {
		t.Errorf("%d suspects listed on the page, want %d", n, Shown)
	}
	if !strings.Contains(html, "… and 249 more in report.json") || !strings.Contains(html, "clipped; report.json has it whole") {
		t.Error("the page does not say what it left out")
	}
	// 50 clipped suspects and the clipped status details: well under the
	// 300 x 4 KB the store's words would take.
	if len(html) > 200_000 {
		t.Errorf("the page is %d bytes", len(html))
	}
}
