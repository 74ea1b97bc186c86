// Package logging is pgarchive's one logger, shared with rclone. Every
// message and field is passed through redact.Default first, so no secret
// reaches stderr or the journal, rclone's debug lines included. Under
// systemd it speaks journald's native protocol so every entry carries
// structured PGARCHIVE_* fields (`journalctl PGARCHIVE_DATABASE=db1`);
// elsewhere it prints plain lines on stderr. Messages are written to be
// complete on their own, because `journalctl -u` shows only MESSAGE.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/pgarchive/pgarchive/internal/redact"
)

// Notice sits between Info and Warn, as rclone and syslog have it.
const Notice = slog.Level(2)

// Target says where entries go.
type Target int

const (
	Stderr Target = iota
	Journal
)

// Choose resolves --log-target. "auto" uses the journal when stderr is
// already connected to it (JOURNAL_STREAM, as in a systemd unit) or when a
// systemd service (INVOCATION_ID) can reach the journal socket.
func Choose(target string, getenv func(string) string) (Target, error) {
	switch target {
	case "stderr":
		return Stderr, nil
	case "journal":
		if !journal.Enabled() {
			return Stderr, fmt.Errorf("log-target journal: no journald socket at /run/systemd/journal/socket")
		}
		return Journal, nil
	case "", "auto":
		if ok, _ := journal.StderrIsJournalStream(); ok {
			return Journal, nil
		}
		if getenv("INVOCATION_ID") != "" && journal.Enabled() {
			return Journal, nil
		}
		return Stderr, nil
	}
	return Stderr, fmt.Errorf("unknown log target %q", target)
}

// Handler is a slog.Handler for either target.
type Handler struct {
	target Target
	level  slog.Leveler
	attrs  []slog.Attr
	mu     *sync.Mutex
	out    io.Writer
	native *nativeSender
	send   func(msg string, p journal.Priority, vars map[string]string) error
}

// New returns a handler for target that drops records below level.
func New(target Target, level slog.Leveler, stderr io.Writer) *Handler {
	ns := &nativeSender{}
	return &Handler{target: target, level: level, mu: &sync.Mutex{}, out: stderr, native: ns, send: ns.send}
}

// Target says where this handler writes.
func (h *Handler) Target() Target { return h.target }

// Flush waits (briefly, bounded) until journald has taken every entry, so
// that it can still attribute them to this process's unit; call it before
// exiting. It does nothing on stderr.
func (h *Handler) Flush() {
	if h.target == Journal {
		h.native.Drain(2 * time.Second)
	}
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

// WithGroup flattens groups: journal fields have no hierarchy.
func (h *Handler) WithGroup(string) slog.Handler { return h }

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	msg := redact.Default.String(r.Message)
	fields := map[string]string{}
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "object": // rclone names the file or remote it speaks about
			if v := redact.Default.String(a.Value.String()); v != "" && !strings.HasPrefix(msg, v) {
				msg = v + ": " + msg
			}
		case "objectType", "source":
		default:
			if k := FieldName(a.Key); k != "" {
				fields[k] = redact.Default.String(a.Value.String())
			}
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	msg = strings.TrimRight(msg, "\n")
	if h.target == Journal {
		fields["SYSLOG_IDENTIFIER"] = "pgarchive"
		if err := h.send(msg, Priority(r.Level), fields); err == nil {
			return nil
		}
		// Losing a log line about a backup is worse than a duplicate format.
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.out, "pgarchive: %s%s\n", levelPrefix(r.Level), msg)
	return err
}

func levelPrefix(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error: "
	case l >= slog.LevelWarn:
		return "warning: "
	case l < slog.LevelInfo:
		return "debug: "
	}
	return ""
}

// Priority maps slog levels onto syslog priorities.
func Priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.Level(12):
		return journal.PriCrit
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= Notice:
		return journal.PriNotice
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// FieldName turns an attribute key into a journal field (PGARCHIVE_ plus
// upper-case letters, digits and underscores), or "" when nothing is left.
func FieldName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '_' || r == '-' || r == '.':
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "PGARCHIVE_" + b.String()
}

// StderrTerminal reports whether stderr is a terminal (for progress output).
func StderrTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
