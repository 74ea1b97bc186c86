package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// drillWorld archives real dumps into a world that an unprivileged account
// can read: drill refuses root, because initdb does.
type drillWorld struct {
	*readWorld
	acct    *user.User
	tmp     string // --temp-dir, watched for leftovers
	pgBin   string
	wrongID string
	global  []string // more global flags, before the subcommand
}

func newDrillWorld(t *testing.T) *drillWorld {
	t.Helper()
	harness.NeedRoot(t)
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("drill tests run pgarchive as user postgres: %v", err)
	}
	base, err := os.MkdirTemp("", "pgdrill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	w := newWorldIn(t, base, nil)
	rw := newReadWorld(t, w, 1500)
	wrongID, _ := harness.AgeKeygen(t, false)
	d := &drillWorld{readWorld: rw, acct: acct, tmp: filepath.Join(base, "scratch"), pgBin: harness.PostgresBinDir}
	// A truncated dump, archived as db2 past archive's own check (as one
	// archived before that check existed): every copy decrypts and matches
	// its manifest, but pg_dump never finished it.
	cut := rw.sqlPlain[:len(rw.sqlPlain)*2/3]
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(cut)
	zw.Close()
	trunc := filepath.Join(base, "db2.sql.gz")
	os.WriteFile(trunc, gz.Bytes(), 0o600)
	_, recip := keyOf(t, rw.idPath)
	if r := w.pgarchive(t, nil, "--recipient", recip, "archive", "--database", "db2", "--file", trunc, "--skip-dump-check"); r.exit != 0 {
		t.Fatalf("archive db2: %s", r.stderr)
	}
	for _, p := range []string{rw.idPath, wrongID} {
		dst := filepath.Join(base, filepath.Base(filepath.Dir(p))+"-"+filepath.Base(p))
		os.WriteFile(dst, mustRead(t, p), 0o600)
		if p == rw.idPath {
			d.idPath = dst
		} else {
			d.wrongID = dst
		}
	}
	os.MkdirAll(d.tmp, 0o700)
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	return d
}

// keyOf returns an identity file's recipient (age-keygen -y).
func keyOf(t *testing.T, idPath string) (string, string) {
	out, err := exec.Command(harness.Tool(t, "age-keygen"), "-y", idPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	return idPath, strings.TrimSpace(string(out))
}

// drill runs pgarchive drill as the postgres account.
func (d *drillWorld) drill(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	uid, _ := strconv.Atoi(d.acct.Uid)
	gid, _ := strconv.Atoi(d.acct.Gid)
	full := append(append([]string{"--rclone-config", d.conf, "--log-target", "stderr", "--pg-bin", d.pgBin}, d.global...),
		append([]string{"drill", "--temp-dir", d.tmp}, args...)...)
	cmd := exec.Command(d.bin, full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + d.dir, "TMPDIR=" + d.tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

func (d *drillWorld) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd, out := d.drill(t, args...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	d.noLeftovers(t)
	return code, out.String()
}

// noLeftovers: no scratch directory and no postgres process started there.
func (d *drillWorld) noLeftovers(t *testing.T) {
	t.Helper()
	if ents, _ := os.ReadDir(d.tmp); len(ents) > 0 {
		t.Fatalf("drill left %d entries in its temp dir: %v", len(ents), ents)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(d.tmp)) {
			t.Fatalf("a process still runs in the drill's temp dir: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func TestDrill(t *testing.T) {
	d := newDrillWorld(t)

	code, out := d.run(t, "-d", "db1", "--identity-file", d.idPath,
		"--check", "select count(*) from registrations", "--expect", ">= 1500",
		"--check", "select count(*) from events", "--expect", "3000")
	if code != 0 || !strings.Contains(out, "db1: drill passed") || !strings.Contains(out, "2 checks passed") {
		t.Fatalf("a fresh archive must pass the drill (exit %d):\n%s", code, out)
	}

	checksFile := filepath.Join(d.dir, "checks.json")
	os.WriteFile(checksFile, []byte(`{"db1": [{"query": "select count(*) from registrations", "expect": ">= 1000000"}]}`), 0o644)
	code, out = d.run(t, "-d", "db1", "-i", d.idPath, "--checks-file", checksFile)
	if code == 0 || !strings.Contains(out, "db1: drill FAILED") || !strings.Contains(out, "got 1500, want >= 1000000") {
		t.Fatalf("a failing check must fail the drill (exit %d):\n%s", code, out)
	}

	// As the NixOS unit runs it: no flags; the database, checks and key
	// come from the settings file's drill section.
	conf := filepath.Join(d.dir, "drill.json")
	os.WriteFile(conf, []byte(fmt.Sprintf(`{"identity-file": %q, "drill": {"database": ["db1"], "max-age": "0", "checks-file": %q}}`,
		d.idPath, checksFile)), 0o644)
	d.global = []string{"--config", conf}
	code, out = d.run(t)
	if code == 0 || !strings.Contains(out, "got 1500, want >= 1000000") || strings.Contains(out, "db2") {
		t.Fatalf("the drill section's checks must apply to its one database (exit %d):\n%s", code, out)
	}
	os.WriteFile(conf, []byte(fmt.Sprintf(`{"identity-file": %q, "drill": {"database": ["db1"], "max-age": "1ns"}}`, d.idPath)), 0o644)
	code, out = d.run(t)
	d.global = nil
	if code == 0 || !strings.Contains(out, "more than --max-age 1ns") {
		t.Fatalf("the drill section's max-age must apply (exit %d):\n%s", code, out)
	}

	code, out = d.run(t, "-d", "db1", "-i", d.idPath, "--max-age", "1ns")
	if code == 0 || !strings.Contains(out, "more than --max-age 1ns") {
		t.Fatalf("a stale archive must fail the drill (exit %d):\n%s", code, out)
	}

	code, out = d.run(t, "-d", "db1", "-i", d.wrongID)
	if code == 0 || !strings.Contains(out, "does not decrypt") {
		t.Fatalf("a wrong key must fail the drill (exit %d):\n%s", code, out)
	}

	code, out = d.run(t, "-d", "db2", "-i", d.idPath)
	if code == 0 || !strings.Contains(out, "db2: drill FAILED") || !strings.Contains(out, "completion line") {
		t.Fatalf("a truncated dump must fail the drill (exit %d):\n%s", code, out)
	}

	// Both databases at once: one line each, non-zero because db2 fails.
	code, out = d.run(t, "-i", d.idPath)
	if code == 0 || !strings.Contains(out, "db1: drill passed") || !strings.Contains(out, "db2: drill FAILED") {
		t.Fatalf("drill of every database (exit %d):\n%s", code, out)
	}
}

// TestDrillSIGTERM stops a drill while its scratch cluster runs: it must
// tear the cluster down and remove its directory before exiting.
func TestDrillSIGTERM(t *testing.T) {
	d := newDrillWorld(t)
	cmd, out := d.drill(t, "-d", "db1", "-i", d.idPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(d.tmp, "*", "*", "postmaster.pid")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no scratch cluster appeared:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("an interrupted drill must not succeed:\n%s", out)
	}
	d.noLeftovers(t)
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("the drill should say it was interrupted:\n%s", out)
	}
}

// TestDrillJournald runs a passing drill as a service against a real
// journald: one summary entry with the drill's fields.
func TestDrillJournald(t *testing.T) {
	d := newDrillWorld(t)
	harness.Need(t, "journalctl", "setpriv")
	j := harness.StartJournald(t)
	exit := j.RunAsService(t, []string{"TMPDIR=" + d.tmp}, "pgarchive-drill", harness.Tool(t, "setpriv"),
		"--reuid="+d.acct.Uid, "--regid="+d.acct.Gid, "--clear-groups", "--",
		d.bin, "--rclone-config", d.conf, "--pg-bin", d.pgBin, "drill", "--temp-dir", d.tmp, "-d", "db1", "-i", d.idPath)
	if exit != 0 {
		t.Fatalf("drill under journald exited %d: %v", exit, j.Entries(t, "SYSLOG_IDENTIFIER=pgarchive"))
	}
	entries := j.Entries(t, "PGARCHIVE_DRILL=passed")
	if len(entries) != 1 || entries[0]["PGARCHIVE_DATABASE"] != "db1" || !strings.HasPrefix(entries[0]["PGARCHIVE_ARCHIVE"], "db1/db1_") ||
		entries[0]["PRIORITY"] != "6" {
		t.Fatalf("want one drill summary entry for db1, got %v", entries)
	}
	d.noLeftovers(t)
}
