package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestConcurrentRunsNeverCollide: eight pairs of archive runs of one
// database, each pair started together with different dumps (the same
// second, mostly), on two MinIO and a local folder. Every run succeeds and
// every dump is restorable afterwards by its archive's name: nothing was
// overwritten, with no read-then-write check to rely on.
func TestConcurrentRunsNeverCollide(t *testing.T) {
	w := newWorld(t, nil)
	idPath, recip := harness.AgeKeygen(t, false)
	dir := t.TempDir()
	want := map[string]bool{}
	for pair := range 8 {
		var wg sync.WaitGroup
		errs := make([]string, 2)
		for run := range 2 {
			dump := fmt.Sprintf("SELECT 'pair %d run %d';\n%s\n-- PostgreSQL database dump complete\n", pair, run, strings.Repeat("-- filler\n", 100*(run+1)))
			want[dump] = true
			f := filepath.Join(dir, fmt.Sprintf("dump-%d-%d.sql", pair, run))
			os.WriteFile(f, []byte(dump), 0o600)
			cmd := exec.Command(w.bin, "--rclone-config", w.conf, "--log-target", "stderr", "--recipient", recip, "archive", "-d", "db1", "-f", f)
			cmd.Env = append(os.Environ(), "RCLONE_CONFIG=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := cmd.Wait(); err != nil {
					errs[run] = fmt.Sprintf("%v\n%s", err, out.String())
				}
			}()
		}
		wg.Wait()
		for run, e := range errs {
			if e != "" {
				t.Fatalf("pair %d run %d failed: %s", pair, run, e)
			}
		}
	}
	listed := w.listJSON(t, "-d", "db1")
	if len(listed) != 16 {
		t.Fatalf("want 16 archives, list shows %d", len(listed))
	}
	got := map[string]bool{}
	for _, a := range listed {
		if !a.Healthy {
			t.Errorf("%s is not complete on every upstream", a.Key)
		}
		r := w.pgarchive(t, nil, "restore", "-d", "db1", "--archive", a.Key, "--output", "-", "-i", idPath)
		if r.exit != 0 {
			t.Fatalf("restore %s: %s", a.Key, r.stderr)
		}
		got[r.stdout] = true
	}
	for d := range want {
		if !got[d] {
			t.Errorf("a dump is no longer restorable: %.30q", d)
		}
	}
}
