package retention

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

const twoYears = 2 * 366 * 24 * time.Hour

// randomHistory spreads archives over two years before now, with bursts in
// one second (Seq), a few in the future (clock skew), and some incomplete.
func randomHistory(r *rand.Rand, now time.Time) []Item {
	n := r.Intn(120)
	items := make([]Item, 0, n)
	for i := 0; i < n; i++ {
		var t time.Time
		switch k := r.Intn(10); {
		case k == 0 && i > 0: // same second as an earlier one
			t = items[r.Intn(i)].Time
		case k == 1:
			t = now.Add(time.Duration(r.Int63n(int64(3 * time.Hour))))
		case k < 5: // dense recent part, so hourly and daily rules bite
			t = now.Add(-time.Duration(r.Int63n(int64(10 * 24 * time.Hour))))
		default:
			t = now.Add(-time.Duration(r.Int63n(int64(twoYears))))
		}
		items = append(items, Item{
			ID: fmt.Sprintf("a%03d", i), Time: t.Truncate(time.Second),
			Seq: r.Intn(3), Complete: r.Intn(8) != 0,
		})
	}
	return items
}

func randomPolicy(r *rand.Rand) Policy {
	c := func() int {
		switch k := r.Intn(10); {
		case k < 4:
			return 0
		case k == 4:
			return -1
		default:
			return r.Intn(12)
		}
	}
	var p Policy
	if r.Intn(8) != 0 { // else within only, where the newest-complete rule matters most
		p = Policy{Last: c(), Hourly: c(), Daily: c(), Weekly: c(), Monthly: c(), Yearly: c()}
	}
	if r.Intn(3) == 0 {
		p.Within = time.Duration(r.Int63n(int64(60 * 24 * time.Hour)))
	}
	if p == (Policy{}) {
		p.Within = time.Duration(1 + r.Int63n(int64(5*24*time.Hour)))
	}
	return p
}

func ids(ds []Decision) map[string]bool {
	m := map[string]bool{}
	for _, d := range ds {
		m[d.ID] = true
	}
	return m
}

// checkInvariants asserts what must hold for every plan of a valid policy.
func checkInvariants(t *testing.T, items []Item, p Policy, now time.Time) Plan {
	t.Helper()
	plan, err := p.Plan(items, now)
	if err != nil {
		t.Fatalf("%+v: %v", p, err)
	}
	keep, remove := ids(plan.Keep), ids(plan.Remove)
	if len(keep)+len(remove) != len(items) || len(keep) != len(plan.Keep) || len(remove) != len(plan.Remove) {
		t.Fatalf("%d kept + %d removed != %d items", len(plan.Keep), len(plan.Remove), len(items))
	}
	var newest *Item
	for i, it := range items {
		if keep[it.ID] == remove[it.ID] {
			t.Fatalf("%s: kept=%v removed=%v", it.ID, keep[it.ID], remove[it.ID])
		}
		if it.Complete && (newest == nil || Newer(it, *newest)) {
			newest = &items[i]
		}
	}
	if newest != nil && !keep[newest.ID] {
		t.Fatalf("newest complete archive %s removed", newest.ID)
	}
	for _, d := range append(append([]Decision(nil), plan.Keep...), plan.Remove...) {
		if len(d.Reasons) == 0 {
			t.Fatalf("%s decided without a reason", d.ID)
		}
	}
	// Re-planning over what survives must remove nothing, or every prune
	// run would eat further into the history.
	var kept []Item
	for _, d := range plan.Keep {
		kept = append(kept, d.Item)
	}
	again, err := p.Plan(kept, now)
	if err != nil || len(again.Remove) != 0 {
		t.Fatalf("%+v: re-plan removes %d (%v)", p, len(again.Remove), err)
	}
	return plan
}

// oracle computes the kept set from the rules' descriptions, without the
// single newest-first pass the implementation uses.
func oracle(items []Item, p Policy, now time.Time) map[string]bool {
	var complete []Item
	var newest *Item
	for i, it := range items {
		if it.Complete {
			complete = append(complete, it)
			if newest == nil || Newer(it, *newest) {
				newest = &items[i]
			}
		}
	}
	sort.Slice(complete, func(i, j int) bool { return Newer(complete[i], complete[j]) })
	keep := map[string]bool{}
	for i, it := range complete {
		if p.Last == -1 || i < p.Last {
			keep[it.ID] = true
		}
		if p.Within > 0 && it.Time.After(now.Add(-p.Within)) {
			keep[it.ID] = true
		}
	}
	periods := []struct {
		n   int
		key func(time.Time) [3]int
	}{
		{p.Hourly, func(t time.Time) [3]int { return [3]int{t.YearDay() + 1000*t.Year(), t.Hour()} }},
		{p.Daily, func(t time.Time) [3]int { return [3]int{t.Year(), t.YearDay()} }},
		{p.Weekly, func(t time.Time) [3]int { y, w := t.ISOWeek(); return [3]int{y, w} }},
		{p.Monthly, func(t time.Time) [3]int { return [3]int{t.Year(), int(t.Month())} }},
		{p.Yearly, func(t time.Time) [3]int { return [3]int{t.Year()} }},
	}
	for _, per := range periods {
		best := map[[3]int]Item{} // newest complete item per period
		for _, it := range complete {
			k := per.key(it.Time.UTC())
			if b, ok := best[k]; !ok || Newer(it, b) {
				best[k] = it
			}
		}
		var winners []Item
		for _, it := range best {
			winners = append(winners, it)
		}
		sort.Slice(winners, func(i, j int) bool { return Newer(winners[i], winners[j]) })
		for i, it := range winners {
			if per.n == -1 || i < per.n {
				keep[it.ID] = true
			}
		}
	}
	if newest != nil {
		keep[newest.ID] = true
	}
	for _, it := range items {
		if !it.Complete && (newest == nil || Newer(it, *newest)) {
			keep[it.ID] = true
		}
	}
	return keep
}

func checkOracle(t *testing.T, items []Item, p Policy, now time.Time, plan Plan) {
	t.Helper()
	want, got := oracle(items, p, now), ids(plan.Keep)
	for _, it := range items {
		if want[it.ID] != got[it.ID] {
			t.Fatalf("%+v: %s (%v): plan keeps=%v, oracle keeps=%v", p, it.ID, it.Time, got[it.ID], want[it.ID])
		}
	}
}

// grow returns p with one rule raised (or made unlimited).
func grow(r *rand.Rand, p Policy) Policy {
	fields := []*int{&p.Last, &p.Hourly, &p.Daily, &p.Weekly, &p.Monthly, &p.Yearly}
	switch k := r.Intn(len(fields) + 1); {
	case k == len(fields):
		p.Within += time.Duration(r.Int63n(int64(30 * 24 * time.Hour)))
	case *fields[k] != -1 && r.Intn(4) == 0:
		*fields[k] = -1
	case *fields[k] != -1:
		*fields[k] += 1 + r.Intn(5)
	}
	return p
}

func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewSource(20261121))
	now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	for i := 0; i < 3000; i++ {
		items, p := randomHistory(r, now), randomPolicy(r)
		plan := checkInvariants(t, items, p, now)
		checkOracle(t, items, p, now, plan)

		bigger := grow(r, p)
		more := checkInvariants(t, items, bigger, now)
		kept := ids(more.Keep)
		for _, d := range plan.Keep {
			if !kept[d.ID] {
				t.Fatalf("raising %+v to %+v removes %s", p, bigger, d.ID)
			}
		}
	}
}

// FuzzPlan: bytes become a policy (7 bytes, counts may be invalid) and a
// history (6 bytes per archive); valid policies must satisfy the invariants
// and match the oracle, invalid ones must be refused, nothing may panic.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{3, 0, 7, 4, 12, 0, 48, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 2, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 255, 2, 2, 2, 2, 2, 9, 9, 9, 9, 0, 9, 9, 9, 9, 9, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 7 {
			return
		}
		c := func(b byte) int { return int(b%16) - 2 } // -2 is invalid
		p := Policy{Last: c(data[0]), Hourly: c(data[1]), Daily: c(data[2]), Weekly: c(data[3]),
			Monthly: c(data[4]), Yearly: c(data[5]), Within: time.Duration(int8(data[6])) * 3 * time.Hour}
		now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
		var items []Item
		for i, rest := 0, data[7:]; len(rest) >= 6; i, rest = i+1, rest[6:] {
			off := time.Duration(binary.BigEndian.Uint32(rest)) * time.Minute % twoYears
			items = append(items, Item{
				ID: fmt.Sprint(i), Time: now.Add(-off + 3*time.Hour).Truncate(time.Second),
				Seq: int(rest[4] % 3), Complete: rest[5]%4 != 0,
			})
		}
		if err := p.Validate(); err != nil {
			if _, perr := p.Plan(items, now); perr == nil {
				t.Fatalf("%+v: Validate says %v, Plan accepts", p, err)
			}
			if p == (Policy{}) && !errors.Is(err, ErrEmptyPolicy) {
				t.Fatalf("empty policy: %v", err)
			}
			return
		}
		plan := checkInvariants(t, items, p, now)
		checkOracle(t, items, p, now, plan)
		_ = plan.Table()
	})
}
