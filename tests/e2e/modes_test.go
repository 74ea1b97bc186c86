package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestUnionModesInPruneAndHeal: in a union "a b:ro c:nc", prune deletes
// from a and c (rclone's union deletes from :nc members too) but never
// from b; heal refills a but never writes to b or c, which stay sources
// only, and never brings back from b what prune removed elsewhere. The
// modes come from rclone.conf as the union spells them.
func TestUnionModesInPruneAndHeal(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	up := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		up[n] = filepath.Join(dir, n)
		os.Mkdir(up[n], 0o700)
	}
	conf := harness.WriteRcloneConf(t, dir,
		harness.UnionSection("plain", up["a"], up["b"], up["c"]),
		harness.UnionSection("modes", up["a"], up["b"]+":ro", up["c"]+":nc"))
	_, recip := harness.AgeKeygen(t, false)
	pga := func(remote string, args ...string) run {
		t.Helper()
		return runBin(t, bin, nil, append([]string{"--rclone-config", conf, "--log-target", "stderr", "--remote", remote}, args...)...)
	}
	dump := filepath.Join(dir, "db1.sql.gz")
	os.WriteFile(dump, harness.RandomDump(41, 4096, true), 0o600)
	for i := 0; i < 3; i++ {
		if r := pga("plain:", "-r", recip, "archive", "-d", "db1", "--file", dump); r.exit != 0 {
			t.Fatalf("archive %d: exit %d\n%s", i, r.exit, r.stderr)
		}
	}
	count := func(n string) int {
		ents, _ := os.ReadDir(filepath.Join(up[n], "db1"))
		k := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".age") {
				k++
			}
		}
		return k
	}
	if r := pga("modes:", "prune", "--keep-last", "1"); r.exit != 0 {
		t.Fatalf("prune: exit %d\n%s", r.exit, r.stderr)
	}
	if a, b, c := count("a"), count("b"), count("c"); a != 1 || b != 3 || c != 1 {
		t.Fatalf("after prune a, b:ro, c:nc hold %d, %d, %d archives; want 1, 3, 1", a, b, c)
	}

	// What prune removed lives on only in b:ro; heal must not bring it back
	// (nightly archive --heal would undo every prune).
	if r := pga("modes:", "heal"); r.exit != 0 || count("a") != 1 || count("c") != 1 {
		t.Fatalf("heal after prune: exit %d, a holds %d, c %d (want 1, 1)\n%s", r.exit, count("a"), count("c"), r.stderr)
	}

	// The kept archive goes missing on a: heal refills it there (from b or
	// c), and a copy missing on c:nc is never written.
	ents, _ := os.ReadDir(filepath.Join(up["a"], "db1"))
	for _, e := range ents {
		os.Remove(filepath.Join(up["a"], "db1", e.Name()))
	}
	os.Remove(filepath.Join(up["b"], "db1", ents[0].Name())) // b:ro lacks it too: never written either
	r := pga("modes:", "heal")
	if r.exit != 0 || !strings.Contains(r.stderr, "on "+up["a"]+" from ") {
		t.Fatalf("heal: exit %d\n%s", r.exit, r.stderr)
	}
	if a, b, c := count("a"), count("b"), count("c"); a != 1 || b != 2 || c != 1 {
		t.Fatalf("after heal a, b:ro, c:nc hold %d, %d, %d archives; want 1, 2, 1", a, b, c)
	}

	// Read-only members are history: with the writable members healthy,
	// verify and status pass, though b:ro lacks the newest archive and
	// holds ones that a and c no longer do. (Damage on b:ro, such as the
	// manifest left without data above, is still reported: cleared here.)
	os.Remove(filepath.Join(up["b"], "db1", ents[0].Name()+".manifest.json"))
	if r := pga("modes:", "-r", recip, "archive", "-d", "db1", "--file", dump); r.exit != 0 {
		t.Fatalf("archive to a b:ro c:nc: exit %d\n%s", r.exit, r.stderr)
	}
	if r := pga("modes:", "verify"); r.exit != 0 {
		t.Fatalf("verify with a :ro member: exit %d\n%s", r.exit, r.stderr)
	}
	r = pga("modes:", "status", "-d", "db1")
	if r.exit != 0 || !strings.Contains(r.stdout, "read-only: history") {
		t.Fatalf("status with a :ro member: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
}
