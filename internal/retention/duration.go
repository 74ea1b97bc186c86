package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fixed lengths for the calendar-ish units: --keep-within counts back from
// now by a time.Duration (see internal/retention), so a "month" cannot follow
// the calendar the way restic's does; 30 and 365 days are what an operator
// can check against a dry run in their head.
const (
	Day   = 24 * time.Hour
	Week  = 7 * Day
	Month = 30 * Day
	Year  = 365 * Day
)

// Ranks order the units from largest to smallest; a value must use them in
// that order, each at most once.
const (
	rankYear = iota
	rankMonth
	rankWeek
	rankDay
	rankHour
	rankMinute
	rankSecond
	rankMilli
	rankMicro
	rankNano
)

type unit struct {
	rank int
	size time.Duration
}

// units are Go's plus d, w and y. "m" is missing on purpose: it means months
// to restic and minutes to Go, and is resolved from its neighbours.
var units = map[string]unit{
	"y":  {rankYear, Year},
	"w":  {rankWeek, Week},
	"d":  {rankDay, Day},
	"h":  {rankHour, time.Hour},
	"s":  {rankSecond, time.Second},
	"ms": {rankMilli, time.Millisecond},
	"us": {rankMicro, time.Microsecond},
	"µs": {rankMicro, time.Microsecond}, // U+00B5, as time.Duration.String writes it
	"μs": {rankMicro, time.Microsecond}, // U+03BC, which Go accepts too
	"ns": {rankNano, time.Nanosecond},
}

var (
	minute = unit{rankMinute, time.Minute}
	month  = unit{rankMonth, Month}
)

// term is one <number><unit> of a duration.
type term struct {
	whole, frac string // digits before and after the point
	unit        string
	resolved    unit
}

// ParseDuration reads a --keep-within value. It accepts Go's durations as
// Go writes them ("36h", "1h30m", "90m0s", "1.5h") and restic's spans
// ("30d", "2w", "1y6m", "1y5m7d2h"), with y = 365 days, m = 30 days (months)
// or minutes, w = 7 days, d = 24 hours. Units go from largest to smallest,
// each once. "m" means months after a year or before w/d/h, minutes after
// hours or before seconds; on its own ("6m") or after w/d it is refused as
// ambiguous rather than guessed, since a wrong guess deletes archives.
func ParseDuration(s string) (time.Duration, error) {
	d, _, err := parseDuration(s)
	return d, err
}

// parseDuration also returns the resolved terms, for tests.
func parseDuration(s string) (time.Duration, []term, error) {
	fail := func(format string, args ...any) (time.Duration, []term, error) {
		return 0, nil, fmt.Errorf("duration %q: %s", s, fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return fail("empty")
	case s == "0":
		return 0, nil, nil
	case s[0] == '-':
		return fail("must not be negative")
	}
	terms, err := lex(s)
	if err != nil {
		return fail("%v", err)
	}
	if err := resolve(terms); err != nil {
		return fail("%v", err)
	}
	var total time.Duration
	for i, t := range terms {
		if i > 0 && t.resolved.rank <= terms[i-1].resolved.rank {
			return fail("units must go from largest to smallest, each once (like 1y6m, 2w3d or 1h30m)")
		}
		v, ok := t.value()
		if !ok || total > maxDuration-v {
			return fail("too large")
		}
		total += v
	}
	return total, terms, nil
}

const maxDuration = time.Duration(1<<63 - 1)

func lex(s string) ([]term, error) {
	var out []term
	for s != "" {
		var t term
		i := digits(s)
		t.whole, s = s[:i], s[i:]
		if s != "" && s[0] == '.' {
			i = digits(s[1:])
			t.frac, s = s[1:1+i], s[1+i:]
		}
		if t.whole == "" && t.frac == "" {
			return nil, fmt.Errorf("expected a number at %q", s)
		}
		i = 0
		for i < len(s) && s[i] != '.' && (s[i] < '0' || s[i] > '9') {
			i++
		}
		t.unit, s = s[:i], s[i:]
		if t.unit == "" {
			return nil, errors.New("a number without unit (use y, m, w, d, h, m, s, ms, us or ns)")
		}
		if _, ok := units[t.unit]; !ok && t.unit != "m" {
			return nil, fmt.Errorf("unknown unit %q (use y, m, w, d, h, m, s, ms, us or ns)", t.unit)
		}
		out = append(out, t)
	}
	return out, nil
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

const ambiguousM = `"m" is ambiguous here (restic reads months, Go minutes): write months as days (6m = 180d) or after a year (0y6m), minutes after hours (0h30m)`

// resolve gives every term its unit, deciding each "m" by its neighbours.
func resolve(terms []term) error {
	for i := range terms {
		t := &terms[i]
		if t.unit != "m" {
			t.resolved = units[t.unit]
			continue
		}
		var prev, next string
		if i > 0 {
			prev = terms[i-1].unit
		}
		if i+1 < len(terms) {
			next = terms[i+1].unit
		}
		switch {
		case prev == "y":
			t.resolved = month
		case prev == "h":
			t.resolved = minute
		case prev != "":
			if r := units[prev].rank; r == rankWeek || r == rankDay {
				return errors.New(ambiguousM)
			}
			t.resolved = minute // out of order either way; the order check says so
		case next == "":
			return errors.New(ambiguousM)
		case next == "m" || next == "y":
			t.resolved = month // out of order either way
		case units[next].rank <= rankHour:
			t.resolved = month
		default:
			t.resolved = minute
		}
	}
	return nil
}

// value is whole.frac x unit, computed as time.ParseDuration does (unsigned,
// fraction through float64) so that Go durations come out identical; ok is
// false on overflow.
func (t term) value() (time.Duration, bool) {
	const limit = uint64(1 << 63)
	size := uint64(t.resolved.size)
	var v uint64
	if t.whole != "" {
		var err error
		if v, err = strconv.ParseUint(t.whole, 10, 64); err != nil || v > limit {
			return 0, false
		}
	}
	if v > limit/size {
		return 0, false
	}
	v *= size
	var f uint64
	scale := 1.0
	for _, c := range t.frac { // leading digits while they fit, like Go
		if f > (limit-1)/10 {
			break
		}
		g := f*10 + uint64(c-'0')
		if g > limit {
			break
		}
		f, scale = g, scale*10
	}
	if f > 0 {
		v += uint64(float64(f) * (float64(size) / scale))
	}
	if v > uint64(maxDuration) {
		return 0, false
	}
	return time.Duration(v), true
}

// FormatDuration writes d the way ParseDuration reads it back, in the
// largest units that divide it: 720h is "30d", 36h is "1d12h".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d%time.Hour != 0 || d < 0 {
		return d.String()
	}
	var b strings.Builder
	if n := d / Day; n > 0 {
		fmt.Fprintf(&b, "%dd", n)
		d -= n * Day
	}
	if d > 0 {
		fmt.Fprintf(&b, "%dh", d/time.Hour)
	}
	return b.String()
}
