package scratchpg

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// asUnprivileged runs the calling test again in a child process as user
// postgres when we are root (Start refuses root, as initdb does) and
// reports true; the caller then returns. As any other user it reports
// false and the test runs here.
func asUnprivileged(t *testing.T) bool {
	t.Helper()
	harness.Need(t, "initdb", "pg_ctl", "postgres")
	if os.Geteuid() != 0 {
		return false
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, and there is no user postgres to run the cluster as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// go test's build directory is private to root: copy the binary out.
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "scratchpg-bin-"); binErr != nil {
			return
		}
		if binErr = os.Chmod(binDir, 0o755); binErr != nil {
			return
		}
		binErr = harness.CopyExecutable(os.Args[0], filepath.Join(binDir, "scratchpg.test"))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	tmp, err := os.MkdirTemp("", "scratchpg-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chown(tmp, uid, gid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "scratchpg.test"), "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, "USER=postgres")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	t.Logf("%s, run again as user postgres:\n%s", t.Name(), out)
	switch {
	case err != nil:
		t.Fatalf("as user postgres: %v", err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		t.Skip("skipped as user postgres")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("as user postgres the test did not run")
	}
	return true
}
