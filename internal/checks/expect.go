// Package checks runs the queries a restore drill uses to decide whether a
// restored database is plausible ("SELECT count(*) FROM orders" >= 1000), and
// parses the expectations they are compared with.
package checks

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Expect is one parsed expectation such as ">= 1000" or "= ok".
type Expect struct {
	Op    string // one of >=, >, <=, <, =, !=
	Value string
	num   *big.Rat // Value as a number, nil when it is not one
}

// Longer operators first so ">=" is not read as ">" followed by "=1".
var ops = []string{">=", "<=", "!=", ">", "<", "="}

// ParseExpect reads ">= N", "> N", "<= N", "< N", "= V", "!= V" or a bare V
// (meaning "= V"). Ordering operators need a number, so that a typo such as
// ">= 1k" fails when the file is read rather than at the end of a drill.
func ParseExpect(s string) (Expect, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Expect{}, errors.New("empty expectation: write e.g. \">= 1\" or \"= ok\"")
	}
	e := Expect{Op: "=", Value: t}
	for _, op := range ops {
		if strings.HasPrefix(t, op) {
			e.Op, e.Value = op, strings.TrimSpace(t[len(op):])
			break
		}
	}
	e.num = parseNumber(e.Value)
	switch e.Op {
	case "=", "!=":
	default:
		if e.num == nil {
			return Expect{}, fmt.Errorf("expectation %q: %s needs a number, not %q", s, e.Op, e.Value)
		}
	}
	return e, nil
}

// String renders e so that ParseExpect(e.String()) gives e back.
func (e Expect) String() string {
	if e.Value == "" {
		return e.Op
	}
	return e.Op + " " + e.Value
}

// Check compares a query result, as text, with e. "=" and "!=" compare
// numerically when both sides are numbers (so 1000 equals 1000.0, as in
// SQL), and as exact strings otherwise.
func (e Expect) Check(got string) error {
	g := parseNumber(got)
	var ok bool
	switch {
	case e.num != nil && g != nil:
		c := g.Cmp(e.num)
		switch e.Op {
		case ">=":
			ok = c >= 0
		case ">":
			ok = c > 0
		case "<=":
			ok = c <= 0
		case "<":
			ok = c < 0
		case "=":
			ok = c == 0
		case "!=":
			ok = c != 0
		}
	case e.Op == "=":
		ok = got == e.Value
	case e.Op == "!=":
		ok = got != e.Value
	default:
		return fmt.Errorf("got %s, want %s (a number)", show(got), e)
	}
	if !ok {
		return fmt.Errorf("got %s, want %s", show(got), e)
	}
	return nil
}

// show prints numbers and simple words as they are and quotes the rest, so
// an empty string or trailing blank is visible in the message.
func show(s string) string {
	if s != "" && s == strings.TrimSpace(s) && !strings.ContainsAny(s, "\"\\\n\r\t") && strconv.IsPrint(rune(s[0])) {
		return s
	}
	return strconv.Quote(s)
}

// parseNumber accepts what PostgreSQL prints for integers, numeric and
// float8 (1, -2.50, .5, 1e+20), not NaN/Infinity. Exponents are bounded:
// big.Rat would otherwise try to build 1e999999999 exactly.
func parseNumber(s string) *big.Rat {
	if s == "" || len(s) > 1000 {
		return nil
	}
	i := 0
	if s[i] == '+' || s[i] == '-' {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return nil
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > 400 || exp < -400 {
			return nil
		}
		i = len(s)
	}
	if i != len(s) {
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}
