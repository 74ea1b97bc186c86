package backlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// ownerHelperEnv, when set, makes TestRootLeavesBacklogToOwner the service
// user's side of the test: it runs in a copy of this test binary as that
// user. Its value is the fixture's folder.
const ownerHelperEnv = "PGARCHIVE_BACKLOG_OWNER_HELPER"

// TestRootLeavesBacklogToOwner: the state directory belongs to postgres
// (as on NixOS); root keeps an archive in the backlog and retries it while
// the upstream is still down. Everything under the backlog then belongs to
// postgres, and postgres itself (a real process with its uid) delivers and
// removes the entry and can spool the next archive.
func TestRootLeavesBacklogToOwner(t *testing.T) {
	if dir := os.Getenv(ownerHelperEnv); dir != "" {
		retryAsOwner(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: root's runs hand the backlog to the state directory's owner")
	}
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("this test runs the retry as user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	base, err := os.MkdirTemp("", "backlog-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	for _, d := range []string{"a", "b", "state"} {
		p := filepath.Join(base, d)
		os.Mkdir(p, 0o750)
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	f := newFixtureIn(t, base)
	f.archive(t, time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC), 50_000, 1<<30)
	down := &remote.Upstream{Name: f.b.Name, Root: f.b.Root, Err: errors.New("connection refused")}
	if rr := Retry(context.Background(), RetryOptions{StateDir: f.state, Upstreams: []*remote.Upstream{f.a, down}, Log: f.log}); rr.Failed != 1 {
		t.Fatalf("root's retry while b is down: %+v\n%s", rr, f.logs)
	}
	var n int
	filepath.Walk(Root(f.state), func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		n++
		st := info.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d, want postgres (%d:%d)", p, st.Uid, st.Gid, uid, gid)
		}
		return nil
	})
	if n < 8 { // backlog, lock, tmp, entries, db1, the entry and its three files
		t.Fatalf("only %d paths under the backlog", n)
	}

	// The service user's turn, in a process of its own.
	bin := filepath.Join(base, "backlog.test")
	if err := harness.CopyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestRootLeavesBacklogToOwner$", "-test.v")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + base, ownerHelperEnv + "=" + base}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("retry as postgres: %v\n%s", err, out)
	}
	if u, err := Usage(f.state); err != nil || u.Archives != 0 {
		t.Fatalf("backlog after postgres's retry: %+v, %v\n%s", u, err, out)
	}
	if _, err := os.Stat(filepath.Join(base, "b", "db1")); err != nil {
		t.Fatalf("nothing delivered to b: %v\n%s", err, out)
	}
}

// retryAsOwner is the service user's side: deliver the backlog to b, then
// spool (and drop) another archive.
func retryAsOwner(t *testing.T, dir string) {
	if os.Geteuid() == 0 {
		t.Fatal("the helper must not run as root")
	}
	var ups []*remote.Upstream
	for _, n := range []string{"a", "b"} {
		u, err := remote.Resolve(context.Background(), filepath.Join(dir, n), remote.Options{})
		if err != nil || u[0].Err != nil {
			t.Fatal(err, u[0].Err)
		}
		ups = append(ups, u[0])
	}
	state := filepath.Join(dir, "state")
	var logs bytes.Buffer
	rr := Retry(context.Background(), RetryOptions{StateDir: state, Upstreams: ups, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if rr.Delivered != 1 || rr.Cleared != 1 || rr.Remaining != 0 || rr.Broken != 0 {
		t.Fatalf("retry: %+v\n%s", rr, logs.String())
	}
	sp, err := NewSpool(state, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sp.Discard()
}
