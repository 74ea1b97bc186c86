package checks

import (
	"strings"
	"testing"
)

func TestParseExpect(t *testing.T) {
	for _, c := range []struct {
		in, op, value, str string
		err                string
	}{
		{in: ">= 1000", op: ">=", value: "1000", str: ">= 1000"},
		{in: ">=1000", op: ">=", value: "1000", str: ">= 1000"},
		{in: "  >   5  ", op: ">", value: "5", str: "> 5"},
		{in: "<= -2.5", op: "<=", value: "-2.5", str: "<= -2.5"},
		{in: "< .5", op: "<", value: ".5", str: "< .5"},
		{in: "> 1e+20", op: ">", value: "1e+20", str: "> 1e+20"},
		{in: "= ok", op: "=", value: "ok", str: "= ok"},
		{in: "=ok", op: "=", value: "ok", str: "= ok"},
		{in: "!= 0", op: "!=", value: "0", str: "!= 0"},
		{in: "ok", op: "=", value: "ok", str: "= ok"},
		{in: "42", op: "=", value: "42", str: "= 42"},
		{in: "two words", op: "=", value: "two words", str: "= two words"},
		{in: "=", op: "=", value: "", str: "="},
		{in: "= >= 3", op: "=", value: ">= 3", str: "= >= 3"},
		{in: "!x", op: "=", value: "!x", str: "= !x"},
		{in: "", err: "empty expectation"},
		{in: "   ", err: "empty expectation"},
		{in: ">= 1k", err: `>= needs a number, not "1k"`},
		{in: ">=", err: "needs a number"},
		{in: "< NaN", err: "needs a number"},
		{in: "> 1e999999", err: "needs a number"},
		{in: "<x>", err: "needs a number"},
	} {
		e, err := ParseExpect(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseExpect(%q) = %v, %v; want error %q", c.in, e, err, c.err)
			}
			continue
		}
		if err != nil || e.Op != c.op || e.Value != c.value || e.String() != c.str {
			t.Errorf("ParseExpect(%q) = {%q %q} %q, %v; want {%q %q} %q", c.in, e.Op, e.Value, e.String(), err, c.op, c.value, c.str)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		expect, got string
		err         string // "" = passes
	}{
		{">= 1000", "1000", ""},
		{">= 1000", "12", "got 12, want >= 1000"},
		{">= 1000", "1000.0001", ""},
		{"> 1000", "1000", "got 1000, want > 1000"},
		{"> 9007199254740992", "9007199254740993", ""}, // beyond float64's integers
		{"< 1", "0.999999999999999999999", ""},
		{"<= 0", "-0", ""},
		{"< 10", "1e1", "got 1e1, want < 10"},
		{">= 1", "abc", `got abc, want >= 1 (a number)`},
		{">= 1", "NULL", `got NULL, want >= 1 (a number)`},
		{">= 1", "", `got "", want >= 1 (a number)`},
		{"= 1000", "1000.00", ""},
		{"1000", "1e3", ""},
		{"= 1000", "1001", "got 1001, want = 1000"},
		{"!= 0", "0.0", "got 0.0, want != 0"},
		{"!= 0", "3", ""},
		{"= ok", "ok", ""},
		{"= ok", "OK", "got OK, want = ok"},
		{"= ok", "ok ", `got "ok ", want = ok`},
		{"= t", "t", ""},
		{"= NULL", "NULL", ""},
		{"!= NULL", "NULL", "got NULL, want != NULL"},
		{"= 01", "1", ""},        // both numbers: numeric
		{"= 1.0.0", "1.0.0", ""}, // not a number: exact
		{"=", "", ""},
		{"= x", "", `got "", want = x`},
	} {
		e, err := ParseExpect(c.expect)
		if err != nil {
			t.Fatalf("ParseExpect(%q): %v", c.expect, err)
		}
		err = e.Check(c.got)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q.Check(%q) = %v, want pass", c.expect, c.got, err)
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%q.Check(%q) = %v, want %q", c.expect, c.got, err, c.err)
		}
	}
}

func FuzzParseExpect(f *testing.F) {
	for _, s := range []string{">= 1000", "= ok", "!=0", "<-1.5e3", "x", "=", " > .5 ", "= = =", "<>", ">=\t7", "1e400", "-.e5"} {
		f.Add(s, "1000")
	}
	f.Fuzz(func(t *testing.T, s, got string) {
		e, err := ParseExpect(s)
		if err != nil {
			return
		}
		e2, err := ParseExpect(e.String())
		if err != nil {
			t.Fatalf("ParseExpect(%q) = %q, whose String %q does not parse: %v", s, e.Value, e.String(), err)
		}
		if e2.Op != e.Op || e2.Value != e.Value || (e2.num == nil) != (e.num == nil) {
			t.Fatalf("round trip of %q: {%q %q} -> %q -> {%q %q}", s, e.Op, e.Value, e.String(), e2.Op, e2.Value)
		}
		_ = e.Check(got) // must not panic
	})
}
