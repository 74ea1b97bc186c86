package prune

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/retention"
)

const size = 500

var t0 = time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)

// copyKind is what one upstream holds of one archive.
type copyKind int

const (
	none     copyKind = iota
	complete          // data of the manifest's size and manifest
	dataOnly          // failed upload
	manOnly           // manifest without data
	short             // data of the wrong size and manifest
)

// fixture builds a catalog with the real assembly code: per archive, its
// age in hours before t0 and what each upstream holds.
func fixture(t *testing.T, upstreams int, archives map[int][]copyKind) *catalog.Catalog {
	t.Helper()
	names := make([]string, upstreams)
	listings := make([][]catalog.Object, upstreams)
	for i := range names {
		names[i] = fmt.Sprintf("up%d:bucket", i)
	}
	for age, kinds := range archives {
		n, err := naming.New("db1", t0.Add(-time.Duration(age)*time.Hour), ".gz")
		if err != nil {
			t.Fatal(err)
		}
		key := n.Key("pre")
		for i, k := range kinds {
			if k == complete || k == dataOnly || k == short {
				sz := int64(size)
				if k == short {
					sz--
				}
				listings[i] = append(listings[i], catalog.Object{Key: key, Size: sz})
			}
			if k == complete || k == manOnly || k == short {
				listings[i] = append(listings[i], catalog.Object{Key: key + naming.ManifestSuffix})
			}
		}
	}
	cat := catalog.Assemble("pre", names, listings, make([]error, upstreams))
	for _, a := range cat.Archives {
		a.Manifest = &manifest.Manifest{Ciphertext: manifest.Blob{Size: size}}
	}
	return cat
}

func key(age int) string {
	n, _ := naming.New("db1", t0.Add(-time.Duration(age)*time.Hour), ".gz")
	return n.Key("pre")
}

func TestItemsCompleteIfAnyUpstreamIs(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{
		1: {complete, complete},
		2: {dataOnly, complete},
		3: {dataOnly, dataOnly},
		4: {manOnly, none},
		5: {short, dataOnly},
	})
	got := map[string]bool{}
	for _, it := range Items(cat.Archives) {
		got[it.ID] = it.Complete
		if !it.Time.Equal(mustParse(t, it.ID).Created) {
			t.Errorf("%s: time %v is not the name's", it.ID, it.Time)
		}
	}
	want := map[string]bool{key(1): true, key(2): true, key(3): false, key(4): false, key(5): false}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("completeness %v, want %v", got, want)
	}
}

func mustParse(t *testing.T, k string) naming.Name {
	n, err := naming.Parse(k[strings.LastIndexByte(k, '/')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func planFor(t *testing.T, cat *catalog.Catalog, p retention.Policy) retention.Plan {
	t.Helper()
	plan, err := p.Plan(Items(cat.Archives), t0)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestRemovalsManifestsFirstOnlyListedObjects(t *testing.T) {
	cat := fixture(t, 3, map[int][]copyKind{
		1: {complete, complete, complete}, // kept: newest
		2: {complete, dataOnly, none},
		3: {manOnly, complete, dataOnly},
	})
	rs := Removals(planFor(t, cat, retention.Policy{Last: 1}), cat.Archives, []bool{true, true, true})
	if len(rs) != 2 || rs[0].Archive.Key != key(2) || rs[1].Archive.Key != key(3) {
		t.Fatalf("removals %+v", rs)
	}
	m := naming.ManifestSuffix
	check := func(r Removal, manifests, data []Target) {
		t.Helper()
		if !reflect.DeepEqual(r.Manifests, manifests) || !reflect.DeepEqual(r.Data, data) || r.LeftOn != nil {
			t.Errorf("%s: manifests %v data %v left %v; want %v then %v", r.Archive.Key, r.Manifests, r.Data, r.LeftOn, manifests, data)
		}
	}
	check(rs[0], []Target{{0, key(2) + m}}, []Target{{0, key(2)}, {1, key(2)}})
	check(rs[1], []Target{{0, key(3) + m}, {1, key(3) + m}}, []Target{{1, key(3)}, {2, key(3)}})
	if got := rs[0].Reasons; len(got) != 1 || got[0] != retention.ReasonNoPolicy {
		t.Errorf("reasons %v", got)
	}
	if got := Touched(rs); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Errorf("touched %v", got)
	}
	if got := Touched(rs[:1]); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Errorf("touched by the first %v", got)
	}
}

func TestRemovalsLeaveReadOnlyUpstreams(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{1: {complete, complete}, 2: {complete, complete}, 3: {none, complete}})
	rs := Removals(planFor(t, cat, retention.Policy{Last: 1}), cat.Archives, []bool{true, false})
	if len(rs) != 2 {
		t.Fatalf("removals %+v", rs)
	}
	if !reflect.DeepEqual(rs[0].LeftOn, []int{1}) || len(rs[0].Manifests) != 1 || rs[0].Manifests[0].Upstream != 0 {
		t.Errorf("read-only upstream 1 must be left alone: %+v", rs[0])
	}
	if rs[1].Manifests != nil || rs[1].Data != nil || !reflect.DeepEqual(rs[1].LeftOn, []int{1}) {
		t.Errorf("an archive only on a read-only upstream has nothing to delete: %+v", rs[1])
	}
	if got := Touched(rs); !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("touched %v, want only the writable upstream", got)
	}
}

func TestDataAfterKeepsDataWhereTheManifestStayed(t *testing.T) {
	r := Removal{Data: []Target{{0, "a"}, {1, "a"}, {2, "a"}}}
	if got := r.DataAfter(map[int]bool{1: true}); !reflect.DeepEqual(got, []Target{{0, "a"}, {2, "a"}}) {
		t.Errorf("DataAfter = %v", got)
	}
	if got := r.DataAfter(nil); len(got) != 3 {
		t.Errorf("DataAfter(nil) = %v", got)
	}
}

func TestKeptCopiesAndOfDatabase(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{1: {complete, dataOnly}, 2: {complete, complete}, 3: {complete, complete}})
	other, _ := naming.New("db2", t0, "")
	cat2 := catalog.Assemble("pre", cat.Upstreams, [][]catalog.Object{{{Key: other.Key("pre"), Size: 1}}, nil}, make([]error, 2))
	cat.Archives = append(cat.Archives, cat2.Archives...)
	db1 := OfDatabase(cat, "db1")
	if len(db1) != 3 {
		t.Fatalf("OfDatabase: %d archives", len(db1))
	}
	plan := planFor(t, &catalog.Catalog{Archives: db1}, retention.Policy{Last: 2})
	if got := KeptCopies(plan, db1, 2); !reflect.DeepEqual(got, []int{2, 1}) {
		t.Errorf("kept copies %v, want [2 1]", got)
	}
}

func TestRowsAndRecordDryRun(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{1: {complete, complete}, 2: {complete, none}, 3: {dataOnly, dataOnly}})
	plan := planFor(t, cat, retention.Policy{Last: 1})
	res := &Result{DryRun: true, Upstreams: cat.Upstreams, Databases: []Database{{Database: "db1", Archives: rows(plan),
		Upstreams: []UpstreamCount{{Upstream: "up0:bucket"}, {Upstream: "up1:bucket"}}}}}
	var work []job
	for _, r := range Removals(plan, cat.Archives, []bool{true, true}) {
		work = append(work, job{removal: r})
	}
	if failed := record(res, work); failed != 0 {
		t.Fatalf("a dry run cannot fail: %d", failed)
	}
	d := res.Databases[0]
	var order []string
	for _, a := range d.Archives {
		order = append(order, a.Action)
	}
	if !reflect.DeepEqual(order, []string{"keep", "remove", "remove"}) || d.Archives[0].Key != key(1) {
		t.Errorf("rows %+v", d.Archives)
	}
	if d.Removed != 2 || d.Upstreams[0].Removed != 2 || d.Upstreams[1].Removed != 1 {
		t.Errorf("counts %+v", d)
	}
}

func TestRecordFailures(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{1: {complete, complete}, 2: {complete, complete}, 3: {complete, complete}})
	plan := planFor(t, cat, retention.Policy{Last: 1})
	res := &Result{Upstreams: cat.Upstreams, Databases: []Database{{Database: "db1", Archives: rows(plan),
		Upstreams: []UpstreamCount{{Upstream: "up0:bucket"}, {Upstream: "up1:bucket"}}}}}
	rs := Removals(plan, cat.Archives, []bool{true, true})
	work := []job{
		{removal: rs[0], errs: map[int]error{1: fmt.Errorf("boom")}, done: []int{0}},
		{removal: rs[1], errs: map[int]error{}, done: []int{0, 1}},
	}
	if failed := record(res, work); failed != 1 {
		t.Fatalf("failed = %d", failed)
	}
	d := res.Databases[0]
	if d.Removed != 1 || d.Failed != 1 || d.Upstreams[0].Removed != 2 || d.Upstreams[1].Removed != 1 || d.Upstreams[1].Failed != 1 {
		t.Errorf("counts %+v", d)
	}
	row := d.Archives[1]
	if !reflect.DeepEqual(row.RemovedFrom, []string{"up0:bucket"}) || len(row.Errors) != 1 || !strings.Contains(row.Errors[0], "up1:bucket: boom") {
		t.Errorf("row %+v", row)
	}
	if s := res.Summary(); !strings.Contains(s, "removed 1") || !strings.Contains(s, "1 could not be removed") {
		t.Errorf("summary %q", s)
	}
}

func TestUnjudgedLeavesUnreadManifestsOut(t *testing.T) {
	cat := fixture(t, 2, map[int][]copyKind{1: {complete, complete}, 2: {complete, dataOnly}, 3: {dataOnly, none}, 4: {manOnly, none}})
	for _, a := range cat.Archives {
		if a.Key == key(2) {
			a.Manifest = nil // every GET of its manifest failed
		}
	}
	judged, unjudged := Unjudged(cat.Archives)
	if len(unjudged) != 1 || unjudged[0].Key != key(2) || len(judged) != 3 {
		t.Fatalf("judged %d, unjudged %+v", len(judged), unjudged)
	}
}

// TestSuspectsAreNeverCountedOrDeletedUnasked: a forged archive and a
// future-dated one stay out of the plan; --remove-untrusted removes only
// the untrusted one, with its signature.
func TestSuspectsAreNeverCountedOrDeletedUnasked(t *testing.T) {
	cat := fixture(t, 1, map[int][]copyKind{1: {complete}, 2: {complete}, -1000: {complete}})
	for _, a := range cat.Archives {
		a.Copies[0].HasSig = true
		if a.Key == key(1) {
			a.Trust = catalog.TrustUntrusted
		}
	}
	cat.Judge(catalog.Policy{Now: t0, MaxSkew: time.Minute})
	judged, suspects := Suspects(cat.Archives)
	if len(judged) != 1 || judged[0].Key != key(2) || len(suspects) != 2 {
		t.Fatalf("judged %v, suspects %v", judged, suspects)
	}
	plan, err := retention.Policy{Last: 1}.Plan(Items(judged), t0)
	if err != nil || len(plan.Keep) != 1 || plan.Keep[0].ID != key(2) {
		t.Fatalf("plan %+v, %v: the genuine archive must be kept", plan, err)
	}
	skipped, remove := judgeSuspects(suspects, false)
	if len(skipped) != 2 || len(remove) != 0 || skipped[0].Action != "skip" {
		t.Fatalf("without --remove-untrusted: skipped %+v, remove %+v", skipped, remove)
	}
	skipped, remove = judgeSuspects(suspects, true)
	if len(skipped) != 1 || skipped[0].Key != key(-1000) || len(remove) != 1 || remove[0].ID != key(1) {
		t.Fatalf("with --remove-untrusted: skipped %+v, remove %+v (a future archive is never deleted)", skipped, remove)
	}
	rs := Removals(retention.Plan{Remove: remove}, cat.Archives, []bool{true})
	if len(rs) != 1 || len(rs[0].Manifests) != 1 || len(rs[0].Data) != 2 || rs[0].Data[1].Key != key(1)+naming.SignatureSuffix {
		t.Fatalf("removal %+v: manifest first, then data and signature", rs)
	}
}
