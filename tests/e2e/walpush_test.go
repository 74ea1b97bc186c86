package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// walObjects lists the WAL files (with a manifest) each upstream holds.
func (p *pitrWorld) walObjects(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, u := range p.upstreams(t) {
		var files []string
		for _, k := range u.list(p.cluster.Folder("")) {
			if f, ok := walname.ParseKey(p.cluster, "", strings.TrimSuffix(k, naming.ManifestSuffix)); ok && strings.HasSuffix(k, naming.ManifestSuffix) {
				files = append(files, f.Name)
			}
		}
		sort.Strings(files)
		out = append(out, files)
	}
	return out
}

func (p *pitrWorld) archiverFailures(t *testing.T) int {
	n, _ := strconv.Atoi(p.pg.Query(t, "postgres", "SELECT failed_count FROM pg_stat_archiver"))
	return n
}

// TestWALPushUpstreamDown: with the default durability a stopped MinIO
// holds archiving up (PostgreSQL counts failures and keeps the segment
// .ready) and nothing is acknowledged; once it is back, every segment is
// on every upstream. With one-upstream-and-backlog the segment is
// acknowledged from one upstream plus the backlog, which the next push
// delivers.
func TestWALPushUpstreamDown(t *testing.T) {
	p := newPITRWorld(t)
	p.switchAndWait(t)
	p.minios[1].Stop()
	p.pg.Exec(t, "postgres", "CREATE TABLE held AS SELECT generate_series(1, 1000) n")
	seg := p.pg.Query(t, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(90 * time.Second)
	for p.archiverFailures(t) == 0 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	if p.archiverFailures(t) == 0 {
		t.Fatalf("no archiver failure while minio-b is down:\n%s", tailOf(p.pg.Log(t), 2000))
	}
	if last := p.pg.Query(t, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"); last >= seg {
		t.Fatalf("%s was acknowledged (last archived %s) while minio-b was down", seg, last)
	}
	if _, err := os.Stat(filepath.Join(p.pg.DataDir, "pg_wal", "archive_status", seg+".ready")); err != nil {
		t.Errorf("%s is not waiting for the archiver: %v", seg, err)
	}
	if !strings.Contains(p.pg.Log(t), "upstream minio-b") {
		t.Errorf("the server log (wal-push's stderr) does not name the failing upstream:\n%s", tailOf(p.pg.Log(t), 2000))
	}
	p.minios[1].Start(t)
	waitArchived(t, p.pg, seg)
	all := p.walObjects(t)
	for i := range all {
		if strings.Join(all[i], " ") != strings.Join(all[0], " ") {
			t.Errorf("upstream %d holds %v, upstream 0 %v", i, all[i], all[0])
		}
	}

	// One upstream and the backlog.
	state := filepath.Join(p.dir, "state")
	os.Mkdir(state, 0o700)
	chownTo(t, p.pg, state)
	cmd := strings.Replace(p.pushCmd, " wal-push ", " --state-dir "+state+" wal-push --durability one-upstream-and-backlog ", 1)
	p.pg.Exec(t, "postgres", "ALTER SYSTEM SET archive_command = '"+cmd+"'")
	p.pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
	time.Sleep(time.Second)
	p.minios[1].Stop()
	seg2 := p.switchAndWait(t) // acknowledged with minio-b down
	entries, _ := filepath.Glob(filepath.Join(state, "wal-backlog", "entries", "*", "*", seg2))
	if len(entries) != 1 {
		t.Fatalf("%s acknowledged, but not in the backlog: %v", seg2, entries)
	}
	if data := mustRead(t, filepath.Join(entries[0], "data.age")); bytes.Contains(data, []byte("held")) {
		t.Error("the backlog holds plaintext")
	}
	p.minios[1].Start(t)
	seg3 := p.switchAndWait(t) // delivers the backlog first
	all = p.walObjects(t)
	for i := range all {
		if !slices.Contains(all[i], seg2) || !slices.Contains(all[i], seg3) {
			t.Errorf("upstream %d lacks %s or %s after minio-b returned: %v", i, seg2, seg3, all[i])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(state, "wal-backlog", "entries", "*", "*", "*")); len(left) != 0 {
		t.Errorf("backlog not emptied: %v", left)
	}
}

// TestWALPushKilled: wal-push killed with SIGKILL at any moment leaves the
// file either archived whole (a manifest, data that fetches) or not at all
// (no manifest), and pushing it again then succeeds: nothing is lost.
func TestWALPushKilled(t *testing.T) {
	p := newPITRWorld(t)
	seg := p.switchAndWait(t)
	dir := t.TempDir()
	r, _ := func() (run, []byte) {
		dest := filepath.Join(dir, seg)
		r := p.pgarchive(t, nil, "wal-fetch", "--pgdata", p.pg.DataDir, "-i", p.idPath, seg, dest)
		return r, nil
	}()
	if r.exit != 0 {
		t.Fatalf("wal-fetch: %s", r.stderr)
	}
	content := mustRead(t, filepath.Join(dir, seg))
	for i, delay := range []time.Duration{60, 120, 180, 250, 350, 500} {
		name := walname.SegmentName(7, uint64(i+1), 16<<20)
		path := filepath.Join(dir, name)
		os.WriteFile(path, content, 0o600)
		cmd := exec.Command(p.bin, "--rclone-config", p.conf, "--recipient", p.recip, "--log-target", "stderr", "wal-push", "--pgdata", p.pg.DataDir, path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		key := p.cluster.Key("", name)
		for _, m := range p.minios {
			if len(m.ListObjects(t, key+naming.ManifestSuffix)) == 1 && len(m.ListObjects(t, key)) == 0 {
				t.Errorf("killed after %v: a manifest without data on %s", delay, m.Bucket)
			}
		}
		if r := p.pgarchive(t, nil, "--recipient", p.recip, "wal-push", "--pgdata", p.pg.DataDir, path); r.exit != 0 {
			t.Fatalf("killed after %v: pushing again: %d\n%s", delay, r.exit, r.stderr)
		}
		out := filepath.Join(dir, "back")
		if r := p.pgarchive(t, nil, "wal-fetch", "--pgdata", p.pg.DataDir, "-i", p.idPath, name, out); r.exit != 0 || !bytes.Equal(mustRead(t, out), content) {
			t.Fatalf("killed after %v: fetching back: %d\n%s", delay, r.exit, r.stderr)
		}
	}
}

// TestWALPushAsync: with --async the uploader pushes what PostgreSQL marks
// ready and archive_command acknowledges only its "ok" markers: with
// minio-b stopped nothing is acknowledged (failures counted, the error
// names the upstream); the uploader killed with SIGKILL is replaced by the
// next call; once minio-b is back every segment is on every upstream.
func TestWALPushAsync(t *testing.T) {
	p := newPITRWorld(t, "--async", "--async-wait", "3s")
	p.pgbench(t, "-i", "-s", "3", "postgres")
	p.switchAndWait(t)
	if out, err := exec.Command("pgrep", "-f", "wal-push.*--uploader").Output(); err != nil || len(out) == 0 {
		t.Fatalf("no uploader runs: %v", err)
	}
	all := p.walObjects(t)
	if len(all[0]) < 3 || strings.Join(all[0], " ") != strings.Join(all[1], " ") || strings.Join(all[0], " ") != strings.Join(all[2], " ") {
		t.Fatalf("upstreams differ: %v", all)
	}

	p.minios[1].Stop()
	failed := p.archiverFailures(t)
	p.pg.Exec(t, "postgres", "CREATE TABLE held AS SELECT generate_series(1, 1000) n")
	seg := p.pg.Query(t, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(90 * time.Second)
	for p.archiverFailures(t) == failed && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	if last := p.pg.Query(t, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"); last >= seg || p.archiverFailures(t) == failed {
		t.Fatalf("%s acknowledged (last archived %s) or no failure counted while minio-b was down", seg, last)
	}
	// The uploader's verdict reaches the server log through the next call.
	for deadline := time.Now().Add(90 * time.Second); !strings.Contains(p.pg.Log(t), "minio-b") && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(p.pg.Log(t), "minio-b") {
		t.Errorf("the server log does not name minio-b:\n%s", tailOf(p.pg.Log(t), 2000))
	}
	// SIGKILL the uploader; the next call starts another.
	exec.Command("pkill", "-KILL", "-f", "wal-push.*--uploader").Run()
	p.minios[1].Start(t)
	waitArchived(t, p.pg, seg)
	all = p.walObjects(t)
	for i := range all {
		if !slices.Contains(all[i], seg) || strings.Join(all[i], " ") != strings.Join(all[0], " ") {
			t.Errorf("upstream %d holds %v, upstream 0 %v", i, all[i], all[0])
		}
	}
}
