package walarchive

import "fmt"

// Durability is when wal-push may tell PostgreSQL a file is archived
// (exit 0): PostgreSQL may recycle the segment right after.
type Durability int

const (
	// DurabilityEvery waits for every writable upstream to hold a verified
	// copy with its manifest. One upstream down stops archiving (and WAL
	// piles up in pg_wal) until it is back.
	DurabilityEvery Durability = iota
	// DurabilityBacklog accepts one upstream's verified copy when the
	// others' copies are kept, encrypted and fsynced, in the local backlog
	// (--state-dir), which retry and the next pushes deliver.
	DurabilityBacklog
)

// DurabilityNames are the setting's values, in Durability order.
var DurabilityNames = []string{"every-upstream", "one-upstream-and-backlog"}

func (d Durability) String() string { return DurabilityNames[d] }

// ParseDurability reads the --durability setting.
func ParseDurability(s string) (Durability, error) {
	for i, n := range DurabilityNames {
		if s == n {
			return Durability(i), nil
		}
	}
	return 0, fmt.Errorf("durability %q is neither every-upstream nor one-upstream-and-backlog", s)
}
