package backlog

// planCap decides which entries to drop so that one of newSize bytes fits
// under max. sizes are the entries' sizes, oldest first; busy ones (locked by
// a running retry) can't be dropped now. It returns the indexes to drop,
// oldest first, and whether the new entry fits at all: when it doesn't (it
// alone is larger than max, or too much is busy), nothing is dropped, since
// losing old archives would not make room for the new one.
func planCap(sizes []int64, busy []bool, newSize, max int64) (drop []int, fits bool) {
	if newSize > max {
		return nil, false
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	need := total + newSize - max
	for i, s := range sizes {
		if need <= 0 {
			break
		}
		if busy[i] {
			continue
		}
		drop = append(drop, i)
		need -= s
	}
	if need > 0 {
		return nil, false
	}
	return drop, true
}
