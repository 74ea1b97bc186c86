package retention

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
)

func stamp(s string) time.Time {
	t, err := time.Parse(naming.StampLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

// history is hand-made around 2026-11-21, a Saturday in ISO week 47 (Monday
// 2026-11-16), so 2026-11-15 is the Sunday of week 46.
var history = []Item{
	{ID: "k", Time: stamp("20250601T020000Z"), Complete: true},
	{ID: "a", Time: stamp("20261121T142407Z"), Complete: false}, // upload in progress
	{ID: "b", Time: stamp("20261121T020000Z"), Complete: true},
	{ID: "c", Time: stamp("20261120T020000Z"), Complete: true},
	{ID: "d", Time: stamp("20261120T020000Z"), Seq: 1, Complete: true}, // same second, later
	{ID: "e", Time: stamp("20261119T020000Z"), Complete: false},        // failed upload
	{ID: "f", Time: stamp("20261118T020000Z"), Complete: true},
	{ID: "g", Time: stamp("20261115T020000Z"), Complete: true},
	{ID: "h", Time: stamp("20261031T020000Z"), Complete: true},
	{ID: "i", Time: stamp("20261001T020000Z"), Complete: true},
	{ID: "j", Time: stamp("20251231T020000Z"), Complete: true},
}

var now = stamp("20261121T150000Z")

// outcome renders a plan as id -> "keep: reason; reason" for comparison.
func outcome(p Plan) map[string]string {
	m := map[string]string{}
	for _, d := range p.Keep {
		m[d.ID] = "keep: " + strings.Join(d.Reasons, "; ")
	}
	for _, d := range p.Remove {
		m[d.ID] = "remove: " + strings.Join(d.Reasons, "; ")
	}
	return m
}

func TestPlanHandChecked(t *testing.T) {
	const (
		up    = "keep: " + ReasonUploading
		none  = "remove: " + ReasonNoPolicy
		incpl = "remove: " + ReasonIncomplete
	)
	cases := []struct {
		name   string
		items  []Item
		policy Policy
		now    time.Time
		want   map[string]string
	}{{
		name: "every bucket", items: history, now: now,
		policy: Policy{Last: 2, Daily: 3, Weekly: 2, Monthly: 3, Yearly: 2},
		want: map[string]string{
			"a": up,
			"b": "keep: last 1; daily 2026-11-21; weekly 2026-W47; monthly 2026-11; yearly 2026; " + ReasonNewestComplete,
			"d": "keep: last 2; daily 2026-11-20",
			"c": none, // same day as d, which is newer by Seq
			"e": incpl,
			"f": "keep: daily 2026-11-18",
			"g": "keep: weekly 2026-W46",
			"h": "keep: monthly 2026-10",
			"i": none,
			"j": "keep: monthly 2025-12; yearly 2025",
			"k": none,
		},
	}, {
		name: "within counts from now", items: history, now: now,
		policy: Policy{Within: 48 * time.Hour},
		want: map[string]string{
			"a": up, "b": "keep: within 48h; " + ReasonNewestComplete,
			"d": "keep: within 48h", "c": "keep: within 48h", "e": incpl,
			"f": none, "g": none, "h": none, "i": none, "j": none, "k": none,
		},
	}, {
		name: "backups stopped: newest complete survives", items: history,
		now: stamp("20270601T000000Z"), policy: Policy{Within: 90 * time.Minute},
		want: map[string]string{
			"a": up, "b": "keep: " + ReasonNewestComplete, "d": none, "c": none, "e": incpl,
			"f": none, "g": none, "h": none, "i": none, "j": none, "k": none,
		},
	}, {
		name: "unlimited yearly and hourly", items: history, now: now,
		policy: Policy{Hourly: 1, Yearly: -1},
		want: map[string]string{
			"a": up, "b": "keep: hourly 2026-11-21T02; yearly 2026; " + ReasonNewestComplete,
			"d": none, "c": none, "e": incpl, "f": none, "g": none, "h": none, "i": none,
			"j": "keep: yearly 2025", "k": none,
		},
	}, {
		name: "unlimited last keeps every complete one", now: now, policy: Policy{Last: -1},
		items: history[:5],
		want: map[string]string{
			"k": "keep: last 4", "a": up, "b": "keep: last 1; " + ReasonNewestComplete,
			"d": "keep: last 2", "c": "keep: last 3",
		},
	}, {
		name: "incomplete never fills a bucket", now: now, policy: Policy{Last: 1, Daily: 1},
		items: []Item{
			{ID: "x", Time: stamp("20261121T100000Z")},
			{ID: "y", Time: stamp("20261121T090000Z"), Complete: true},
			{ID: "z", Time: stamp("20261121T080000Z")},
		},
		want: map[string]string{"x": up, "y": "keep: last 1; daily 2026-11-21; " + ReasonNewestComplete, "z": incpl},
	}, {
		name: "nothing complete: keep everything", now: now, policy: Policy{Last: 1},
		items: []Item{{ID: "x", Time: stamp("20261121T100000Z")}, {ID: "y", Time: stamp("20200101T000000Z")}},
		want:  map[string]string{"x": up, "y": up},
	}, {
		name: "days are UTC days", now: now, policy: Policy{Daily: 2},
		items: []Item{
			// 00:30 in UTC+2 is still 2026-11-20 in UTC.
			{ID: "x", Time: time.Date(2026, 11, 21, 0, 30, 0, 0, time.FixedZone("EET", 2*3600)), Complete: true},
			{ID: "y", Time: stamp("20261120T120000Z"), Complete: true},
			{ID: "z", Time: stamp("20261119T235959Z"), Complete: true},
		},
		want: map[string]string{"x": "keep: daily 2026-11-20; " + ReasonNewestComplete, "y": none, "z": "keep: daily 2026-11-19"},
	}, {
		name: "ISO week year differs from calendar year", now: now, policy: Policy{Weekly: 2},
		items: []Item{
			{ID: "x", Time: stamp("20270101T000000Z"), Complete: true}, // Friday of 2026-W53
			{ID: "y", Time: stamp("20261228T000000Z"), Complete: true}, // Monday of 2026-W53
			{ID: "z", Time: stamp("20261227T000000Z"), Complete: true}, // Sunday of 2026-W52
		},
		want: map[string]string{"x": "keep: weekly 2026-W53; " + ReasonNewestComplete, "y": none, "z": "keep: weekly 2026-W52"},
	}, {
		name: "within excludes its exact start", now: now, policy: Policy{Within: time.Hour},
		items: []Item{
			{ID: "x", Time: now.Add(-time.Hour + time.Second), Complete: true},
			{ID: "y", Time: now.Add(-time.Hour), Complete: true},
		},
		want: map[string]string{"x": "keep: within 1h; " + ReasonNewestComplete, "y": none},
	}, {
		name: "empty history", now: now, policy: Policy{Last: 1}, want: map[string]string{},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.policy.Plan(tc.items, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			got := outcome(p)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s: got %q, want %q", id, got[id], w)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("decided %d items, want %d", len(got), len(tc.want))
			}
			for _, list := range [][]Decision{p.Keep, p.Remove} {
				for i := 1; i < len(list); i++ {
					if !Newer(list[i-1].Item, list[i].Item) {
						t.Errorf("not newest first: %s before %s", list[i-1].ID, list[i].ID)
					}
				}
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	items := history
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "no keep rule"},
		{Policy{Last: -2}, "keep-last -2"},
		{Policy{Daily: 3, Weekly: -5}, "keep-weekly -5"},
		{Policy{Yearly: -1, Within: -time.Hour}, "keep-within -1h0m0s"},
	} {
		_, err := tc.p.Plan(items, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
	if _, err := (Policy{}).Plan(nil, now); !errors.Is(err, ErrEmptyPolicy) {
		t.Errorf("empty policy: %v, want ErrEmptyPolicy", err)
	}
	for _, p := range []Policy{{Last: -1}, {Hourly: -1}, {Within: time.Nanosecond}, {Monthly: 1}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	dup := append([]Item{{ID: "b", Time: now, Complete: true}}, history...)
	if _, err := (Policy{Last: 1}).Plan(dup, now); err == nil || !strings.Contains(err.Error(), `"b" listed twice`) {
		t.Errorf("duplicate ID: %v", err)
	}
}

func TestTable(t *testing.T) {
	p, err := Policy{Last: 1, Monthly: 1}.Plan(history[:6], now)
	if err != nil {
		t.Fatal(err)
	}
	want := `ARCHIVE         TIME                  ACTION  REASONS
a (incomplete)  2026-11-21 14:24:07Z  keep    ` + ReasonUploading + `
b               2026-11-21 02:00:00Z  keep    last 1, monthly 2026-11, newest complete archive
d               2026-11-20 02:00:00Z  remove  no policy keeps it
c               2026-11-20 02:00:00Z  remove  no policy keeps it
e (incomplete)  2026-11-19 02:00:00Z  remove  ` + ReasonIncomplete + `
k               2025-06-01 02:00:00Z  remove  no policy keeps it
keep 2, remove 4
`
	if got := p.Table(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		48 * time.Hour: "48h", 90 * time.Minute: "1h30m", time.Minute: "1m",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("%v: got %q, want %q", d, got, want)
		}
	}
}
