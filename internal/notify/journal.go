// Package notify builds the notices `pgarchive notify` sends to a webhook:
// what failed (or succeeded) in a systemd unit, read from its journal, or a
// daily summary of what was archived. Everything here but deliver.go and
// journalctl.go is pure: journal parsing, choosing the failing upstreams,
// payloads and summary aggregation.
package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one journal entry as `journalctl -o json` prints it, reduced to
// what a notice needs.
type Entry struct {
	Time       time.Time // zero when the entry had no usable __REALTIME_TIMESTAMP
	Priority   int       // syslog priority, 0 (emerg) to 7 (debug); 6 when absent, as journald assumes
	Identifier string    // SYSLOG_IDENTIFIER, else _COMM
	PID        string
	Message    string
	Fields     map[string]string // PGARCHIVE_* fields and the ones in keptFields
}

// keptFields are the non-pgarchive fields the selection logic reads.
var keptFields = map[string]bool{
	"MESSAGE_ID": true, "UNIT": true, "_SYSTEMD_UNIT": true,
	"INVOCATION_ID": true, "_SYSTEMD_INVOCATION_ID": true,
}

// maxJSONLine bounds one line of journalctl output that is parsed; longer
// lines (huge binary fields) are skipped whole rather than buffered.
const maxJSONLine = 1 << 20

// ParseJournal reads `journalctl -o json` output: one JSON object per line.
// A notice must still go out when the journal holds something odd, so lines
// that are not a JSON object or are longer than 1 MiB are skipped and
// counted, never fatal; only a failing reader is an error.
func ParseJournal(r io.Reader) (entries []Entry, skipped int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	tooLong := false
	for {
		chunk, isPrefix, rerr := br.ReadLine()
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return entries, skipped, rerr
		}
		if !tooLong {
			if len(line)+len(chunk) > maxJSONLine {
				tooLong, line = true, line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		if isPrefix {
			continue
		}
		switch {
		case tooLong:
			skipped++
		case len(bytes.TrimSpace(line)) == 0:
		default:
			if e, ok := parseEntry(line); ok {
				entries = append(entries, e)
			} else {
				skipped++
			}
		}
		line, tooLong = line[:0], false
	}
	return entries, skipped, nil
}

func parseEntry(line []byte) (Entry, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil || raw == nil {
		return Entry{}, false
	}
	e := Entry{Priority: 6, Fields: map[string]string{}}
	var comm string
	for k, v := range raw {
		s, ok := fieldValue(v)
		if !ok {
			continue
		}
		switch {
		case k == "MESSAGE":
			e.Message = s
		case k == "PRIORITY":
			if p, err := strconv.Atoi(s); err == nil && p >= 0 && p <= 7 {
				e.Priority = p
			}
		case k == "SYSLOG_IDENTIFIER":
			e.Identifier = s
		case k == "_COMM":
			comm = s
		case k == "_PID":
			e.PID = s
		case k == "__REALTIME_TIMESTAMP":
			if us, err := strconv.ParseInt(s, 10, 64); err == nil && us > 0 {
				e.Time = time.UnixMicro(us).UTC()
			}
		case keptFields[k] || strings.HasPrefix(k, "PGARCHIVE_"):
			e.Fields[k] = s
		}
	}
	if e.Identifier == "" {
		e.Identifier = comm
	}
	return e, true
}

// fieldValue decodes one field as journalctl prints it: a string; an array
// of byte values for binary or non-UTF-8 data; an array of those for a field
// the entry repeats (joined with spaces); or null for a field too large to
// print.
func fieldValue(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	if b, ok := byteArray(v); ok {
		return strings.ToValidUTF8(string(b), "\uFFFD"), true
	}
	var many []json.RawMessage
	if json.Unmarshal(v, &many) != nil || len(many) == 0 {
		return "", false
	}
	var parts []string
	for _, m := range many {
		if json.Unmarshal(m, &s) == nil {
			parts = append(parts, s)
		} else if b, ok := byteArray(m); ok {
			parts = append(parts, strings.ToValidUTF8(string(b), "\uFFFD"))
		}
	}
	return strings.Join(parts, " "), len(parts) > 0
}

func byteArray(v json.RawMessage) ([]byte, bool) {
	var nums []int
	if json.Unmarshal(v, &nums) != nil || len(nums) == 0 {
		return nil, false
	}
	b := make([]byte, len(nums))
	for i, n := range nums {
		if n < 0 || n > 255 {
			return nil, false
		}
		b[i] = byte(n)
	}
	return b, true
}

// Line renders an entry as one bounded line of text for a notice:
// "2026-05-01T03:15:02Z pgarchive[812]: error: db1: ...". Control characters
// (newlines included) become spaces so that a multi-line message cannot
// forge further lines, and the result is cut to at most width bytes.
func Line(e Entry, width int) string {
	var b strings.Builder
	if !e.Time.IsZero() {
		b.WriteString(e.Time.UTC().Format(time.RFC3339))
		b.WriteByte(' ')
	}
	ident := e.Identifier
	if ident == "" {
		ident = "?"
	}
	b.WriteString(ident)
	if e.PID != "" {
		b.WriteString("[" + e.PID + "]")
	}
	b.WriteString(": ")
	switch {
	case e.Priority <= 3:
		b.WriteString("error: ")
	case e.Priority == 4:
		b.WriteString("warning: ")
	}
	b.WriteString(e.Message)
	return clip(flatten(b.String()), width)
}

func flatten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// clip cuts s to at most width bytes on a rune boundary, marking the cut.
func clip(s string, width int) string {
	if len(s) <= width {
		return s
	}
	const mark = "…"
	if width < len(mark) {
		return ""
	}
	cut := width - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
