package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestDemoHintsWork: every pgarchive command the demo suggests under "Try:"
// runs as printed (pipes into head left out), including the heal after a
// copy was removed, and the demo world ends up whole again.
func TestDemoHintsWork(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := filepath.Join(t.TempDir(), "demo")
	r := runBin(t, bin, nil, "--log-target", "stderr", "demo", "--dir", dir)
	if r.exit != 0 {
		t.Fatalf("demo: exit %d\n%s", r.exit, r.stderr)
	}
	_, try, ok := strings.Cut(r.stdout, "\nTry:\n")
	if !ok {
		t.Fatalf("demo printed no hints:\n%s", r.stdout)
	}
	ran := 0
	for _, line := range strings.Split(strings.TrimSpace(try), "\n") {
		line, _, _ = strings.Cut(strings.TrimSpace(line), "   #")
		line, _, _ = strings.Cut(line, " | ")
		if rm, rest, ok := strings.Cut(line, " && "); ok {
			if err := os.RemoveAll(strings.TrimPrefix(rm, "rm -r ")); err != nil {
				t.Fatal(err)
			}
			line = rest
		}
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "ssh-keygen" {
			// The stock OpenSSH check of the manifest's signature, as printed.
			if out, err := exec.Command("sh", "-c", line).CombinedOutput(); err != nil || !strings.Contains(string(out), `Good "pgarchive" signature`) {
				t.Errorf("%s: %v\n%s", line, err, out)
			}
			ran++
			continue
		}
		if len(fields) == 0 || fields[0] != "pgarchive" {
			continue
		}
		res := runBin(t, bin, nil, append([]string{"--log-target", "stderr"}, fields[1:]...)...)
		if res.exit != 0 {
			t.Errorf("%s: exit %d\n%s\n%s", line, res.exit, res.stdout, res.stderr)
		}
		ran++
	}
	if ran < 7 {
		t.Errorf("ran %d pgarchive hints, want at least 6:\n%s", ran, try)
	}
	// After the heal every upstream holds the archive again.
	list := runBin(t, bin, nil, "--rclone-config", filepath.Join(dir, "rclone.conf"), "--log-target", "stderr", "list")
	if list.exit != 0 || strings.Count(list.stdout, " ok") != 2 {
		t.Errorf("list after the hints: exit %d\n%s", list.exit, list.stdout)
	}
}
