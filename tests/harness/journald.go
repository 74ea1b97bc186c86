package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// journaldConf is the configuration of the private journald. Persistent
// storage makes it write into the directory we bind over /var/log/journal;
// everything that could reach the host (kmsg, syslog, wall, console) is off.
const journaldConf = `[Journal]
Storage=persistent
ReadKMsg=no
ForwardToSyslog=no
ForwardToWall=no
ForwardToConsole=no
ForwardToKMsg=no
`

// journaldScript runs inside `unshare -m --propagation private`, so every
// mount below vanishes with the namespace and the host never sees our
// journald: a tmpfs over /run/systemd gives private journal sockets, a tmpfs
// over /var/log gives a place to bind the journal directory even on hosts
// without /var/log/journal (the command therefore sees an empty /var/log).
// The command's exit status goes to $J/rc; its absence means setup failed.
const journaldScript = `set -eu
J=$1; MODE=$2; IDENT=$3; shift 3
exec 3>&1 4>&2 >>"$J/setup.log" 2>&1
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
touch /run/systemd/journal/flushed
cp "$J/journald.conf" /run/systemd/journald.conf.d/zz-harness.conf
if [ -f /etc/systemd/journald.conf ]; then mount --bind "$J/journald.conf" /etc/systemd/journald.conf; fi
mount -t tmpfs -o mode=0755 tmpfs /var/log
mkdir /var/log/journal
mount --bind "$J/journal" /var/log/journal
"$JOURNALD" >>"$J/journald.log" 2>&1 </dev/null &
jpid=$!
i=0
until [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ]; do
  kill -0 "$jpid" 2>/dev/null || { echo "systemd-journald exited before creating its sockets"; exit 1; }
  i=$((i+1))
  [ "$i" -le 1000 ] || { echo "systemd-journald sockets missing after 10s"; kill "$jpid"; exit 1; }
  sleep 0.01
done
set +e
if [ "$MODE" = service ]; then
  # What systemd gives a service: stdout+stderr are journal streams and
  # JOURNAL_STREAM names the stream's device:inode (systemd-cat does not set it).
  systemd-cat -t "$IDENT" bash -c 'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$@"' harness "$@" </dev/null
else
  "$@" >&3 2>&4
fi
rc=$?
journalctl --sync
kill -TERM "$jpid"
wait "$jpid"
echo "$rc" > "$J/rc"
`

// Journald is a private systemd-journald whose journal files persist in Dir
// across Run calls, so Entries sees everything logged so far.
type Journald struct {
	Dir        string // journal files: JournalDir/<machine-id>/system.journal
	JournalDir string
	journald   string
}

// StartJournald prepares a journal directory. journald itself only runs for
// the duration of each Run, inside the same mount namespace as the command,
// because a client must see journald's /run/systemd/journal/socket.
func StartJournald(t testing.TB) *Journald {
	t.Helper()
	NeedRoot(t)
	Need(t, "unshare", "mount", "bash", "systemd-journald", "journalctl", "systemd-cat", "stat")
	dir := t.TempDir()
	j := &Journald{Dir: dir, JournalDir: filepath.Join(dir, "journal"), journald: LookTool("systemd-journald")}
	if err := os.Mkdir(j.JournalDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journald.conf"), []byte(journaldConf), 0o644); err != nil {
		t.Fatal(err)
	}
	return j
}

// Run runs a command while journald runs; the command's stdout and stderr
// are returned (not journaled), and whatever it sends to the journal socket
// lands in the journal. exit is the command's exit status.
func (j *Journald) Run(t testing.TB, env []string, name string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	return j.run(t, env, "plain", "", name, args...)
}

// RunAsService runs a command the way systemd runs a service: stdout and
// stderr are journal streams tagged with identifier and JOURNAL_STREAM is set.
func (j *Journald) RunAsService(t testing.TB, env []string, identifier, name string, args ...string) (exit int) {
	t.Helper()
	_, _, exit = j.run(t, env, "service", identifier, name, args...)
	return exit
}

func (j *Journald) run(t testing.TB, env []string, mode, ident, name string, args ...string) (string, string, int) {
	t.Helper()
	rcPath := filepath.Join(j.Dir, "rc")
	os.Remove(rcPath)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	full := append([]string{"-m", "--propagation", "private", "bash", "-c", journaldScript, "journald-harness",
		j.Dir, mode, ident, name}, args...)
	cmd := exec.CommandContext(ctx, LookTool("unshare"), full...)
	cmd.Env = append(append(os.Environ(), env...), "JOURNALD="+j.journald)
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	runErr := cmd.Run()
	rcText, err := os.ReadFile(rcPath)
	if err != nil {
		t.Fatalf("journald run of %s failed before/after the command (%v): %v\nsetup log:\n%s\njournald log:\n%s\nstderr:\n%s",
			name, runErr, err, logTail(filepath.Join(j.Dir, "setup.log"), 2000),
			logTail(filepath.Join(j.Dir, "journald.log"), 2000), tailString(e.String(), 2000))
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(rcText)))
	if err != nil {
		t.Fatalf("journald run: bad exit status %q", rcText)
	}
	return o.String(), e.String(), rc
}

// Entries reads the journal back with `journalctl -D -o json --all`, filtered
// by journalctl matches such as "SYSLOG_IDENTIFIER=pgarchive". journalctl
// prints non-UTF-8 or binary values as arrays of byte numbers, and repeated
// fields as arrays of values; the former become strings, the latter are
// joined with "\n".
func (j *Journald) Entries(t testing.TB, match ...string) []map[string]string {
	t.Helper()
	args := append([]string{"-D", j.JournalDir, "-o", "json", "--all", "--no-pager", "-q"}, match...)
	out := mustRun(t, nil, nil, LookTool("journalctl"), args...)
	var entries []map[string]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(line, &raw); err != nil {
			t.Fatalf("journalctl json: %v in %q", err, tailString(string(line), 300))
		}
		e := make(map[string]string, len(raw))
		for k, v := range raw {
			s, err := journalValue(v)
			if err != nil {
				t.Fatalf("journal field %s: %v", k, err)
			}
			e[k] = s
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading journalctl output: %v", err)
	}
	return entries
}

func journalValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(float64); ok {
				b := make([]byte, len(x))
				for i, n := range x {
					f, ok := n.(float64)
					if !ok || f < 0 || f > 255 {
						return "", fmt.Errorf("byte array with %v", n)
					}
					b[i] = byte(f)
				}
				return string(b), nil
			}
		}
		parts := make([]string, len(x))
		for i, el := range x {
			s, err := journalValue(el)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, "\n"), nil
	default:
		return "", fmt.Errorf("unexpected JSON %T", v)
	}
}
