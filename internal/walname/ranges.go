package walname

import (
	"fmt"
	"sort"
)

// Range is a run of consecutive segments of one timeline.
type Range struct {
	Timeline    uint32
	First, Last uint64 // segment numbers, inclusive
}

// Names renders the range's first and last file names.
func (r Range) Names(segSize int64) (string, string) {
	return SegmentName(r.Timeline, r.First, segSize), SegmentName(r.Timeline, r.Last, segSize)
}

// Count is how many segments the range spans.
func (r Range) Count() uint64 { return r.Last - r.First + 1 }

func (r Range) Format(segSize int64) string {
	a, b := r.Names(segSize)
	if a == b {
		return a
	}
	return fmt.Sprintf("%s..%s (%d)", a, b, r.Count())
}

// Ranges groups the segments among files into runs per timeline, and
// names the gaps inside each timeline's span: segments missing between
// its first and last archived one. A gap means recovery through it stops
// there. Files of other kinds, and names out of range for segSize, are
// ignored.
func Ranges(files []File, segSize int64) (runs, gaps []Range) {
	byTLI := map[uint32][]uint64{}
	for _, f := range files {
		if f.Kind != Segment {
			continue
		}
		n, err := f.SegNo(segSize)
		if err != nil {
			continue
		}
		byTLI[f.Timeline] = append(byTLI[f.Timeline], n)
	}
	tlis := make([]uint32, 0, len(byTLI))
	for t := range byTLI {
		tlis = append(tlis, t)
	}
	sort.Slice(tlis, func(i, j int) bool { return tlis[i] < tlis[j] })
	for _, t := range tlis {
		segs := byTLI[t]
		sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
		cur := Range{Timeline: t, First: segs[0], Last: segs[0]}
		for _, n := range segs[1:] {
			switch {
			case n == cur.Last: // listed twice
			case n == cur.Last+1:
				cur.Last = n
			default:
				runs = append(runs, cur)
				gaps = append(gaps, Range{Timeline: t, First: cur.Last + 1, Last: n - 1})
				cur = Range{Timeline: t, First: n, Last: n}
			}
		}
		runs = append(runs, cur)
	}
	return runs, gaps
}
