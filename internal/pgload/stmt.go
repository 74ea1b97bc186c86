package pgload

import (
	"bytes"
	"strings"
)

// token is a word, a double-quoted identifier or one punctuation byte of a
// line, with its byte span so the database name can be replaced in place.
type token struct {
	text       string // raw bytes as written
	start, end int
	quoted     bool
}

// tokenize splits the start of a statement line; it stops after max tokens
// and drops a last token that may continue beyond the bytes it was given.
func tokenize(line []byte, complete bool, max int) []token {
	var toks []token
	i := 0
	for len(toks) < max {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			break
		}
		start := i
		quoted := false
		switch c := line[i]; {
		case c == '"':
			quoted = true
			for i++; i < len(line); i++ {
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						i++
						continue
					}
					break
				}
			}
			if i >= len(line) { // unterminated
				return toks
			}
			i++
		case c == ',' || c == ';' || c == '(' || c == ')':
			i++
		default:
			for i < len(line) && !isSpace(line[i]) && !strings.ContainsRune(`,;()"`, rune(line[i])) {
				i++
			}
		}
		if i >= len(line) && !complete {
			break
		}
		toks = append(toks, token{text: string(line[start:i]), start: start, end: i, quoted: quoted})
	}
	return toks
}

func (t token) is(keyword string) bool { return !t.quoted && strings.EqualFold(t.text, keyword) }

// name is the identifier a token denotes: quotes removed, or folded to
// lower case as the server does for unquoted names.
func (t token) name() string {
	if t.quoted {
		return strings.ReplaceAll(t.text[1:len(t.text)-1], `""`, `"`)
	}
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, t.text)
}

// isName reports whether t can be an identifier (not ; or a keyword-less gap).
func (t token) isName() bool {
	return t.quoted || (t.text != "" && isIdent(t.text[0]) && t.text[0] != '$' && !(t.text[0] >= '0' && t.text[0] <= '9'))
}

type stmtKind int

const (
	stmtOther        stmtKind = iota
	stmtCreateDB              // CREATE DATABASE name: dropped, the target exists already
	stmtAlterDBOwner          // ALTER DATABASE name OWNER TO: dropped, the loader owns the target
	stmtDBLevel               // other statements naming the database: name rewritten
)

// classify finds the database-level statements pg_dump -C writes and the
// token holding the database name.
func classify(line []byte, complete bool) (stmtKind, token) {
	toks := tokenize(line, complete, 40)
	at := func(i int, kw string) bool { return i < len(toks) && toks[i].is(kw) }
	nameAt := func(i int) (token, bool) {
		if i < len(toks) && toks[i].isName() {
			return toks[i], true
		}
		return token{}, false
	}
	kind, i := stmtOther, -1
	switch {
	case at(0, "CREATE") && at(1, "DATABASE"):
		kind, i = stmtCreateDB, 2
	case at(0, "ALTER") && at(1, "DATABASE"):
		kind, i = stmtDBLevel, 2
		if at(3, "OWNER") && at(4, "TO") {
			kind = stmtAlterDBOwner
		}
	case at(0, "COMMENT") && at(1, "ON") && at(2, "DATABASE"):
		kind, i = stmtDBLevel, 3
	case at(0, "SECURITY") && at(1, "LABEL") && at(2, "ON") && at(3, "DATABASE"):
		kind, i = stmtDBLevel, 4
	case at(0, "SECURITY") && at(1, "LABEL") && at(2, "FOR") && at(4, "ON") && at(5, "DATABASE"):
		kind, i = stmtDBLevel, 6
	case (at(0, "ALTER") && (at(1, "ROLE") || at(1, "USER"))) && at(3, "IN") && at(4, "DATABASE"):
		kind, i = stmtDBLevel, 5
	case at(0, "GRANT") || at(0, "REVOKE"):
		// The privilege list comes first; the first unquoted ON ends it.
		for j := 1; j+1 < len(toks); j++ {
			if toks[j].is("ON") {
				if toks[j+1].is("DATABASE") {
					kind, i = stmtDBLevel, j+2
				}
				break
			}
		}
	}
	if kind == stmtOther {
		return stmtOther, token{}
	}
	t, ok := nameAt(i)
	if !ok {
		return stmtOther, token{}
	}
	return kind, t
}

// namesRoles recognises the statements pg_restore's --no-owner and
// --no-privileges leave out, which fail in a cluster that lacks the dump's
// roles: ALTER ... OWNER TO, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES,
// ALTER ROLE ... IN DATABASE and SET/RESET SESSION AUTHORIZATION.
func namesRoles(line []byte, complete bool) bool {
	toks := tokenize(line, complete, 4)
	at := func(i int, kw string) bool { return i < len(toks) && toks[i].is(kw) }
	switch {
	case at(0, "GRANT"), at(0, "REVOKE"),
		at(0, "ALTER") && (at(1, "ROLE") || at(1, "USER") || at(1, "DEFAULT") && at(2, "PRIVILEGES")),
		(at(0, "SET") || at(0, "RESET")) && at(1, "SESSION") && at(2, "AUTHORIZATION"):
		return true
	case !at(0, "ALTER") || !complete:
		return false
	}
	// pg_dump writes ALTER <object> OWNER TO <role>; on one line; an
	// object's name (a function's signature) can be long.
	toks = tokenize(line, complete, maxPrefix)
	n := len(toks)
	return n >= 5 && toks[n-4].is("OWNER") && toks[n-3].is("TO") && toks[n-2].isName() && toks[n-1].text == ";"
}

// reservedWords are the keywords pg_dump's fmtId quotes: PostgreSQL 15's
// reserved, type/function-name and column-name keywords. Quoting more than
// needed is harmless; quoting less would break the statement.
var reservedWords = toSet(`all analyse analyze and any array as asc asymmetric authorization between
bigint binary bit boolean both case cast char character check coalesce collate collation column
concurrently constraint create cross current_catalog current_date current_role current_schema
current_time current_timestamp current_user dec decimal default deferrable desc distinct do else
end except exists extract false fetch float for foreign freeze from full grant greatest group
grouping having ilike in initially inner inout int integer intersect interval into is isnull join
json json_array json_arrayagg json_exists json_object json_objectagg json_query json_scalar
json_serialize json_table json_value lateral leading least left like limit localtime
localtimestamp merge_action national natural nchar none normalize not notnull null nullif numeric
offset on only or order out outer overlaps overlay placing position precision primary real
references returning right row select session_user setof similar smallint some substring
symmetric system_user table tablesample then time timestamp to trailing treat trim true union
unique user using values varchar variadic verbose when where window with xmlattributes xmlconcat
xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable`)

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// quoteIdent quotes a name the way pg_dump's fmtId does: bare when it is a
// plain lower-case identifier that is no keyword, double-quoted otherwise.
func quoteIdent(s string) string {
	plain := s != "" && !reservedWords[s]
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && ((c >= '0' && c <= '9') || c == '$'))
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// replaceName returns line with the token's span replaced by the quoted target.
func replaceName(line []byte, t token, target string) []byte {
	var b bytes.Buffer
	b.Grow(len(line) + len(target) + 2)
	b.Write(line[:t.start])
	b.WriteString(quoteIdent(target))
	b.Write(line[t.end:])
	return b.Bytes()
}
