package walarchive

import (
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/walname"
)

func files(t *testing.T, names ...string) []walname.File {
	var out []walname.File
	for _, n := range names {
		f, err := walname.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestPrunePlanAcrossTimelines(t *testing.T) {
	const seg = 16 << 20
	all := files(t,
		"000000010000000000000003", "000000010000000000000004", "000000010000000000000005", "000000010000000000000008",
		"000000010000000000000004.00000028.backup", "000000010000000000000006.partial",
		"00000002.history", "000000020000000000000006", "000000020000000000000007",
		"000000020000000000000005", // timeline 2 branched before backup B: not B's descendant
		"00000003.history", "000000030000000000000009")
	// Backup A on timeline 1 starting in segment 4; backup B on timeline 2
	// starting in segment 6.
	a := &manifest.Base{Timeline: 1, StartLSN: "0/4000028", StopLSN: "0/4000100"}
	b := &manifest.Base{Timeline: 2, StartLSN: "0/6000028", StopLSN: "0/6000100"}
	got := names(PrunePlan(all, []*manifest.Base{a, b}, seg))
	if want := "000000010000000000000003"; got != want {
		t.Errorf("with A and B kept: remove %q, want %q", got, want)
	}
	got = names(PrunePlan(all, []*manifest.Base{b}, seg))
	want := "000000010000000000000003 000000010000000000000004 000000010000000000000004.00000028.backup 000000010000000000000005 000000010000000000000006.partial 000000010000000000000008 000000020000000000000005"
	if got != want {
		t.Errorf("with B kept:\n remove %s\n want   %s", got, want)
	}
	// A backup on timeline 3 at segment 9 needs only what follows it.
	c := &manifest.Base{Timeline: 3, StartLSN: "0/9000028", StopLSN: "0/9000100"}
	got = names(PrunePlan(all, []*manifest.Base{c}, seg))
	if strings.Contains(got, "000000030000000000000009") || strings.Contains(got, "history") {
		t.Errorf("with C kept, the plan removes what C needs: %s", got)
	}
	if PrunePlan(all, nil, seg) != nil {
		t.Error("without a kept backup the plan removes WAL")
	}
}

func names(fs []walname.File) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return strings.Join(out, " ")
}
