package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestDemoHintsWork: the README's first command, `go run ./cmd/pgarchive
// demo`, prints follow-ups under "Try:" that run exactly as printed, by a
// shell in another directory with no pgarchive on PATH (go run deletes its
// build on exit): pipes into head, the heal after a copy was removed, the
// stock age and ssh-keygen checks. The demo world ends up whole again.
func TestDemoHintsWork(t *testing.T) {
	goBin := harness.Tool(t, "go")
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(goBin, "run", "./cmd/pgarchive", "--log-target", "stderr", "demo", "--dir", dir)
	cmd.Dir = harness.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./cmd/pgarchive demo: %v\n%s", err, out)
	}
	_, try, ok := strings.Cut(string(out), "\nTry:\n")
	if !ok {
		t.Fatalf("demo printed no hints:\n%s", out)
	}
	// Only the tools a new user has: age, ssh-keygen, the shell's own.
	path := filepath.Dir(harness.Tool(t, "age")) + ":/usr/bin:/bin"
	ran := 0
	for _, line := range strings.Split(strings.TrimSpace(try), "\n") {
		line = strings.TrimSpace(line)
		sh := exec.Command("bash", "-o", "pipefail", "-c", line)
		sh.Dir = "/"
		sh.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
		got, err := sh.CombinedOutput()
		// head closing the pipe early is success, as for the user.
		if err != nil && !(strings.Contains(line, "| head") && strings.Contains(err.Error(), "exit status 141")) {
			t.Errorf("%s: %v\n%s", line, err, got)
		}
		switch {
		case strings.HasPrefix(line, "ssh-keygen") && !strings.Contains(string(got), `Good "pgarchive" signature`):
			t.Errorf("%s: no good signature:\n%s", line, got)
		case strings.Contains(line, "| head") && !strings.Contains(string(got), "PostgreSQL database dump"):
			t.Errorf("%s: not the dump:\n%s", line, got)
		}
		ran++
	}
	if ran < 9 {
		t.Errorf("ran %d hints, want 9:\n%s", ran, try)
	}
	if page, err := os.ReadFile(filepath.Join(dir, "report.html")); err != nil || !strings.Contains(string(page), `data-exit-status="0"`) {
		t.Errorf("the report hint wrote no page saying OK: %v", err)
	}
	// After the heal every upstream holds the archive again. Global flags
	// work after the command name too, as restic and rclone take them.
	bin := filepath.Join(dir, "bin", "pgarchive")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the go run build was not kept for the hints: %v", err)
	}
	list := runBin(t, bin, nil, "list", "--rclone-config", filepath.Join(dir, "rclone.conf"), "--log-target", "stderr")
	if list.exit != 0 || strings.Count(list.stdout, " ok") != 2 {
		t.Errorf("list after the hints: exit %d\n%s", list.exit, list.stdout)
	}
	// An archive run with every setting after the command: the identity's
	// public half as recipient (-i on archive), then a restore whose own -i
	// decrypts.
	arch := runBin(t, bin, nil, "archive", "--database", "demo", "--file", filepath.Join(dir, "dumps", "demo.sql.gz"),
		"--rclone-config", filepath.Join(dir, "rclone.conf"), "-i", filepath.Join(dir, "identity.txt"),
		"--log-target=stderr", "--verbose")
	if arch.exit != 0 {
		t.Fatalf("archive with global flags after it: exit %d\n%s", arch.exit, arch.stderr)
	}
	rest := runBin(t, bin, nil, "restore", "--database", "demo", "--latest", "--output", "-", "-i", filepath.Join(dir, "identity.txt"),
		"--config", filepath.Join(dir, "pgarchive.json"), "--log-target", "stderr")
	if rest.exit != 0 || !strings.Contains(rest.stdout, "PostgreSQL database dump") {
		t.Errorf("restore with global flags after it: exit %d\n%s", rest.exit, rest.stderr)
	}
}
