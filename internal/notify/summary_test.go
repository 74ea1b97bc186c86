package notify

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
)

// testCatalog: three upstreams (a complete, b missing the newest db1
// archive, c unlisted); db1 archived twice in the window and once before
// it, db2 archived before it only, db3 archived in the window.
func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	key := func(db string, at time.Time) string {
		n, err := naming.New(db, at, ".gz")
		if err != nil {
			t.Fatal(err)
		}
		return n.Key("p")
	}
	hour := time.Hour
	arch := map[string]int64{ // key -> ciphertext size
		key("db1", now.Add(-1*hour)):  1000,
		key("db1", now.Add(-23*hour)): 2000,
		key("db1", now.Add(-25*hour)): 4000, // outside the window
		key("db2", now.Add(-48*hour)): 8000,
		key("db3", now.Add(-2*hour)):  3 << 20,
	}
	var a, b []catalog.Object
	for k, size := range arch {
		objs := []catalog.Object{{Key: k, Size: size}, {Key: k + naming.ManifestSuffix, Size: 1}}
		a = append(a, objs...)
		if k != key("db1", now.Add(-1*hour)) {
			b = append(b, objs...)
		}
	}
	cat := catalog.Assemble("p", []string{"minio-a:a", "minio-b:b", "dead:c"}, [][]catalog.Object{a, b, nil},
		[]error{nil, nil, errors.New("connection refused")})
	for _, ar := range cat.Archives {
		ar.Manifest = &manifest.Manifest{Ciphertext: manifest.Blob{Size: arch[ar.Key]}}
	}
	return cat
}

func TestSummarize(t *testing.T) {
	d := Summarize(testCatalog(t), now, 24*time.Hour)
	if !d.Since.Equal(now.Add(-24*time.Hour)) || !d.Until.Equal(now) {
		t.Errorf("window %s - %s", d.Since, d.Until)
	}
	if !reflect.DeepEqual(d.Databases, []string{"db1", "db2", "db3"}) || !reflect.DeepEqual(d.Stale, []string{"db2"}) {
		t.Errorf("databases %v, stale %v", d.Databases, d.Stale)
	}
	if len(d.Upstreams) != 3 {
		t.Fatalf("upstreams: %+v", d.Upstreams)
	}
	a, b, c := d.Upstreams[0], d.Upstreams[1], d.Upstreams[2]
	wantA := []DatabaseDigest{
		{Database: "db1", Archives: 2, Bytes: 3000, Newest: now.Add(-time.Hour)},
		{Database: "db3", Archives: 1, Bytes: 3 << 20, Newest: now.Add(-2 * time.Hour)},
	}
	if a.Archives != 3 || a.Bytes != 3000+3<<20 || !reflect.DeepEqual(a.Databases, wantA) ||
		!reflect.DeepEqual(a.Missing, []string{"db2"}) || a.Incomplete != 0 || a.Error != "" {
		t.Errorf("minio-a: %+v", a)
	}
	if b.Archives != 2 || b.Bytes != 2000+3<<20 || b.Incomplete != 1 || !reflect.DeepEqual(b.Missing, []string{"db2"}) {
		t.Errorf("minio-b lacks db1's newest: %+v", b)
	}
	if c.Error != "connection refused" || c.Archives != 0 || c.Incomplete != 0 || len(c.Databases) != 0 {
		t.Errorf("dead: %+v", c)
	}
	if !reflect.DeepEqual(d.failedUpstreams(), []string{"minio-a:a", "minio-b:b", "dead:c"}) || !d.Trouble() {
		t.Errorf("failed upstreams %v (all miss db2)", d.failedUpstreams())
	}
}

func TestSummaryNotice(t *testing.T) {
	d := Summarize(testCatalog(t), now, 24*time.Hour)
	d.Backlog = &Backlog{Archives: 2, Bytes: 5 << 20, Databases: []BacklogDatabase{{Database: "db3", Archives: 1, Bytes: 1 << 20}, {Database: "db1", Archives: 1, Bytes: 4 << 20}}}
	SortBacklog(d.Backlog)
	n := SummaryNotice("pg1", now, "", d)
	text := SlackText(n)
	for _, want := range []string{
		":warning: *pgarchive summary* for `pg1`: archives created 2026-04-30 03:20Z – 2026-05-01 03:20Z",
		"*No new archive anywhere:* `db2`",
		"• `minio-a:a`: 3 archives, 3.0 MiB (db1 ×2, db3 ×1); *nothing from* `db2`",
		"• `minio-b:b`: 2 archives, 3.0 MiB (db1 ×1, db3 ×1); *nothing from* `db2`; *1 archive incomplete or missing here*",
		"• `dead:c`: could not be listed: connection refused",
		"*Backlog:* 2 archives, 5.0 MiB waiting for upload (db1 ×1, db3 ×1)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	body, err := Body(n, FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	var back Notice
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	if back.Event != Summary || back.Summary == nil || back.Summary.Upstreams[1].Incomplete != 1 || back.Summary.Backlog.Bytes != 5<<20 {
		t.Errorf("JSON summary: %s", body)
	}

	quiet := &Digest{Since: now.Add(-24 * time.Hour), Until: now, Databases: []string{"db1"}, Stale: []string{},
		Upstreams: []UpstreamDigest{{Name: "u", Archives: 1, Bytes: 10, Databases: []DatabaseDigest{{Database: "db1", Archives: 1, Bytes: 10}}, Missing: []string{}}},
		Backlog:   &Backlog{Databases: []BacklogDatabase{}}}
	if text := SlackText(SummaryNotice("pg1", now, "", quiet)); !strings.HasPrefix(text, ":white_check_mark:") || !strings.Contains(text, "*Backlog:* empty") {
		t.Errorf("a quiet day: %s", text)
	}
}
