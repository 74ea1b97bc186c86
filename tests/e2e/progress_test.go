package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestRestoreProgress: a progress bar on a terminal (a real pty from
// script(1)), none when stderr is a pipe or the journal.
func TestRestoreProgress(t *testing.T) {
	harness.Need(t, "script")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	if r := runBin(t, bin, nil, "demo", "--dir", dir); r.exit != 0 {
		t.Fatalf("demo: %s", r.stderr)
	}
	args := []string{bin, "--rclone-config", filepath.Join(dir, "rclone.conf"), "restore", "--database", "demo",
		"--output", filepath.Join(dir, "out.sql"), "--force", "--identity-file", filepath.Join(dir, "identity.txt")}
	out, err := exec.Command(harness.Tool(t, "script"), "-qec", strings.Join(args, " "), "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restoring") || !strings.Contains(string(out), "100%") {
		t.Fatalf("no progress bar on a terminal (%v):\n%q", err, out)
	}
	r := runBin(t, bin, nil, args[1:]...)
	if r.exit != 0 || strings.Contains(r.stderr, "100%") {
		t.Fatalf("progress bar drawn into a pipe (exit %d):\n%s", r.exit, r.stderr)
	}
}
