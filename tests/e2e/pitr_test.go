package e2e

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/walname"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// pitrWorld is a PostgreSQL 15 cluster archiving its WAL with wal-push to
// the seed union (two MinIO and a local folder), as the account the server
// runs as.
type pitrWorld struct {
	*world
	pg      *harness.Postgres
	idPath  string
	recip   string
	cluster walname.Cluster
	pushCmd string
}

func newPITRWorld(t *testing.T, extraPush ...string) *pitrWorld {
	t.Helper()
	base, err := os.MkdirTemp("", "pgpitr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	w := newWorldIn(t, base, nil)
	idPath, recip := harness.AgeKeygen(t, false)
	// The server's account runs wal-push and wal-fetch: it reads the
	// rclone.conf and the key (a test's shortcut; NixOS passes them as
	// credentials) and writes the local upstream.
	id := filepath.Join(base, "id.txt")
	os.WriteFile(id, mustRead(t, idPath), 0o644)
	os.Chmod(w.conf, 0o644)
	pg := harness.StartPostgres(t)
	chownTo(t, pg, w.local)
	pw := &pitrWorld{world: w, pg: pg, idPath: id, recip: recip}
	args := append([]string{w.bin, "--rclone-config", w.conf, "--recipient", recip, "--log-target", "stderr", "wal-push"}, extraPush...)
	pw.pushCmd = strings.Join(args, " ") + " %p"
	pg.Exec(t, "postgres", "ALTER SYSTEM SET archive_mode = on")
	pg.Exec(t, "postgres", "ALTER SYSTEM SET archive_command = '"+strings.ReplaceAll(pw.pushCmd, "'", "''")+"'")
	pg.Exec(t, "postgres", "ALTER SYSTEM SET wal_level = replica")
	pg.Restart(t)
	if pw.cluster, err = walname.ReadCluster(pg.DataDir); err != nil {
		t.Fatal(err)
	}
	return pw
}

func chownTo(t *testing.T, pg *harness.Postgres, dir string) {
	t.Helper()
	if pg.OSUser == "" {
		return
	}
	if out, err := exec.Command("chown", "-R", pg.OSUser, dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", dir, err, out)
	}
}

// switchAndWait ends the current segment and waits until the archiver
// has stored it (or failed at it for 60 s).
func (p *pitrWorld) switchAndWait(t *testing.T) string {
	t.Helper()
	// A switch right after another is a no-op: write something first.
	p.pg.Exec(t, "postgres", "CREATE TABLE IF NOT EXISTS switches (at timestamptz); INSERT INTO switches VALUES (now())")
	seg := p.pg.Query(t, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		last := p.pg.Query(t, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		if last >= seg && len(last) == 24 {
			return seg
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("segment %s not archived in 90 s: %s\nserver log:\n%s", seg,
		p.pg.Query(t, "postgres", "SELECT * FROM pg_stat_archiver"), tailOf(p.pg.Log(t), 3000))
	return ""
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *pitrWorld) pgbench(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.pg.Bin("pgbench"), args...)
	cmd.Env = append(os.Environ(), p.pg.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, tailOf(string(out), 2000))
	}
}

// waitPromoted waits for a restored server to finish recovery.
func waitPromoted(t *testing.T, pg *harness.Postgres) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if pg.Query(t, "postgres", "SELECT pg_is_in_recovery()") == "f" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("restored server still in recovery after 3 minutes:\n%s", tailOf(pg.Log(t), 4000))
}

// TestPITR: pgbench with archiving on, a base backup, more writes, a time
// T and its row count, more writes; restore-cluster --to-time T into a new
// directory passes pg_verifybackup, starts, and has T's row count. Then the
// restored cluster is promoted onto timeline 2 and keeps archiving; a
// restore --latest follows timeline 2 (its .history file) to its newest
// rows.
func TestPITR(t *testing.T) {
	p := newPITRWorld(t)
	// The identity wal-push reads from pg_control is PostgreSQL's own.
	out, err := exec.Command(p.pg.Bin("pg_controldata"), p.pg.DataDir).Output()
	m := regexp.MustCompile(`Database system identifier:\s+(\d+)`).FindSubmatch(out)
	if err != nil || m == nil || string(m[1]) != strconv.FormatUint(p.cluster.SystemID, 10) {
		t.Fatalf("pg_controldata disagrees with walname.ReadCluster (%v): %v\n%s", p.cluster, err, out)
	}
	p.pgbench(t, "-i", "-s", "5", "postgres")
	base := p.pgarchive(t, nil, "--recipient", p.recip, "basebackup", "--database-cluster-connection",
		"host="+p.pg.SocketDir+" port="+strconv.Itoa(p.pg.Port)+" user=postgres dbname=postgres")
	if base.exit != 0 {
		t.Fatalf("basebackup: %d\n%s\nserver log:\n%s", base.exit, base.stderr, tailOf(p.pg.Log(t), 3000))
	}
	p.pgbench(t, "-c", "2", "-t", "300", "postgres")
	p.pg.Exec(t, "postgres", "CREATE TABLE marker (n int, at timestamptz DEFAULT clock_timestamp())")
	p.pg.Exec(t, "postgres", "INSERT INTO marker (n) SELECT generate_series(1, 1000)")
	atT := p.pg.Query(t, "postgres", "SELECT count(*) FROM pgbench_history") + "/" + p.pg.Query(t, "postgres", "SELECT count(*) FROM marker")
	time.Sleep(1100 * time.Millisecond)
	target := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	p.pg.Exec(t, "postgres", "INSERT INTO marker (n) SELECT generate_series(1001, 1500)")
	p.pgbench(t, "-c", "2", "-t", "200", "postgres")
	p.switchAndWait(t)

	list := p.pgarchive(t, nil, "list")
	if !strings.Contains(list.stdout, p.cluster.BaseDatabase()) || !strings.Contains(list.stdout, "basebackup") {
		t.Errorf("list does not show the base backup:\n%s", list.stdout)
	}
	// Every segment is on every upstream, with its manifest.
	for _, u := range p.upstreams(t) {
		keys := u.list(p.cluster.Folder(""))
		if len(keys) < 6 {
			t.Errorf("%s holds only %d WAL objects: %v", u.name, len(keys), keys)
		}
	}

	dir := filepath.Join(p.dir, "restored")
	r := p.pgarchive(t, nil, "restore-cluster", "--to-time", target.Format(time.RFC3339Nano), "--target-dir", dir, "-i", p.idPath)
	if r.exit != 0 {
		t.Fatalf("restore-cluster: %d\n%s", r.exit, r.stderr)
	}
	if out, err := exec.Command(p.pg.Bin("pg_verifybackup"), "-n", dir).CombinedOutput(); err != nil {
		t.Fatalf("pg_verifybackup -n %s: %v\n%s", dir, err, out)
	}
	restored := harness.StartPostgresOn(t, dir)
	waitPromoted(t, restored)
	got := restored.Query(t, "postgres", "SELECT count(*) FROM pgbench_history") + "/" + restored.Query(t, "postgres", "SELECT count(*) FROM marker")
	if got != atT {
		t.Fatalf("restored to %s: history/marker rows %s, want %s at T\n%s", target, got, atT, tailOf(restored.Log(t), 3000))
	}
	if !strings.Contains(restored.Log(t), "recovery stopping before commit") {
		t.Errorf("the server log does not show recovery stopping at the target:\n%s", tailOf(restored.Log(t), 3000))
	}

	// Timeline 2: the restored cluster was promoted; it archives on.
	if tli := restored.Query(t, "postgres", "SELECT timeline_id FROM pg_control_checkpoint()"); tli != "2" {
		t.Logf("timeline after promotion: %s", tli)
	}
	restored.Exec(t, "postgres", "INSERT INTO marker (n) SELECT generate_series(5001, 5007)")
	seg := restored.Query(t, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
	if !strings.HasPrefix(seg, "00000002") {
		t.Fatalf("restored cluster writes %s, not timeline 2", seg)
	}
	waitArchived(t, restored, seg)
	if keys := p.upstreams(t)[0].list(p.cluster.Key("", "00000002.history")); len(keys) == 0 {
		t.Fatalf("00000002.history was not archived")
	}
	// A base backup of timeline 1 followed to the newest WAL reaches
	// timeline 2's rows through the history file.
	dir2 := filepath.Join(p.dir, "latest")
	if r := p.pgarchive(t, nil, "restore-cluster", "--latest", "--target-dir", dir2, "-i", p.idPath); r.exit != 0 {
		t.Fatalf("restore-cluster --latest: %d\n%s", r.exit, r.stderr)
	}
	restored.Stop()
	latest := harness.StartPostgresOn(t, dir2)
	waitPromoted(t, latest)
	if got := latest.Query(t, "postgres", "SELECT count(*) FROM marker WHERE n > 5000"); got != "7" {
		t.Fatalf("restore --latest did not follow timeline 2: %s rows after promotion, want 7\n%s", got, tailOf(latest.Log(t), 3000))
	}
}

func waitArchived(t *testing.T, pg *harness.Postgres, seg string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if last := pg.Query(t, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"); last >= seg && len(last) == 24 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not archived:\n%s", seg, tailOf(pg.Log(t), 3000))
}

// TestDrillPITR: drill --to-time T replays the archive into a scratch
// cluster up to T and its checks see T's rows; --pitr sees the newest;
// a check that does not hold fails the drill; nothing is left behind and
// the scratch cluster pushed no WAL into the archive.
func TestDrillPITR(t *testing.T) {
	p := newPITRWorld(t)
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("drills run as user postgres: %v", err)
	}
	conn := "host=" + p.pg.SocketDir + " port=" + strconv.Itoa(p.pg.Port) + " user=postgres dbname=postgres"
	if r := p.pgarchive(t, nil, "--recipient", p.recip, "basebackup", "--connection", conn); r.exit != 0 {
		t.Fatalf("basebackup: %s", r.stderr)
	}
	p.pg.Exec(t, "postgres", "CREATE TABLE orders AS SELECT generate_series(1, 100) n")
	time.Sleep(1100 * time.Millisecond)
	target := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	p.pg.Exec(t, "postgres", "INSERT INTO orders SELECT generate_series(101, 150)")
	p.switchAndWait(t)
	before := len(p.walObjects(t)[0])

	tmp := filepath.Join(p.dir, "scratch")
	os.Mkdir(tmp, 0o700)
	chownTo(t, p.pg, tmp)
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	drill := func(args ...string) (int, string) {
		full := append([]string{"--rclone-config", p.conf, "--log-target", "stderr", "--pg-bin", harness.PostgresBinDir,
			"drill", "--temp-dir", tmp, "-i", p.idPath}, args...)
		cmd := exec.Command(p.bin, full...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + p.dir, "TMPDIR=" + tmp}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, _ := cmd.CombinedOutput()
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("drill left %v in its temp dir", ents)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := drill("--to-time", target.Format(time.RFC3339Nano), "--check", "select count(*) from orders", "--expect", "= 100"); code != 0 ||
		!strings.Contains(out, "drill passed") {
		t.Fatalf("drill --to-time: %d\n%s", code, out)
	}
	if code, out := drill("--pitr", "--check", "select count(*) from orders", "--expect", "= 150"); code != 0 {
		t.Fatalf("drill --pitr: %d\n%s", code, out)
	}
	if code, out := drill("--pitr", "--check", "select count(*) from orders", "--expect", "= 999"); code != 1 || !strings.Contains(out, "drill FAILED") {
		t.Fatalf("drill --pitr with a failing check: %d\n%s", code, out)
	}
	if after := len(p.walObjects(t)[0]); after != before {
		t.Errorf("the drills pushed WAL into the archive: %d files before, %d after", before, after)
	}
}

// TestBasebackupFailures: a server that does not archive is refused before
// any upload; a pg_basebackup cut short mid-stream (the real tool, its
// output truncated, exit 1) fails the run and leaves no complete copy.
func TestBasebackupFailures(t *testing.T) {
	w := newWorld(t, nil)
	pg := harness.StartPostgres(t)
	_, recip := harness.AgeKeygen(t, false)
	conn := "host=" + pg.SocketDir + " port=" + strconv.Itoa(pg.Port) + " user=postgres dbname=postgres"
	r := w.pgarchive(t, nil, "--recipient", recip, "basebackup", "--connection", conn)
	if r.exit != 1 || !strings.Contains(r.stderr, "archive_mode off") {
		t.Fatalf("basebackup of a server that does not archive: %d\n%s", r.exit, r.stderr)
	}
	pg.Exec(t, "postgres", "ALTER SYSTEM SET archive_mode = on")
	pg.Exec(t, "postgres", "ALTER SYSTEM SET archive_command = '/bin/true'")
	pg.Restart(t)
	pg.GenerateData(t, "postgres", 20000)
	bin := t.TempDir()
	for _, tool := range []string{"psql", "pg_restore", "initdb", "pg_ctl"} {
		os.Symlink(pg.Bin(tool), filepath.Join(bin, tool))
	}
	cut := "#!/bin/sh\n" + pg.Bin("pg_basebackup") + " \"$@\" | head -c 300000\nexit 1\n"
	os.WriteFile(filepath.Join(bin, "pg_basebackup"), []byte(cut), 0o755)
	r = w.pgarchive(t, nil, "--recipient", recip, "--pg-bin", bin, "basebackup", "--connection", conn, "--compression", "none")
	if r.exit != 1 || !strings.Contains(r.stderr, "pg_basebackup failed") {
		t.Fatalf("basebackup cut short: %d\n%s", r.exit, r.stderr)
	}
	for _, u := range w.upstreams(t) {
		for _, k := range u.list("") {
			if strings.HasSuffix(k, ".manifest.json") {
				t.Errorf("%s holds %s after a failed base backup", u.name, k)
			}
		}
	}
	// The same with the real tool whole: stored.
	if r := w.pgarchive(t, nil, "--recipient", recip, "basebackup", "--connection", conn); r.exit != 0 {
		t.Fatalf("basebackup: %s", r.stderr)
	}
}
