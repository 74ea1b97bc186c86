package backlog

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPlanCap(t *testing.T) {
	for _, c := range []struct {
		name    string
		sizes   []int64
		busy    []bool
		newSize int64
		max     int64
		drop    []int
		fits    bool
	}{
		{"room", []int64{10, 10}, []bool{false, false}, 10, 30, nil, true},
		{"exactly full", []int64{10, 10}, []bool{false, false}, 10, 30, nil, true},
		{"oldest goes", []int64{10, 10}, []bool{false, false}, 11, 30, []int{0}, true},
		{"two oldest go", []int64{5, 5, 20}, []bool{false, false, false}, 20, 40, []int{0, 1}, true},
		{"busy oldest skipped", []int64{10, 10, 10}, []bool{true, false, false}, 10, 30, []int{1}, true},
		{"new larger than cap", []int64{1}, []bool{false}, 31, 30, nil, false},
		{"new equals cap", []int64{1, 2}, []bool{false, false}, 30, 30, []int{0, 1}, true},
		{"too much busy", []int64{20, 5}, []bool{true, false}, 20, 30, nil, false},
		{"empty backlog", nil, nil, 5, 30, nil, true},
	} {
		drop, fits := planCap(c.sizes, c.busy, c.newSize, c.max)
		if fits != c.fits || !slices.Equal(drop, c.drop) {
			t.Errorf("%s: planCap = %v, %v; want %v, %v", c.name, drop, fits, c.drop, c.fits)
		}
	}
}

// TestPlanCapProperties: over random backlogs, a plan that fits leaves the
// total within the cap, drops only idle entries, drops oldest first with no
// idle entry skipped before the last one dropped, and drops nothing more than
// needed (keeping its newest drop would pass the cap).
func TestPlanCapProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		n := r.IntN(8)
		sizes, busy := make([]int64, n), make([]bool, n)
		for i := range sizes {
			sizes[i] = 1 + r.Int64N(50)
			busy[i] = r.IntN(4) == 0
		}
		newSize, max := 1+r.Int64N(60), 1+r.Int64N(200)
		drop, fits := planCap(sizes, busy, newSize, max)
		var total int64
		for _, s := range sizes {
			total += s
		}
		if !fits {
			if drop != nil {
				t.Fatalf("no fit but drops %v", drop)
			}
			var idle int64
			for i, s := range sizes {
				if !busy[i] {
					idle += s
				}
			}
			if newSize <= max && total-idle+newSize <= max {
				t.Fatalf("sizes %v busy %v new %d max %d: said no fit, but dropping every idle entry makes room", sizes, busy, newSize, max)
			}
			continue
		}
		left := total + newSize
		for k, i := range drop {
			if busy[i] {
				t.Fatalf("drops busy entry %d", i)
			}
			if k > 0 && i <= drop[k-1] {
				t.Fatalf("drops out of order: %v", drop)
			}
			left -= sizes[i]
		}
		if left > max {
			t.Fatalf("sizes %v new %d max %d: after dropping %v, %d > cap", sizes, newSize, max, drop, left)
		}
		if len(drop) > 0 {
			last := drop[len(drop)-1]
			for i := 0; i < last; i++ {
				if !busy[i] && !slices.Contains(drop, i) {
					t.Fatalf("skipped idle older entry %d: %v", i, drop)
				}
			}
			if left+sizes[last] <= max {
				t.Fatalf("sizes %v new %d max %d: dropped %v, one fewer would do", sizes, newSize, max, drop)
			}
		}
	}
}
