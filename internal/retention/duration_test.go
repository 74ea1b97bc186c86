package retention

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const h = time.Hour
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"36h", 36 * h},
		{"30d", 30 * Day},
		{"2w", 14 * Day},
		{"1y", 365 * Day},
		{"1y6m", 365*Day + 6*30*Day},
		{"1y5m7d2h", 365*Day + 5*30*Day + 7*Day + 2*h},
		{"0y6m", 180 * Day},
		{"6m15d", 6*30*Day + 15*Day},
		{"2m3h", 2*30*Day + 3*h},
		{"1w2d", 9 * Day},
		{"1h30m", 90 * time.Minute},
		{"1d12h30m", 36*h + 30*time.Minute},
		{"90m0s", 90 * time.Minute},
		{"1m30s", 90 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"1.5d", 36 * h},
		{"1h30m0.5s", 90*time.Minute + 500*time.Millisecond},
		{"1µs", time.Microsecond},
		{"1μs", time.Microsecond},
		{"3us", 3 * time.Microsecond},
		{"5ms", 5 * time.Millisecond},
		{"7ns", 7},
		{".5h", 30 * time.Minute},
		{"5.h", 5 * h},
	} {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseDurationRefuses(t *testing.T) {
	for _, c := range []struct{ in, why string }{
		{"", "empty"},
		{"6m", "ambiguous"},
		{"90m", "ambiguous"},
		{"1d30m", "ambiguous"},
		{"2w6m", "ambiguous"},
		{"-1h", "negative"},
		{"+1h", "number"},
		{"1h1h", "largest to smallest"},
		{"30s1h", "largest to smallest"},
		{"1d1y", "largest to smallest"},
		{"1s1m", "largest to smallest"},
		{"3", "without unit"},
		{"1x", "unknown unit"},
		{"1D", "unknown unit"},
		{"1 d", "unknown unit"},
		{"h", "number"},
		{".h", "number"},
		{"1000y", "too large"},
		{"9223372036854775808ns", "too large"},
		{"99999999999999999999h", "too large"},
	} {
		_, err := ParseDuration(c.in)
		if err == nil || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), `"`+c.in+`"`) {
			t.Errorf("ParseDuration(%q): error %v, want one that quotes the input and says %q", c.in, err, c.why)
		}
	}
}

// Every duration Go prints reads back as itself: "accepts Go durations"
// includes time.Duration.String's "m" for minutes.
func TestParseDurationGoRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{1, 999, time.Microsecond + 1, time.Second, 61 * time.Second, 59 * time.Minute,
		26 * time.Hour, 720*time.Hour + 1, 1<<63 - 1} {
		got, err := ParseDuration(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "0"}, {30 * Day, "30d"}, {36 * time.Hour, "1d12h"}, {5 * time.Hour, "5h"}, {90 * time.Minute, "1h30m0s"}} {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.d, got, c.want)
		}
		if back, err := ParseDuration(FormatDuration(c.d)); err != nil || back != c.d {
			t.Errorf("FormatDuration(%v) does not read back: %v, %v", c.d, back, err)
		}
	}
}

// FuzzParseDuration: never panics; accepted values are non-negative, read
// back from FormatDuration, and agree with time.ParseDuration whenever Go
// also accepts the text and no "m" was read as months.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "36h", "30d", "2w", "1y6m", "1y5m7d2h", "1h30m", "90m0s", "6m", "1.5h", "1µs", "-1h", "1d30m", ".5h", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, terms, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Fatalf("%q = %v: FormatDuration gives %q, which reads back as %v, %v", s, d, FormatDuration(d), back, err)
		}
		goD, goErr := time.ParseDuration(s)
		if goErr != nil {
			return
		}
		for _, tm := range terms {
			if tm.resolved == month {
				return
			}
		}
		if goD != d {
			t.Fatalf("%q: %v here, %v in Go", s, d, goD)
		}
	})
}
