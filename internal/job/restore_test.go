package job

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// Two nights archived, then restored: the newest by default, an older one
// by name, to a file that appears only complete, and to stdout.
func TestRestoreToOutput(t *testing.T) {
	w := newWorld(t)
	first, err := Nightly(context.Background(), w.options(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Nightly(context.Background(), w.options(t)); err != nil {
		t.Fatal(err)
	}
	ups := []*remote.Upstream{w.a, w.b}
	cat, err := catalog.Scan(context.Background(), ups, "", "db1", catalog.Policy{Now: w.now.Add(72 * time.Hour), MaxSkew: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ids := &keys.Identities{List: []age.Identity{w.identity}, Label: "test identity"}
	out := filepath.Join(w.dir, "restored.sql")
	opt := RestoreOptions{Catalog: cat, Upstreams: ups, Remote: "u:", Database: "db1", Keys: ids, Output: out, Log: w.log}
	if err := Restore(context.Background(), opt); err != nil {
		t.Fatalf("restore: %v\n%s", err, w.logs)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "-- night 2") {
		t.Fatalf("restored %q, want night 2", b)
	}
	if m, _ := filepath.Glob(filepath.Join(w.dir, ".restored.sql.partial-*")); len(m) != 0 {
		t.Fatalf("partial files left: %v", m)
	}

	var stdout bytes.Buffer
	opt.Output, opt.Stdout, opt.Archive = "-", &stdout, first.Name.Base()
	if err := Restore(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "-- night 1") {
		t.Fatalf("restored %q, want night 1", stdout.String())
	}

	opt.Archive = "db1_20200101T000000Z-r0000000.sql.age"
	if err := Restore(context.Background(), opt); err == nil || !strings.Contains(err.Error(), `not found on remote "u:"`) {
		t.Fatalf("unknown archive: %v", err)
	}
	opt.Archive, opt.Database = "", "db2"
	if err := Restore(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "no complete archive of database db2") {
		t.Fatalf("no archive: %v", err)
	}
}

// With the wrong key nothing is written and the error says why.
func TestRestoreWrongKeyLeavesNothing(t *testing.T) {
	w := newWorld(t)
	if _, err := Nightly(context.Background(), w.options(t)); err != nil {
		t.Fatal(err)
	}
	ups := []*remote.Upstream{w.a, w.b}
	cat, err := catalog.Scan(context.Background(), ups, "", "db1", catalog.Policy{Now: w.now.Add(48 * time.Hour), MaxSkew: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	out := filepath.Join(w.dir, "restored.sql")
	err = Restore(context.Background(), RestoreOptions{Catalog: cat, Upstreams: ups, Remote: "u:", Database: "db1",
		Keys: &keys.Identities{List: []age.Identity{other}, Label: "other"}, Output: out, Log: w.log})
	if err == nil {
		t.Fatal("restored with the wrong key")
	}
	if ents, _ := os.ReadDir(w.dir); len(ents) == 0 {
		t.Fatal("world vanished")
	} else {
		for _, e := range ents {
			if strings.Contains(e.Name(), "restored") {
				t.Errorf("left %s", e.Name())
			}
		}
	}
}
