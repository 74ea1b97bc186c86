package pgload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strconv"
	"strings"

	"github.com/pgarchive/pgarchive/internal/pgbin"
)

// restoreProps asks pg_restore for the statements that create the dump's
// database (it prints them with --create --schema-only) and scans them.
// Only the beginning is read: pg_restore is stopped after propsScanLimit.
func restoreProps(ctx context.Context, pgRestore, file string, env []string) (Props, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgRestore, "--create", "--schema-only", "-f", "-", file)
	cmd.Env = env
	stderr := &headTail{max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Props{}, err
	}
	if err := cmd.Start(); err != nil {
		return Props{}, fmt.Errorf("start pg_restore: %w", err)
	}
	head, readErr := io.ReadAll(io.LimitReader(out, propsScanLimit))
	cancel() // enough read; pg_restore may still be printing
	waitErr := cmd.Wait()
	if len(head) == 0 && (readErr != nil || waitErr != nil) {
		return Props{}, fmt.Errorf("pg_restore could not read the dump: %s", toolMessage(waitErr, stderr))
	}
	return ScanProps(head), nil
}

// pgRestoreArgs are the flags of a load with pg_restore: never prompt for
// a password, stop at the first error, one transaction unless parallel.
func pgRestoreArgs(conn, file string, jobs int, skipRoles bool) []string {
	args := []string{"-w", "--exit-on-error", "-d", conn}
	if jobs > 1 {
		args = append(args, "--jobs", strconv.Itoa(jobs))
	} else {
		args = append(args, "--single-transaction")
	}
	if skipRoles {
		args = append(args, "--no-owner", "--no-privileges")
	}
	return append(args, file)
}

// runPgRestore loads file into the database conn names.
func runPgRestore(ctx context.Context, pgRestore, conn, file string, jobs int, skipRoles bool, env []string) error {
	stderr := &headTail{max: 4096}
	cmd := toolCommand(ctx, pgRestore, pgRestoreArgs(conn, file, jobs, skipRoles), env, stderr)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pg_restore: %s", toolMessage(err, stderr))
	}
	return nil
}

// withDatabase returns the connection string conn with its database
// replaced by db (a libpq URL or keyword/value string, password already
// stripped).
func withDatabase(conn, db string) (string, error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", errors.New("cannot parse the connection URL")
		}
		u.Path = "/" + db
		u.RawPath = ""
		q := u.Query()
		q.Del("dbname")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	pairs, err := splitKeywordValue(conn)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range pairs {
		if p[0] == "dbname" {
			continue
		}
		fmt.Fprintf(&b, "%s=%s ", p[0], quoteConnValue(p[1]))
	}
	fmt.Fprintf(&b, "dbname=%s", quoteConnValue(db))
	return b.String(), nil
}

// headTail keeps the first and the last max bytes written to it: the
// first error line a tool printed, and how it ended.
type headTail struct {
	max  int
	head []byte
	pgbin.Tail
}

func (h *headTail) Write(p []byte) (int, error) {
	if n := min(h.max-len(h.head), len(p)); n > 0 {
		h.head = append(h.head, p[:n]...)
	}
	h.Tail.Max = h.max
	return h.Tail.Write(p)
}

// firstError is the first line of a tool's output that reports an error
// (psql: "psql:file:line: ERROR: ...", pg_restore: "pg_restore: error: ..."),
// else its last line.
func (h *headTail) firstError() string {
	for _, line := range strings.Split(string(h.head), "\n") {
		if strings.Contains(line, "ERROR:") || strings.Contains(line, "error:") || strings.Contains(line, "FATAL:") {
			return strings.TrimSpace(strings.ToValidUTF8(line, "?"))
		}
	}
	s := h.Tail.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// toolMessage says why a tool failed: its first error line, else its exit.
func toolMessage(err error, out *headTail) string {
	if s := out.firstError(); s != "" {
		return s
	}
	if err == nil {
		return "it stopped reading its input"
	}
	return err.Error()
}
