package status

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// copyKind is what one upstream holds of one archive.
type copyKind int

const (
	none         copyKind = iota
	full                  // data of the manifest's size and the manifest
	dataOnly              // a failed or running upload
	manifestOnly          // half pruned
	wrongSize
)

// arc describes one archive for a test catalog.
type arc struct {
	db     string
	age    time.Duration // before now
	copies []copyKind    // per upstream
	badMan bool          // no readable manifest anywhere
}

// build assembles a real catalog from listings, as Scan would.
func build(t testing.TB, ups []string, down []bool, arcs []arc) *catalog.Catalog {
	t.Helper()
	listings := make([][]catalog.Object, len(ups))
	errs := make([]error, len(ups))
	seqs := map[string]int{}
	for _, a := range arcs {
		n, err := naming.New(a.db, now.Add(-a.age), ".gz")
		if err != nil {
			t.Fatal(err)
		}
		n.Seq = seqs[n.Key("")]
		seqs[n.Key("")]++
		key := n.Key("")
		for i, k := range a.copies {
			data := catalog.Object{Key: key, Size: 100}
			man := catalog.Object{Key: key + naming.ManifestSuffix, Size: 1}
			switch k {
			case full:
				listings[i] = append(listings[i], data, man)
			case dataOnly:
				listings[i] = append(listings[i], data)
			case manifestOnly:
				listings[i] = append(listings[i], man)
			case wrongSize:
				data.Size = 99
				listings[i] = append(listings[i], data, man)
			}
		}
	}
	for i := range ups {
		if down != nil && down[i] {
			listings[i], errs[i] = nil, fmt.Errorf("%s: connection refused", ups[i])
		}
	}
	c := catalog.Assemble("", ups, listings, errs)
	bad := map[string]bool{}
	seqs = map[string]int{}
	for _, a := range arcs {
		n, _ := naming.New(a.db, now.Add(-a.age), ".gz")
		n.Seq = seqs[n.Key("")]
		seqs[n.Key("")]++
		bad[n.Key("")] = a.badMan
	}
	for _, a := range c.Archives {
		if !bad[a.Key] {
			a.Manifest = &manifest.Manifest{Archive: a.Name.Base(), Ciphertext: manifest.Blob{Size: 100}}
		}
	}
	return c
}

func TestCheck(t *testing.T) {
	ups := []string{"minio-a:", "minio-b:", "/srv/local"}
	h := time.Hour
	type want struct {
		state    State
		age      time.Duration
		archives int
	}
	cases := []struct {
		name   string
		arcs   []arc
		down   []bool
		dbs    []string
		maxAge time.Duration
		want   map[string][]want // database -> per upstream
	}{
		{
			name: "fresh everywhere",
			arcs: []arc{{db: "db1", age: 2 * h, copies: []copyKind{full, full, full}}, {db: "db1", age: 26 * h, copies: []copyKind{full, full, full}}},
			want: map[string][]want{"db1": {{OK, 2 * h, 2}, {OK, 2 * h, 2}, {OK, 2 * h, 2}}},
		},
		{
			name:   "newest upload failed on one upstream: its newest complete copy is older",
			arcs:   []arc{{db: "db1", age: 2 * h, copies: []copyKind{full, dataOnly, full}}, {db: "db1", age: 26*h + 30*time.Minute, copies: []copyKind{full, full, full}}},
			maxAge: 26 * h,
			want:   map[string][]want{"db1": {{OK, 2 * h, 2}, {Stale, 26*h + 30*time.Minute, 1}, {OK, 2 * h, 2}}},
		},
		{
			name:   "incomplete kinds never count",
			arcs:   []arc{{db: "db1", age: h, copies: []copyKind{manifestOnly, wrongSize, none}}},
			maxAge: 26 * h,
			want:   map[string][]want{"db1": {{Missing, 0, 0}, {Missing, 0, 0}, {Missing, 0, 0}}},
		},
		{
			name: "no readable manifest: no complete copy anywhere",
			arcs: []arc{{db: "db1", age: h, copies: []copyKind{full, full, full}, badMan: true}},
			want: map[string][]want{"db1": {{Missing, 0, 0}, {Missing, 0, 0}, {Missing, 0, 0}}},
		},
		{
			name:   "an upstream that cannot be listed is unlisted for every database",
			arcs:   []arc{{db: "db1", age: h, copies: []copyKind{full, full, full}}, {db: "db2", age: 3 * h, copies: []copyKind{full, full, full}}},
			down:   []bool{false, true, false},
			maxAge: 26 * h,
			want: map[string][]want{
				"db1": {{OK, h, 1}, {Unlisted, 0, 0}, {OK, h, 1}},
				"db2": {{OK, 3 * h, 1}, {Unlisted, 0, 0}, {OK, 3 * h, 1}},
			},
		},
		{
			name:   "named databases: one without archives is missing everywhere, others are not checked",
			arcs:   []arc{{db: "db1", age: h, copies: []copyKind{full, full, full}}, {db: "db2", age: h, copies: []copyKind{full, full, full}}},
			dbs:    []string{"shop", "db1", "shop"},
			maxAge: 26 * h,
			want: map[string][]want{
				"db1":  {{OK, h, 1}, {OK, h, 1}, {OK, h, 1}},
				"shop": {{Missing, 0, 0}, {Missing, 0, 0}, {Missing, 0, 0}},
			},
		},
		{
			name:   "max age 0 judges presence only",
			arcs:   []arc{{db: "db1", age: 400 * 24 * h, copies: []copyKind{full, none, full}}},
			maxAge: 0,
			want:   map[string][]want{"db1": {{OK, 400 * 24 * h, 1}, {Missing, 0, 0}, {OK, 400 * 24 * h, 1}}},
		},
		{
			name:   "exactly max age is still OK, a second more is stale",
			arcs:   []arc{{db: "a", age: 26 * h, copies: []copyKind{full, none, none}}, {db: "b", age: 26*h + time.Second, copies: []copyKind{full, none, none}}},
			maxAge: 26 * h,
			want: map[string][]want{
				"a": {{OK, 26 * h, 1}, {Missing, 0, 0}, {Missing, 0, 0}},
				"b": {{Stale, 26*h + time.Second, 1}, {Missing, 0, 0}, {Missing, 0, 0}},
			},
		},
		{
			name:   "an archive named in the future (skewed clock) is fresh",
			arcs:   []arc{{db: "db1", age: -h, copies: []copyKind{full, full, full}}},
			maxAge: 26 * h,
			want:   map[string][]want{"db1": {{OK, -h, 1}, {OK, -h, 1}, {OK, -h, 1}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := build(t, ups, tc.down, tc.arcs)
			r := Check(c, tc.dbs, now, tc.maxAge)
			checkInvariants(t, c, tc.dbs, r)
			if got, want := len(r.Entries), len(tc.want)*len(ups); got != want {
				t.Fatalf("%d entries, want %d", got, want)
			}
			allOK := true
			for _, e := range r.Entries {
				w := tc.want[e.Database][indexOf(ups, e.Upstream)]
				if e.State != w.state || e.Age != w.age || e.Archives != w.archives {
					t.Errorf("%s on %s: %s age %v, %d archives; want %s age %v, %d", e.Database, e.Upstream, e.State, e.Age, e.Archives, w.state, w.age, w.archives)
				}
				if (e.State == Unlisted) != (e.Err != nil) {
					t.Errorf("%s on %s: %s with error %v", e.Database, e.Upstream, e.State, e.Err)
				}
				allOK = allOK && w.state == OK
			}
			if r.OK() != allOK {
				t.Errorf("OK() = %v, want %v", r.OK(), allOK)
			}
			sum := r.Summary()
			if allOK != strings.HasPrefix(sum, "OK: ") {
				t.Errorf("summary %q", sum)
			}
		})
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func TestEmpty(t *testing.T) {
	c := build(t, []string{"a"}, nil, nil)
	r := Check(c, nil, now, time.Hour)
	if r.OK() || len(r.Entries) != 0 || !strings.HasPrefix(r.Summary(), "MISSING") {
		t.Errorf("an empty remote checked for nothing must not pass: OK=%v %q", r.OK(), r.Summary())
	}
}

func TestSummary(t *testing.T) {
	ups := []string{"a", "b"}
	c := build(t, ups, []bool{false, true}, []arc{{db: "db1", age: 30 * time.Hour, copies: []copyKind{full, full}}})
	got := Check(c, []string{"db1", "db2"}, now, 26*time.Hour).Summary()
	want := "MISSING: 1 missing, 2 unlisted, 1 stale of 4 (db1 on a: newest is 1d6h old, over 1d2h; " +
		"db1 on b: could not list: b: connection refused; db2 on a: no complete archive; db2 on b: could not list: b: connection refused)"
	if got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
	c = build(t, ups, nil, []arc{{db: "db1", age: time.Hour, copies: []copyKind{full, full}}})
	if got := Check(c, nil, now, 26*time.Hour).Summary(); got != "OK: 1 database on 2 upstreams, newest archives within 1d2h" {
		t.Errorf("summary %q", got)
	}
	var many []string
	for i := range 8 {
		many = append(many, fmt.Sprintf("d%d", i))
	}
	if got := Check(c, many, now, 0).Summary(); !strings.HasSuffix(got, "; 11 more)") {
		t.Errorf("a long summary must be cut: %q", got)
	}
}

func TestHumanAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 999 * time.Millisecond: "0s", 45 * time.Second: "45s", time.Minute: "1m", 12*time.Minute + 5*time.Second: "12m5s",
		time.Hour: "1h", 3*time.Hour + 12*time.Minute + 59*time.Second: "3h12m", 26 * time.Hour: "1d2h", 48 * time.Hour: "2d",
		400*24*time.Hour + time.Hour: "400d1h", -90 * time.Second: "-1m30s",
	} {
		if got := HumanAge(d); got != want {
			t.Errorf("HumanAge(%v) = %q, want %q", d, got, want)
		}
	}
}

// checkInvariants holds for every catalog: the properties the monitoring
// check relies on, stated without the code's own loop.
func checkInvariants(t testing.TB, c *catalog.Catalog, named []string, r Report) {
	t.Helper()
	want := map[string]bool{}
	for _, db := range named {
		want[db] = true
	}
	if len(named) == 0 {
		for _, db := range c.Databases() {
			want[db] = true
		}
	}
	if len(r.Entries) != len(want)*len(c.Upstreams) {
		t.Fatalf("%d entries for %d databases on %d upstreams", len(r.Entries), len(want), len(c.Upstreams))
	}
	for k, e := range r.Entries {
		i := k % len(c.Upstreams)
		if e.Upstream != c.Upstreams[i] || !want[e.Database] {
			t.Fatalf("entry %d is %s on %s", k, e.Database, e.Upstream)
		}
		if k > 0 && r.Entries[k-1].Database > e.Database {
			t.Fatal("entries not sorted by database")
		}
		if (c.ListErrs[i] != nil) != (e.State == Unlisted) {
			t.Fatalf("%s on %s: %s, list error %v", e.Database, e.Upstream, e.State, c.ListErrs[i])
		}
		if e.State == Unlisted {
			continue
		}
		var newest *catalog.Archive
		n := 0
		for _, a := range c.Archives {
			if a.Name.Database == e.Database && a.State(i) == catalog.Complete {
				n++
				if newest == nil || naming.Less(newest.Name, a.Name) {
					newest = a
				}
			}
		}
		if n != e.Archives || newest != e.Newest {
			t.Fatalf("%s on %s: %d archives, newest %v; want %d, %v", e.Database, e.Upstream, e.Archives, e.Newest, n, newest)
		}
		if (newest == nil) != (e.State == Missing) {
			t.Fatalf("%s on %s: %s with newest %v", e.Database, e.Upstream, e.State, newest)
		}
		if newest != nil {
			if e.Age != r.Now.Sub(newest.Name.Created) {
				t.Fatalf("age %v is not from the name %s", e.Age, newest.Name.Base())
			}
			if stale := r.MaxAge > 0 && e.Age > r.MaxAge; stale != (e.State == Stale) {
				t.Fatalf("%s on %s: %s at age %v, max %v", e.Database, e.Upstream, e.State, e.Age, r.MaxAge)
			}
		}
	}
	allOK := len(r.Entries) > 0
	for _, e := range r.Entries {
		allOK = allOK && e.State == OK
	}
	if r.OK() != allOK {
		t.Fatalf("OK() = %v with entries %v", r.OK(), r.Counts())
	}
}

// randomCatalog draws a history from src: up to 3 upstreams (some down),
// up to 3 databases, archives of every copy kind over a month.
func randomCatalog(t testing.TB, src func(n int) int) (*catalog.Catalog, []string, time.Duration) {
	nu := 1 + src(3)
	ups := []string{"a:", "b:", "/c"}[:nu]
	down := make([]bool, nu)
	for i := range down {
		down[i] = src(6) == 0
	}
	var arcs []arc
	for range src(12) {
		a := arc{db: []string{"db1", "db2", "x"}[src(3)], age: time.Duration(src(30*24)-24) * time.Hour, badMan: src(10) == 0}
		for range nu {
			a.copies = append(a.copies, copyKind(src(5)))
		}
		arcs = append(arcs, a)
	}
	var named []string
	for range src(3) {
		named = append(named, []string{"db1", "db2", "shop"}[src(3)])
	}
	return build(t, ups, down, arcs), named, time.Duration(src(4)*24) * time.Hour
}

func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	src := func(n int) int { return rng.IntN(n) }
	for range 2000 {
		c, named, maxAge := randomCatalog(t, src)
		r := Check(c, named, now, maxAge)
		checkInvariants(t, c, named, r)
		// Monotone: a looser limit never makes anything worse, a later
		// clock never makes anything better.
		looser := Check(c, named, now, maxAge+time.Hour)
		later := Check(c, named, now.Add(time.Hour), maxAge)
		for k, e := range r.Entries {
			if e.State == OK && maxAge > 0 && looser.Entries[k].State != OK {
				t.Fatalf("raising --max-age turned %s on %s from OK to %s", e.Database, e.Upstream, looser.Entries[k].State)
			}
			if e.State != OK && later.Entries[k].State == OK {
				t.Fatalf("time passing turned %s on %s from %s to OK", e.Database, e.Upstream, e.State)
			}
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte{2, 0, 1, 5, 0, 7, 1, 1, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		i := 0
		src := func(n int) int {
			if i >= len(b) {
				return 0
			}
			i++
			return int(b[i-1]) % n
		}
		c, named, maxAge := randomCatalog(t, src)
		checkInvariants(t, c, named, Check(c, named, now, maxAge))
	})
}

// TestSuspects: an untrusted archive makes its upstreams UNTRUSTED and a
// future-dated one FUTURE, whatever else is fresh; neither counts as the
// newest archive or toward the count.
func TestSuspects(t *testing.T) {
	ups := []string{"a", "b"}
	c := build(t, ups, nil, []arc{
		{db: "db1", age: 30 * time.Hour, copies: []copyKind{full, full}},   // genuine, stale
		{db: "db1", age: time.Hour, copies: []copyKind{full, none}},        // forged, looks fresh
		{db: "db1", age: -100 * time.Hour, copies: []copyKind{none, full}}, // named in the future
	})
	for _, a := range c.Archives {
		if a.Name.Created.Equal(now.Add(-time.Hour)) {
			a.Trust, a.TrustErr = catalog.TrustUntrusted, fmt.Errorf("a: no signature")
		}
	}
	c.Judge(catalog.Policy{Now: now, MaxSkew: 10 * time.Minute})
	r := Check(c, nil, now, 26*time.Hour)
	if r.OK() {
		t.Fatal("a report with suspect archives is OK")
	}
	a, b := r.Entries[0], r.Entries[1]
	if a.State != Untrusted || !strings.Contains(a.Detail(r.MaxAge), "UNTRUSTED (a: no signature)") {
		t.Errorf("upstream a: %s %q", a.State, a.Detail(r.MaxAge))
	}
	if b.State != Future || !strings.Contains(b.Detail(r.MaxAge), "FUTURE") {
		t.Errorf("upstream b: %s %q", b.State, b.Detail(r.MaxAge))
	}
	for _, e := range r.Entries {
		if e.Archives != 1 || e.Newest == nil || e.Age != 30*time.Hour {
			t.Errorf("%s: %d archives, newest %v at %v: only the genuine one counts", e.Upstream, e.Archives, e.Newest, e.Age)
		}
	}
	if s := r.Summary(); !strings.HasPrefix(s, "UNTRUSTED: 1 untrusted, 1 future of 2") {
		t.Errorf("summary %q", s)
	}
}

// TestDetailNamesAFewSuspects: thousands of forged archives on an upstream
// make a summary line of bounded length that still names some of them.
func TestDetailNamesAFewSuspects(t *testing.T) {
	var arcs []arc
	for i := 0; i < 2000; i++ {
		arcs = append(arcs, arc{db: "db1", age: time.Duration(i+1) * time.Minute, copies: []copyKind{full}})
	}
	c := build(t, []string{"minio-a:"}, nil, arcs)
	for _, a := range c.Archives {
		a.Trust = catalog.TrustUntrusted
	}
	r := Check(c, nil, now, 26*time.Hour)
	s := r.Summary()
	if !strings.HasPrefix(s, "UNTRUSTED") || !strings.Contains(s, "and 1997 more (pgarchive list)") || len(s) > 2000 {
		t.Fatalf("summary of %d bytes: %.300s", len(s), s)
	}
}
