package scratchpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// serverFor lists the PIDs of processes working below dir (the postmaster
// chdirs to its data directory) or naming it in their command line (initdb
// and its children).
func serverFor(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if (err == nil && strings.HasPrefix(cwd, dir)) || strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func query(ctx context.Context, t *testing.T, conn string) {
	t.Helper()
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatalf("connect %s: %v", conn, err)
	}
	defer c.Close(context.Background())
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}
	var fsync, locks string
	if err := c.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('max_locks_per_transaction')").Scan(&fsync, &locks); err != nil || fsync != "off" || locks != "1024" {
		t.Errorf("settings: fsync=%s max_locks_per_transaction=%s %v", fsync, locks, err)
	}
}

// shortTemp is a temporary directory with a short path: t.TempDir's long
// test-derived names would leave little of the 107 bytes a socket path has.
func shortTemp(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root")
	}
	parent := shortTemp(t)
	_, err := Start(context.Background(), Options{TempDir: parent})
	if err == nil || err.Error() != "drill cannot run as root: initdb refuses it; run it as an unprivileged user (the NixOS unit uses DynamicUser)" {
		t.Errorf("Start as root: %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("left %d entries behind", len(ents))
	}
}

func TestStartStop(t *testing.T) {
	if asUnprivileged(t) {
		return
	}
	ctx := context.Background()
	parent := shortTemp(t)
	c, err := Start(ctx, Options{TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(c.Dir()); err != nil || st.Mode().Perm() != 0o700 || filepath.Dir(c.Dir()) != parent {
		t.Errorf("cluster directory %s: %v %v", c.Dir(), st.Mode(), err)
	}
	wantConn := fmt.Sprintf("host=%s/sock port=5432 user=%s dbname=postgres", c.Dir(), currentUser())
	if got := c.ConnString("postgres"); got != wantConn {
		t.Errorf("ConnString = %q, want %q", got, wantConn)
	}
	if got := c.ConnString("it's"); !strings.HasSuffix(got, ` dbname='it\'s'`) {
		t.Errorf("ConnString(it's) = %q", got)
	}
	query(ctx, t, c.ConnString("postgres"))
	if len(serverFor(c.Dir())) == 0 {
		t.Fatalf("no server process runs in %s", c.Dir())
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory still there: %v", err)
	}
	if pids := serverFor(c.Dir()); len(pids) != 0 {
		t.Errorf("processes left in %s: %v", c.Dir(), pids)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	if asUnprivileged(t) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if pids := serverFor(c.Dir()); len(pids) != 0 {
			t.Errorf("processes left in %s: %v", c.Dir(), pids)
		}
		if _, err := os.Stat(c.Dir()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster directory still there: %v", err)
		}
	}()
	query(ctx, t, c.ConnString("postgres"))
	cancel()
	if _, err := pgx.Connect(ctx, c.ConnString("postgres")); err == nil {
		t.Error("connect with a cancelled context worked")
	}
}

func TestKillsALingeringServer(t *testing.T) {
	if asUnprivileged(t) {
		return
	}
	c, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pid := postmasterPID(c.dataDir())
	// A pg_ctl that cannot stop anything, like one that times out.
	c.pgCtl = "/bin/false"
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if isOurPostmaster(pid, c.dataDir()) {
		t.Errorf("server %d still running", pid)
	}
	// Its children notice the postmaster's death on their own, within
	// moments (a loaded CI machine once saw one still there).
	for deadline := time.Now().Add(10 * time.Second); len(serverFor(c.Dir())) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the killed server still running: %v", serverFor(c.Dir()))
		}
	}
}

func TestStartFailures(t *testing.T) {
	if asUnprivileged(t) {
		return
	}
	parent := shortTemp(t)
	empty := func(what string) {
		t.Helper()
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("%s: left %s behind", what, ents[0].Name())
		}
	}

	_, err := Start(context.Background(), Options{TempDir: parent, Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil || !strings.Contains(err.Error(), "pg_ctl start") || !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers": "lots"`) {
		t.Errorf("bad setting: %v", err)
	}
	empty("bad setting")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, Options{TempDir: parent}); err == nil {
		t.Error("Start with a cancelled context worked")
	}
	empty("cancelled")

	// Cancelled while initdb runs (it takes about a second).
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Start(ctx, Options{TempDir: parent}); err == nil || !strings.Contains(err.Error(), "initdb") {
		t.Errorf("Start cancelled during initdb: %v", err)
	}
	empty("cancelled during initdb")
	if pids := serverFor(parent); len(pids) != 0 {
		t.Errorf("processes left in %s: %v", parent, pids)
	}

	long := filepath.Join(parent, strings.Repeat("d", 90))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), Options{TempDir: long}); err == nil || !strings.Contains(err.Error(), "choose a shorter temporary directory") {
		t.Errorf("long path: %v", err)
	}
	if ents, _ := os.ReadDir(long); len(ents) != 0 {
		t.Errorf("long path: left %s behind", ents[0].Name())
	}
	os.Remove(long)

	if _, err := Start(context.Background(), Options{TempDir: parent, PgBin: parent}); err == nil || !strings.Contains(err.Error(), "--pg-bin") {
		t.Errorf("bad --pg-bin: %v", err)
	}
	empty("bad --pg-bin")
}
