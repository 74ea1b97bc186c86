package notify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// Digest is the daily summary: per upstream, what was archived in the
// window, and the local backlog.
type Digest struct {
	Since     time.Time        `json:"since"`
	Until     time.Time        `json:"until"`
	Databases []string         `json:"databases"`       // every database with an archive on some upstream
	Stale     []string         `json:"stale_databases"` // of those, the ones with no complete copy anywhere in the window
	Upstreams []UpstreamDigest `json:"upstreams"`
	Backlog   *Backlog         `json:"backlog"` // null when pgarchive keeps no backlog (no --state-dir)
	Error     string           `json:"error"`   // why the digest is incomplete; "" when it is not
}

// UpstreamDigest is one upstream's share of the window.
type UpstreamDigest struct {
	Name      string           `json:"name"`
	Archives  int              `json:"archives"` // complete copies of archives created in the window
	Bytes     int64            `json:"bytes"`    // their ciphertext size, from the manifests
	Databases []DatabaseDigest `json:"databases"`
	// Missing lists the known databases this upstream holds no complete
	// copy of from the window.
	Missing []string `json:"missing_databases"`
	// Incomplete counts archives of the window that exist elsewhere but not
	// completely here.
	Incomplete int    `json:"incomplete"`
	Error      string `json:"error"` // the listing error when it could not be listed
}

// DatabaseDigest is one database's complete copies on one upstream.
type DatabaseDigest struct {
	Database string    `json:"database"`
	Archives int       `json:"archives"`
	Bytes    int64     `json:"bytes"`
	Newest   time.Time `json:"newest"` // creation time of the newest, from its name
}

// Backlog is the local backlog: archives kept for upstreams that did not
// take them yet.
type Backlog struct {
	Archives  int               `json:"archives"`
	Bytes     int64             `json:"bytes"`
	Oldest    *time.Time        `json:"oldest"` // creation time of the oldest archive held; null when empty
	Databases []BacklogDatabase `json:"databases"`
	Error     string            `json:"error"` // the backlog could not be read
}

// BacklogDatabase is one database's part of the backlog.
type BacklogDatabase struct {
	Database string    `json:"database"`
	Archives int       `json:"archives"`
	Bytes    int64     `json:"bytes"`
	Oldest   time.Time `json:"oldest"`
}

// Summarize counts, per upstream, the complete copies of archives created
// (by the time in their names) in (until-window, until]; archives dated in
// the future, from a skewed clock, count too.
func Summarize(cat *catalog.Catalog, until time.Time, window time.Duration) *Digest {
	since := until.Add(-window)
	d := &Digest{Since: since.UTC(), Until: until.UTC(), Databases: cat.Databases(), Stale: []string{}}
	if d.Databases == nil {
		d.Databases = []string{}
	}
	fresh := map[string]bool{} // databases with a complete copy somewhere in the window
	for i, name := range cat.Upstreams {
		u := UpstreamDigest{Name: name, Databases: []DatabaseDigest{}, Missing: []string{}}
		if i < len(cat.ListErrs) && cat.ListErrs[i] != nil {
			u.Error = cat.ListErrs[i].Error()
		}
		per := map[string]*DatabaseDigest{}
		for _, a := range cat.Archives {
			if !a.Name.Created.After(since) {
				continue
			}
			if a.State(i) != catalog.Complete {
				if u.Error == "" {
					u.Incomplete++
				}
				continue
			}
			db := a.Name.Database
			fresh[db] = true
			p := per[db]
			if p == nil {
				p = &DatabaseDigest{Database: db}
				per[db] = p
			}
			p.Archives++
			p.Bytes += a.Manifest.Ciphertext.Size
			if a.Name.Created.After(p.Newest) {
				p.Newest = a.Name.Created.UTC()
			}
			u.Archives++
			u.Bytes += a.Manifest.Ciphertext.Size
		}
		for _, db := range d.Databases {
			if p := per[db]; p != nil {
				u.Databases = append(u.Databases, *p)
			} else {
				u.Missing = append(u.Missing, db)
			}
		}
		d.Upstreams = append(d.Upstreams, u)
	}
	for _, db := range d.Databases {
		if !fresh[db] {
			d.Stale = append(d.Stale, db)
		}
	}
	return d
}

// failedUpstreams names the upstreams a summary should worry about: those
// that could not be listed or lack a complete copy from the window.
func (d *Digest) failedUpstreams() []string {
	out := []string{}
	for _, u := range d.Upstreams {
		if u.Error != "" || u.Incomplete > 0 || len(u.Missing) > 0 {
			out = append(out, u.Name)
		}
	}
	return out
}

// Trouble reports whether the summary has something to worry about.
func (d *Digest) Trouble() bool {
	return d.Error != "" || len(d.Stale) > 0 || len(d.failedUpstreams()) > 0 || (d.Backlog != nil && (d.Backlog.Archives > 0 || d.Backlog.Error != ""))
}

func slackSummary(n *Notice) string {
	d := n.Summary
	var b strings.Builder
	icon := ":white_check_mark:"
	if d.Trouble() {
		icon = ":warning:"
	}
	fmt.Fprintf(&b, "%s *pgarchive summary* for %s: archives created %s – %s",
		icon, code(n.Host), d.Since.Format("2006-01-02 15:04Z"), d.Until.Format("2006-01-02 15:04Z"))
	if d.Error != "" {
		fmt.Fprintf(&b, "\n*Error:* %s", esc(d.Error))
	}
	if len(d.Stale) > 0 {
		fmt.Fprintf(&b, "\n*No new archive anywhere:* %s", codes(d.Stale))
	}
	for _, u := range d.Upstreams {
		fmt.Fprintf(&b, "\n• %s: ", code(u.Name))
		if u.Error != "" {
			fmt.Fprintf(&b, "could not be listed: %s", esc(u.Error))
			continue
		}
		fmt.Fprintf(&b, "%s, %s", textfmt.Plural(u.Archives, "archive"), textfmt.Bytes(u.Bytes))
		if len(u.Databases) > 0 {
			parts := make([]string, len(u.Databases))
			for i, p := range u.Databases {
				parts[i] = fmt.Sprintf("%s ×%d", esc(p.Database), p.Archives)
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
		}
		if len(u.Missing) > 0 {
			fmt.Fprintf(&b, "; *nothing from* %s", codes(u.Missing))
		}
		if u.Incomplete > 0 {
			fmt.Fprintf(&b, "; *%s incomplete or missing here*", textfmt.Plural(u.Incomplete, "archive"))
		}
	}
	if len(d.Upstreams) == 0 && d.Error == "" {
		b.WriteString("\nNo upstreams.")
	}
	switch bl := d.Backlog; {
	case bl == nil:
	case bl.Error != "":
		fmt.Fprintf(&b, "\n*Backlog:* could not be read: %s", esc(bl.Error))
	case bl.Archives == 0:
		b.WriteString("\n*Backlog:* empty")
	default:
		parts := make([]string, len(bl.Databases))
		for i, p := range bl.Databases {
			parts[i] = fmt.Sprintf("%s ×%d", esc(p.Database), p.Archives)
		}
		fmt.Fprintf(&b, "\n*Backlog:* %s, %s waiting for upload (%s)", textfmt.Plural(bl.Archives, "archive"), textfmt.Bytes(bl.Bytes), strings.Join(parts, ", "))
	}
	return b.String()
}

// SortBacklog orders a backlog's databases by name.
func SortBacklog(b *Backlog) {
	sort.Slice(b.Databases, func(i, j int) bool { return b.Databases[i].Database < b.Databases[j].Database })
}
