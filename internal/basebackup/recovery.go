package basebackup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Target is where recovery stops: exactly one of Time, LSN and Latest.
type Target struct {
	Time   time.Time
	LSN    walname.LSN
	Latest bool
}

// TimeLayouts are what --to-time accepts, besides RFC 3339.
var TimeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999"}

// ParseTime reads --to-time: RFC 3339 or PostgreSQL's "2006-01-02
// 15:04:05[.frac][+zone]"; without a zone it is local time.
func ParseTime(s string) (time.Time, error) {
	for _, l := range TimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-12-04T20:15:00Z or \"2026-12-04 20:15:00+01\"", s)
}

// Covers reports whether a base backup can reach t: its consistent end
// must come no later than the target.
func (t Target) Covers(b *manifest.Base) bool {
	switch {
	case t.Latest:
		return true
	case !t.Time.IsZero():
		return !b.Stopped.After(t.Time)
	default:
		_, stop, err := b.Range()
		return err == nil && stop <= t.LSN
	}
}

func (t Target) String() string {
	switch {
	case t.Latest:
		return "the end of the archived WAL"
	case !t.Time.IsZero():
		return t.Time.UTC().Format(time.RFC3339Nano)
	default:
		return "LSN " + t.LSN.String()
	}
}

// Actions are recovery_target_action's values.
var Actions = []string{"promote", "pause", "shutdown"}

// RecoverySettings are the lines restore-cluster adds to
// postgresql.auto.conf. Values are quoted for PostgreSQL's configuration
// syntax; restoreCommand is pgarchive's own (it carries no secret, only
// paths).
func RecoverySettings(t Target, restoreCommand, action string) []string {
	lines := []string{
		"# Added by pgarchive restore-cluster: recovery from the archive.",
		"restore_command = " + quote(restoreCommand),
		"recovery_target_timeline = 'latest'",
	}
	switch {
	case !t.Time.IsZero():
		lines = append(lines, "recovery_target_time = "+quote(t.Time.UTC().Format("2006-01-02 15:04:05.999999")+"+00"))
	case !t.Latest:
		lines = append(lines, "recovery_target_lsn = "+quote(t.LSN.String()))
	}
	if !t.Latest {
		lines = append(lines, "recovery_target_action = "+quote(action))
	}
	return lines
}

// quote renders a configuration string value: single quotes doubled.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// writeRecovery appends the settings to dir's postgresql.auto.conf
// (ALTER SYSTEM's file, read last, so they win) and creates
// recovery.signal. A postgresql.auto.conf that is a symbolic link (into
// the Nix store, say) is refused rather than written through.
func writeRecovery(dir string, lines []string) error {
	p := filepath.Join(dir, "postgresql.auto.conf")
	if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; not written through", p)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o600)
}
