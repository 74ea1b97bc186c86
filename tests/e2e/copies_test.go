package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneWrongManifestDecidesNothing edits the manifest on the first
// upstream only (data and the other upstreams untouched), as bit rot, a
// broken tool or someone with write access to one upstream would: first its
// ciphertext size, then its dump SHA-256, then garbage. Each copy is judged
// by its own manifest: the intact copies stay complete, restore and prune
// rely on them, verify names only the damaged upstream, and heal repairs it.
func TestOneWrongManifestDecidesNothing(t *testing.T) {
	w := newWorld(t, nil)
	rw := newReadWorld(t, w, 300)
	mkey := rw.key + ".manifest.json"
	genuine := w.upstreams(t)[0].read(mkey)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		decodeJSON(t, genuine, &m)
		f(m)
		b, _ := json.MarshalIndent(m, "", "  ")
		return append(b, '\n')
	}
	cases := []struct {
		name, state, verifyWant string
		body                    []byte
	}{
		{"ciphertext size +100", "WRONG-SIZE", "its manifest says", edit(func(m map[string]any) {
			c := m["ciphertext"].(map[string]any)
			c["size"] = c["size"].(float64) + 100
		})},
		{"dump sha256", "DIFFERS", "dump.sha256", edit(func(m map[string]any) {
			m["dump"].(map[string]any)["sha256"] = strings.Repeat("0", 64)
		})},
		{"not JSON", "BAD-MANIFEST", "manifest unreadable", []byte("\x00\x01 not a manifest")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.minios[0].PutObject(t, mkey, c.body)

			r := w.pgarchive(t, nil, "list", "-d", "db1")
			if !strings.Contains(r.stdout, c.state+"  ") || strings.Count(r.stdout, " ok") != 2 {
				t.Fatalf("list: minio-a should be %s and the two others ok:\n%s", c.state, r.stdout)
			}
			r = w.pgarchive(t, nil, "verify", "-d", "db1")
			if r.exit != 1 || !strings.Contains(r.stderr, rw.key+" on minio-a:") || !strings.Contains(r.stderr, c.verifyWant) ||
				strings.Contains(r.stderr, rw.key+" on minio-b") || strings.Contains(r.stderr, rw.key+" on "+w.local) {
				t.Fatalf("verify must blame minio-a only (exit %d):\n%s", r.exit, r.stderr)
			}
			if strings.Contains(r.stderr, "(<nil>)") {
				t.Errorf("verify prints (<nil>):\n%s", r.stderr)
			}
			out := filepath.Join(t.TempDir(), "db1.sql")
			r = w.pgarchive(t, nil, "restore", "-d", "db1", "--output", out, "-i", rw.idPath)
			if got, _ := os.ReadFile(out); r.exit != 0 || string(got) != string(rw.sqlPlain) {
				t.Fatalf("restore must use an intact copy (exit %d):\n%s", r.exit, r.stderr)
			}
			r = w.pgarchive(t, nil, "prune", "-d", "db1", "--keep-last", "5", "--dry-run", "--json")
			if a := pruneActions(t, r); a[rw.key] != "keep" {
				t.Fatalf("prune plans %v for the archive: an intact copy must keep it", a)
			}
			r = w.pgarchive(t, nil, "heal", "-d", "db1")
			if r.exit != 0 || strings.Contains(r.stderr, "(<nil>)") || !strings.Contains(r.stderr, "healed "+rw.key+" on minio-a") {
				t.Fatalf("heal must replace minio-a's manifest from a good copy (exit %d):\n%s", r.exit, r.stderr)
			}
			if got := w.minios[0].ReadObject(t, mkey); string(got) != string(genuine) {
				t.Fatalf("after heal minio-a's manifest is not the genuine one:\n%s", got)
			}
			if r = w.pgarchive(t, nil, "verify", "-d", "db1"); r.exit != 0 {
				t.Fatalf("verify after heal (exit %d):\n%s", r.exit, r.stderr)
			}
		})
	}
}
