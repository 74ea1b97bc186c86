package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
)

func TestAssembleStatesAndOrder(t *testing.T) {
	const old, mid, new = "p/db1/db1_20260101T000000Z.sql.gz.age", "p/db1/db1_20260101T000000Z-1.sql.gz.age", "p/db2/db2_20260102T000000Z.sql.age"
	ms := ".manifest.json"
	listings := [][]Object{
		{{Key: old, Size: 100}, {Key: old + ms, Size: 1}, {Key: mid, Size: 100}, {Key: mid + ms, Size: 1}, {Key: new, Size: 50}, {Key: new + ms, Size: 1},
			{Key: "p/db1/notes.txt", Size: 3}, {Key: "p/db2/db1_20260101T000000Z.sql.age", Size: 9}, {Key: "other/db1/db1_20260101T000000Z.sql.age", Size: 9}},
		{{Key: old, Size: 99}, {Key: old + ms, Size: 1}, {Key: mid, Size: 100}, {Key: new + ms, Size: 1}},
		nil,
	}
	c := Assemble("p", []string{"a", "b", "c"}, listings, []error{nil, nil, errors.New("down")})
	if c.Strays != 3 {
		t.Errorf("strays = %d, want 3 (foreign file, archive in the wrong folder, outside the prefix)", c.Strays)
	}
	if len(c.Archives) != 3 || c.Archives[0].Key != new || c.Archives[1].Key != mid || c.Archives[2].Key != old {
		t.Fatalf("order: %v", keys(c))
	}
	for _, a := range c.Archives {
		a.Manifest = &manifest.Manifest{Ciphertext: manifest.Blob{Size: a.Copies[0].DataSize}}
	}
	want := map[string][]State{
		new: {Complete, NoData, Unlisted},
		mid: {Complete, Incomplete, Unlisted},
		old: {Complete, WrongSize, Unlisted},
	}
	for _, a := range c.Archives {
		for i, w := range want[a.Key] {
			if got := a.State(i); got != w {
				t.Errorf("%s on %d: %s, want %s", a.Key, i, got, w)
			}
		}
	}
	if got := c.Latest("db1"); got == nil || got.Key != mid {
		t.Errorf("Latest(db1) = %v", got)
	}
	if c.Find("db1_20260101T000000Z.sql.gz.age") == nil || c.Find(old+ms) == nil || c.Find("nope") != nil {
		t.Error("Find")
	}
	if dbs := c.Databases(); len(dbs) != 2 || dbs[0] != "db1" {
		t.Errorf("Databases = %v", dbs)
	}
	c.Archives[0].Manifest = nil
	if c.Archives[0].State(0) != BadManifest {
		t.Error("no manifest read: want bad-manifest")
	}
}

func TestLatestSkipsIncomplete(t *testing.T) {
	c := Assemble("", []string{"a"}, [][]Object{{
		{Key: "db/db_20260101T000000Z.sql.age", Size: 10}, {Key: "db/db_20260101T000000Z.sql.age.manifest.json", Size: 1},
		{Key: "db/db_20260102T000000Z.sql.age", Size: 10},
	}}, []error{nil})
	for _, a := range c.Archives {
		a.Manifest = &manifest.Manifest{Ciphertext: manifest.Blob{Size: 10}}
	}
	if got := c.Latest("db"); got == nil || got.Name.Created.Day() != 1 {
		t.Errorf("Latest = %v, want the older complete archive", got)
	}
}

func keys(c *Catalog) []string {
	var out []string
	for _, a := range c.Archives {
		out = append(out, a.Key)
	}
	return out
}

// TestTrustAndFuture: signatures are grouped with their archive (a lone
// one is a stray), untrusted and future archives are never the latest, and
// SuspectNewer names those newer than what was chosen.
func TestTrustAndFuture(t *testing.T) {
	const (
		good   = "db/db_20260101T000000Z.sql.age"
		forged = "db/db_20260102T000000Z.sql.age"
		future = "db/db_20990101T000000Z.sql.age"
		lone   = "db/db_20250101T000000Z.sql.age"
		ms     = ".manifest.json"
	)
	var objs []Object
	for _, k := range []string{good, forged, future} {
		objs = append(objs, Object{Key: k, Size: 10}, Object{Key: k + ms, Size: 1}, Object{Key: k + ms + ".sig", Size: 1})
	}
	objs = append(objs, Object{Key: lone + ms + ".sig", Size: 1})
	c := Assemble("", []string{"a"}, [][]Object{objs}, []error{nil})
	if len(c.Archives) != 3 || c.Strays != 1 {
		t.Fatalf("archives %v, strays %d: a signature alone is no archive", keys(c), c.Strays)
	}
	for _, a := range c.Archives {
		if !a.Copies[0].HasSig || !a.Copies[0].HasManifest || !a.Copies[0].HasData {
			t.Fatalf("%s: %+v", a.Key, a.Copies[0])
		}
		a.Manifest = &manifest.Manifest{Ciphertext: manifest.Blob{Size: 10}}
		a.Trust = TrustSigned
		if a.Key == forged {
			a.Trust, a.TrustErr = TrustUntrusted, errors.New("a: no signature")
		}
	}
	c.Judge(Policy{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), MaxSkew: 10 * time.Minute})
	if got := c.Latest("db"); got == nil || got.Key != good {
		t.Fatalf("Latest = %v, want the trusted archive of the past", got)
	}
	sus := c.SuspectNewer("db", c.Latest("db"))
	if len(sus) != 2 || sus[0].Key != future || !sus[0].Future || sus[1].Key != forged {
		t.Fatalf("SuspectNewer = %v", sus)
	}
	if st := c.Find(forged).State(0); st != Untrusted {
		t.Errorf("forged copy: %s", st)
	}
	if why := c.Find(forged).Why(); !strings.Contains(why, "UNTRUSTED (a: no signature)") {
		t.Errorf("Why = %q", why)
	}
	// A skew wide enough makes 2099 acceptable: the limit is the policy's.
	c.Judge(Policy{Now: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), MaxSkew: time.Hour})
	if got := c.Latest("db"); got == nil || got.Key != future {
		t.Fatalf("Latest with the clock in 2099 = %v", got)
	}
}

// TestEachCopyByItsOwnManifest: one upstream's edited manifest (claiming
// 100 bytes more, or another dump hash) is outvoted by the copies whose
// data agrees with theirs; it is named, and no intact copy is blamed.
func TestEachCopyByItsOwnManifest(t *testing.T) {
	const k = "db/db_20260101T000000Z.sql.age"
	good := &manifest.Manifest{Archive: "db_20260101T000000Z.sql.age", Ciphertext: manifest.Blob{Size: 10, SHA256: "aa"}, Dump: manifest.Dump{SHA256: "d1"}}
	bigger := *good
	bigger.Ciphertext.Size = 110
	otherDump := *good
	otherDump.Dump.SHA256 = "d2"
	ups := []string{"a", "b", "c"}
	for name, first := range map[string]*manifest.Manifest{"size": &bigger, "dump sha256": &otherDump} {
		var listings [][]Object
		for range ups {
			listings = append(listings, []Object{{Key: k, Size: 10}, {Key: k + ".manifest.json", Size: 1}})
		}
		c := Assemble("", ups, listings, []error{nil, nil, nil})
		a := c.Archives[0]
		for i := range a.Copies {
			m, body := good, []byte("good")
			if i == 0 {
				m, body = first, []byte("edited")
			}
			a.Copies[i].Manifest, a.Copies[i].Body = m, body
		}
		a.reference(ups, false)
		if a.Manifest != good {
			t.Fatalf("%s: the archive's manifest is the edited one", name)
		}
		want := map[string]State{"size": WrongSize, "dump sha256": Differs}[name]
		if st := []State{a.State(0), a.State(1), a.State(2)}; st[0] != want || st[1] != Complete || st[2] != Complete {
			t.Fatalf("%s: states %v", name, st)
		}
		if name == "dump sha256" {
			if d := a.Disagreement(0, ups); !strings.Contains(d, "dump.sha256 d2, on b, c says d1") {
				t.Errorf("disagreement: %q", d)
			}
		}
		if c.Latest("db") != a {
			t.Errorf("%s: the archive is no longer restorable", name)
		}
	}
}

// TestHistoryMembers: nothing new is expected on a :ro or :nc member, and
// what only such members hold is not expected on the writable ones.
func TestHistoryMembers(t *testing.T) {
	const newer, older, ms = "db/db_20260102T000000Z.sql.age", "db/db_20260101T000000Z.sql.age", ".manifest.json"
	c := Assemble("", []string{"a", "ro"}, [][]Object{
		{{Key: newer, Size: 10}, {Key: newer + ms, Size: 1}},
		{{Key: older, Size: 10}, {Key: older + ms, Size: 1}},
	}, []error{nil, nil})
	c.History = []bool{false, true}
	n, o := c.Find(newer), c.Find(older)
	if c.Expected(n, 1) || !c.Expected(n, 0) || c.Expected(o, 0) || c.Expected(o, 1) {
		t.Fatalf("expected: newer on a %v, on ro %v; older on a %v, on ro %v",
			c.Expected(n, 0), c.Expected(n, 1), c.Expected(o, 0), c.Expected(o, 1))
	}
}
