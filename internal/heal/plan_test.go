package heal

import (
	"slices"
	"testing"

	"github.com/pgarchive/pgarchive/internal/catalog"
)

func TestPlan(t *testing.T) {
	ok := Copy{State: catalog.Complete, Hash: HashOK, Writable: true}
	unchecked := Copy{State: catalog.Complete, Writable: true}
	for _, c := range []struct {
		name             string
		copies           []Copy
		targets, sources []int
	}{
		{"all good", []Copy{ok, ok, unchecked}, nil, []int{0, 1, 2}},
		{"missing", []Copy{ok, {State: catalog.Missing, Writable: true}}, []int{1}, []int{0}},
		{"every lacking state", []Copy{
			{State: catalog.Incomplete, Writable: true}, {State: catalog.NoData, Writable: true},
			{State: catalog.WrongSize, Writable: true}, unchecked}, []int{0, 1, 2}, []int{3}},
		{"damaged is a target, never a source", []Copy{{State: catalog.Complete, Hash: HashBad, Writable: true}, unchecked}, []int{0}, []int{1}},
		{"confirmed sources first", []Copy{unchecked, ok, {State: catalog.Missing, Writable: true}}, []int{2}, []int{1, 0}},
		{"read-only member is a source, never a target", []Copy{{State: catalog.Complete}, {State: catalog.Missing}}, nil, []int{0}},
		{"pruned, held only by a :ro member: not brought back", []Copy{{State: catalog.Complete, ReadOnly: true}, {State: catalog.Missing, Writable: true}, {State: catalog.Missing}}, nil, []int{0}},
		{"held by :ro and a writable member: refilled", []Copy{{State: catalog.Complete, ReadOnly: true}, {State: catalog.Missing, Writable: true}, unchecked}, []int{1}, []int{0, 2}},
		{"only :ro holds it whole, a damaged copy elsewhere is still healed", []Copy{{State: catalog.Complete, Hash: HashOK, ReadOnly: true}, {State: catalog.WrongSize, Writable: true}}, []int{1}, []int{0}},
		{"unlisted left alone", []Copy{ok, {State: catalog.Unlisted, Writable: true}}, nil, []int{0}},
		{"no source", []Copy{{State: catalog.Incomplete, Writable: true}, {State: catalog.Missing, Writable: true}}, nil, nil},
		{"only damaged", []Copy{{State: catalog.Complete, Hash: HashBad, Writable: true}, {State: catalog.Missing, Writable: true}}, nil, nil},
	} {
		targets, sources := Plan(c.copies)
		if !slices.Equal(targets, c.targets) || !slices.Equal(sources, c.sources) {
			t.Errorf("%s: Plan = %v, %v; want %v, %v", c.name, targets, sources, c.targets, c.sources)
		}
	}
}
