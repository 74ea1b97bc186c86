package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/status"
)

// FuzzBuild: any catalog (archives of up to three databases at any age,
// future ones too, any copy state on up to three upstreams, untrusted ones)
// gives a report whose verdict is status's, whose timeline has a cell per
// day and upstream, and which renders as HTML and JSON.
func FuzzBuild(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(2), uint8(35))
	f.Add([]byte{200, 17, 3, 99, 4, 250, 1}, uint8(3), uint8(1))
	f.Add([]byte{}, uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, nUps, days uint8) {
		ups := []string{"a", "b", "c"}[:1+int(nUps)%3]
		listings := make([][]catalog.Object, len(ups))
		untrusted := map[string]bool{}
		sizes := map[string]int64{}
		for i := 0; i+2 < len(data) && i < 300; i += 3 {
			db := []string{"db1", "db2", "base-7390000000000000001-pg15"}[data[i]%3]
			age := time.Duration(int(data[i+1])-20) * 9 * time.Hour // some ahead of now
			n, err := naming.New(db, now.Add(-age), ".gz")
			if err != nil {
				t.Fatal(err)
			}
			key := n.Key("")
			untrusted[key] = data[i+2]&0x80 != 0
			sizes[key] = int64(data[i+2]) * 1000
			for u := range ups {
				switch (data[i+2] >> (2 * u)) & 3 {
				case 1:
					listings[u] = append(listings[u], catalog.Object{Key: key, Size: 100}, catalog.Object{Key: key + naming.ManifestSuffix, Size: 1})
				case 2:
					listings[u] = append(listings[u], catalog.Object{Key: key, Size: 100})
				case 3:
					listings[u] = append(listings[u], catalog.Object{Key: key + naming.ManifestSuffix, Size: 1})
				}
			}
		}
		errs := make([]error, len(ups))
		if nUps >= 128 {
			errs[0], listings[0] = errors.New("connection refused"), nil
		}
		c := catalog.Assemble("", ups, listings, errs)
		for _, a := range c.Archives {
			a.Manifest = &manifest.Manifest{Archive: a.Name.Base(), Ciphertext: manifest.Blob{Size: 100}, Dump: manifest.Dump{Size: sizes[a.Key]}}
			if untrusted[a.Key] {
				a.Trust, a.TrustErr = catalog.TrustUntrusted, errors.New("no valid signature")
			}
			a.Future = a.Name.Created.After(now.Add(5 * time.Minute))
		}
		st := status.Check(c, nil, now, 26*time.Hour)
		r := Build(Input{Now: now, Days: int(days), Catalog: c, Status: st})
		if v := status.Judge(st, nil); r.ExitStatus != v.ExitStatus() || r.Summary != v.Summary || r.OK != v.OK {
			t.Fatalf("report %v/%d %q, status %v/%d %q", r.OK, r.ExitStatus, r.Summary, v.OK, v.ExitStatus(), v.Summary)
		}
		if len(r.Dates) != r.Days || r.Days < 1 {
			t.Fatalf("%d dates for %d days", len(r.Dates), r.Days)
		}
		for _, d := range r.Databases {
			if len(d.Timeline) != len(ups) {
				t.Fatalf("%s: %d timeline rows for %d upstreams", d.Database, len(d.Timeline), len(ups))
			}
			for _, row := range d.Timeline {
				if len(row.Cells) != r.Days {
					t.Fatalf("%s on %s: %d cells for %d days", d.Database, row.Upstream, len(row.Cells), r.Days)
				}
			}
			missing := 0
			for _, m := range d.MissingCopies {
				missing += m.Archives
				if m.From.After(m.To) || m.Archives < 1 {
					t.Fatalf("missing run %+v", m)
				}
			}
			if missing > len(c.Archives)*len(ups) {
				t.Fatalf("%s: %d missing copies of %d archives", d.Database, missing, len(c.Archives))
			}
			if d.Newest != nil && d.Newest.Created.After(now.Add(5*time.Minute)) {
				t.Fatalf("%s: a future-dated newest archive %+v", d.Database, d.Newest)
			}
		}
		var page, js bytes.Buffer
		if err := r.HTML(&page); err != nil {
			t.Fatal(err)
		}
		if err := r.JSON(&js); err != nil || !json.Valid(js.Bytes()) {
			t.Fatalf("json: %v", err)
		}
	})
}
