package nspawn_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

type bootResult struct {
	exit    int
	unit    string
	db      string
	journal string
	console string
}

// boot renders the case through nix/wiring.nix, writes the units and boots
// a container that runs the backup unit once and exits.
func (w *world) boot(t *testing.T, c nixeval.Case) *bootResult {
	t.Helper()
	w.bootCount++
	c.Program, c.ConfigFile = optDir+"/bin/pgarchive", optDir+"/pgarchive.json"
	r := nixeval.Render(t, c)
	if len(r.Units) != 1 {
		t.Fatalf("rendered units %+v, want one", r.Units)
	}
	u := r.Units[0]
	suffix := suffixes[c.Backup.Compression]
	if want := dumpDir + "/" + u.DB + ".sql" + suffix; u.DumpPath != want {
		t.Fatalf("wiring dumps to %s, postgresqlBackup writes %s", u.DumpPath, want)
	}

	opt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(opt, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	linkOrCopy(t, w.bin, filepath.Join(opt, "bin", "pgarchive"))
	writeFile(t, filepath.Join(opt, "pgarchive.json"), r.SettingsJSON, 0o644)
	// What the module's runCommand does at build time.
	if out, err := exec.Command(w.bin, "check-config", filepath.Join(opt, "pgarchive.json")).CombinedOutput(); err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(opt, u.Name+"-start"), startScript(u, c.Backup.Compression, suffix), 0o755)

	units := t.TempDir()
	var creds strings.Builder
	for _, cred := range r.Credentials {
		fmt.Fprintf(&creds, "LoadCredential=%s\n", cred)
	}
	// As NixOS renders postgresqlBackup-<db> (Type, User, ExecStart of the
	// dump script) plus the module's additions. OnFailure= is the test's;
	// PGHOST/PGPORT point at the scratch cluster, which is not on the
	// default port.
	writeFile(t, filepath.Join(units, u.Name+".service"), fmt.Sprintf(`[Unit]
Description=Backup of %s database(s)
Wants=network-online.target
After=network-online.target
OnFailure=%s

[Service]
Type=oneshot
User=%s
Environment=PGHOST=/run/postgresql PGPORT=%d
TimeoutStartSec=300
ExecStart=%s/%s-start
ExecStartPost=%s
%s`, u.DB, failedUnit, w.pg.OSUser, w.pg.Port, optDir, u.Name, u.ExecStartPost, creds.String()), 0o644)

	// The container's exit status tells which path ran. Both paths first run
	// `journalctl --sync`, which returns only once journald has stored every
	// message sent before it: a plain SuccessAction=exit on the backup unit
	// can power off while pgarchive's last datagrams are still queued.
	outcome := func(name, description, requires, exec string, status int) {
		writeFile(t, filepath.Join(units, name), fmt.Sprintf(`[Unit]
Description=%s
%sSuccessAction=exit
SuccessActionExitStatus=%d
FailureAction=exit
FailureActionExitStatus=%d

[Service]
Type=oneshot
ExecStart=%s
ExecStart=%s --sync
`, description, requires, status, exitBroken, exec, harness.LookTool("journalctl")), 0o644)
	}
	outcome(failedUnit, "OnFailure handler of the backup unit", "", `/bin/echo "pgarchive-test: OnFailure fired"`, exitOnFailure)
	outcome(doneUnit, "the backup unit succeeded", "Requires="+u.Name+".service\nAfter="+u.Name+".service\n", "/bin/true", exitSuccess)
	writeFile(t, filepath.Join(units, target), "[Unit]\nDescription=pgarchive nspawn test\nWants="+u.Name+".service "+doneUnit+"\n", 0o644)

	b := &bootResult{unit: u.Name, db: u.DB, journal: t.TempDir()}
	b.console, b.exit = runContainer(t, nspawnBoot{
		exe: w.nspawn, machine: fmt.Sprintf("pgarchive-test-%d-%d", os.Getpid(), w.bootCount),
		units: units, journal: b.journal, target: target, timeout: 6 * time.Minute,
		binds: []string{
			"--bind-ro=" + opt + ":" + optDir,
			"--bind-ro=" + w.secrets + ":" + keysDir,
			"--bind=" + w.pg.DumpDir + ":" + dumpDir,
			"--bind=" + w.pg.SocketDir + ":/run/postgresql",
		},
	})
	t.Logf("boot %d: exit %d", w.bootCount, b.exit)
	return b
}

// nspawnBoot is one boot of the host's own tree under systemd-nspawn, with the
// test's units and a journal directory the test reads afterwards.
type nspawnBoot struct {
	exe, machine, units, journal, target string
	binds                                []string // extra --bind/--bind-ro flags
	timeout                              time.Duration
	hint                                 string // said when the boot does not end in time
}

// runContainer boots, waits for the container to power off (the target's
// SuccessAction/FailureAction) and returns its console and exit status.
func runContainer(t *testing.T, n nspawnBoot) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	args := []string{"--quiet", "--directory=/", "--volatile=yes", "--register=no", "--keep-unit",
		"--machine=" + n.machine, "--bind-ro=/etc",
		"--bind-ro=" + n.units + ":/run/systemd/system", "--bind=" + n.journal + ":/var/log/journal"}
	args = append(append(args, n.binds...), "--boot", "--", "systemd.unit="+n.target)
	cmd := exec.CommandContext(ctx, n.exe, args...)
	// SIGTERM makes nspawn power the container off cleanly.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	exit := 0
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("container did not exit in time%s\n%s", n.hint, tail(console.String(), 3000))
	case asExit(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("systemd-nspawn: %v\n%s", err, console.String())
	}
	t.Logf("%s: exit %d in %s", n.machine, exit, time.Since(start).Round(time.Millisecond))
	return console.String(), exit
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

func (b *bootResult) expectExit(t *testing.T, want int) {
	t.Helper()
	if b.exit != want {
		t.Fatalf("container exited %d, want %d\nunit journal:\n%s\nconsole tail:\n%s", b.exit, want,
			messages(b.entries(t, "_SYSTEMD_UNIT="+b.unit+".service")), tail(b.console, 3000))
	}
}

func (b *bootResult) entries(t *testing.T, match ...string) []map[string]string {
	t.Helper()
	return (&harness.Journald{JournalDir: b.journal}).Entries(t, match...)
}

// startScript is postgresqlBackup's dump script for one database, with the
// same rotation, umask and in-progress name.
func startScript(u nixeval.Unit, compression, suffix string) string {
	dump := harness.PostgresBinDir + "/pg_dump -C " + u.DB
	if u.DB == "all" {
		dump = harness.PostgresBinDir + "/pg_dumpall"
	}
	compress := map[string]string{"gzip": "gzip -c -6 --rsyncable", "zstd": "zstd -q -c -6 --rsyncable", "none": "cat"}[compression]
	path := func(infix string) string { return dumpDir + "/" + u.DB + infix + ".sql" + suffix }
	return fmt.Sprintf(`#!/bin/bash
set -e -o pipefail
umask 0077
if [ -e %[1]s ]; then
  rm -f %[4]s/%[5]s.prev.sql %[4]s/%[5]s.prev.sql.gz %[4]s/%[5]s.prev.sql.zstd
  mv %[1]s %[2]s
fi
%[6]s | %[7]s > %[3]s
mv %[3]s %[1]s
`, path(""), path(".prev"), path(".in-progress"), dumpDir, u.DB, dump, compress)
}

func decompress(t *testing.T, data []byte, compression string) []byte {
	t.Helper()
	switch compression {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case "zstd":
		cmd := exec.Command(harness.LookTool("zstd"), "-d", "-c", "-q")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd -d: %v", err)
		}
		return out
	}
	return data
}

func lookupUID(t *testing.T, name string) string {
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func linkOrCopy(t *testing.T, src, dst string) {
	t.Helper()
	if os.Link(src, dst) == nil {
		return
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(data), 0o755)
}

func messages(entries []map[string]string) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  [%s] %s", e["PRIORITY"], e["MESSAGE"])
		for k, v := range e {
			if strings.HasPrefix(k, "PGARCHIVE_") {
				fmt.Fprintf(&b, " %s=%s", k, v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func keysOf(m map[string]map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
