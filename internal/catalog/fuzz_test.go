package catalog

import (
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/naming"
)

// FuzzAssemble: whatever a bucket holds, every object is either counted as
// a stray or lands in exactly one archive whose key round-trips its name.
func FuzzAssemble(f *testing.F) {
	f.Add("p", "p/db1/db1_20260101T000000Z.sql.gz.age\np/db1/db1_20260101T000000Z.sql.gz.age.manifest.json\nx")
	f.Add("", "db/db_20261121T142407Z-3.sql.age\ndb/db_20261121T142407Z-3.sql.age.manifest.json.manifest.json")
	f.Fuzz(func(t *testing.T, prefix, list string) {
		if p, err := naming.CleanPrefix(prefix); err != nil || p != prefix {
			return // callers always pass a cleaned prefix
		}
		var objs []Object
		for _, k := range strings.Split(list, "\n") {
			objs = append(objs, Object{Key: k, Size: int64(len(k))})
		}
		c := Assemble(prefix, []string{"u"}, [][]Object{objs}, []error{nil})
		placed := 0
		for _, a := range c.Archives {
			if a.Key != a.Name.Key(prefix) {
				t.Fatalf("key %q does not round-trip (%q)", a.Key, a.Name.Key(prefix))
			}
			if _, err := naming.Parse(a.Name.Base()); err != nil {
				t.Fatal(err)
			}
			if a.Copies[0].HasData {
				placed++
			}
			if a.Copies[0].HasManifest {
				placed++
			}
		}
		// Duplicate keys in one listing collapse; otherwise nothing is lost.
		uniq := map[string]bool{}
		for _, o := range objs {
			uniq[o.Key] = true
		}
		if dup := len(objs) - len(uniq); placed+c.Strays < len(uniq) || placed+c.Strays > len(objs) {
			t.Fatalf("placed %d + strays %d vs %d objects (%d duplicates)", placed, c.Strays, len(objs), dup)
		}
	})
}
