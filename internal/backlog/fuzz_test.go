package backlog

import "testing"

// FuzzParseKey: whatever ParseKey accepts renders back to the same key
// through naming, so a folder is taken for an entry only if it is one.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"db1/db1_20261121T142407Z.sql.gz.age", "p/q/db1/db1_20261121T142407Z-3.sql.age", "db1", "a/../db1/db1_20261121T142407Z.sql.age"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		n, ok := ParseKey(key)
		if !ok {
			return
		}
		prefix := key[:len(key)-len(n.Key(""))]
		if prefix != "" {
			prefix = prefix[:len(prefix)-1]
		}
		if n.Key(prefix) != key {
			t.Fatalf("ParseKey(%q) = %+v, which renders as %q", key, n, n.Key(prefix))
		}
	})
}
