package scratchpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// postmasterPID reads the first line of postmaster.pid, 0 if there is none.
func postmasterPID(dataDir string) int {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// isOurPostmaster checks that pid is still the server of dataDir, not a
// process that got the number after it exited: the postmaster's working
// directory is its data directory.
func isOurPostmaster(pid int, dataDir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	if want, err := filepath.EvalSymlinks(dataDir); err != nil || cwd != want {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited already; its parent (not us) reaps it.
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && !strings.HasPrefix(string(stat[i+1:]), " Z")
}

// killIfAlive SIGKILLs the postmaster if pg_ctl stop did not end it, and
// waits for it to go. Its backends notice the postmaster's death and exit.
func killIfAlive(ctx context.Context, pid int, dataDir string) error {
	if !isOurPostmaster(pid, dataDir) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill scratch PostgreSQL (pid %d): %w", pid, err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for isOurPostmaster(pid, dataDir) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("scratch PostgreSQL (pid %d) still running after SIGKILL", pid)
		case <-tick.C:
		}
	}
	return nil
}

// logTail returns the last n bytes of the server log, from a line start.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	return tailString(string(b), n)
}

func tailString(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "..." + s
}

// connValue quotes a libpq keyword/value value when it needs it.
func connValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
