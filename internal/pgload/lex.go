package pgload

// lexer follows just enough of psql's input syntax to tell, at the start of
// each line, whether that line begins a new SQL statement or psql
// meta-command, or is the inside of a string, a quoted identifier, a
// dollar-quoted function body, a comment or COPY data. Only the former may
// be rewritten: a function body or a comment that happens to contain a line
// "\connect db1" or "GRANT ... ON DATABASE db1" must reach the server as it
// was dumped. It keeps a few bytes of state whatever the input, so the
// rewriter stays streaming.
type lexer struct {
	st         lexState
	prev       byte     // previous byte in stNormal (0 after a token that must not combine)
	prev2      byte     // the one before prev, to tell E'...' from a word ending in e
	lastQuote  lexState // kind of quoted string that just closed, so E'a''b' stays an E string
	depth      int      // nesting of /* */ comments
	tag        []byte   // dollar-quote tag, without the $ signs
	match      int      // bytes of "$tag" matched inside a dollar quote, -1 when none
	parens     int      // psql does not end a statement at ; inside parentheses
	empty      bool     // no statement text since the last ; (comments and blanks do not count)
	emptySaved bool     // empty before a - or / that may start a comment
	head       []byte   // first bytes of the statement, to spot COPY
	tail       []byte   // last bytes of the statement, whitespace collapsed, to spot FROM stdin
	copyNext   bool     // the statement just ended was COPY ... FROM stdin: data follows on the next line
	copying    bool     // inside COPY data, until a line \.
	// metas are the offsets, in the bytes last fed, where a psql
	// meta-command starts (a backslash outside quotes, comments and COPY
	// data, anywhere on a line: psql runs those mid-line too).
	metas []int
	pos   int // offset of the byte being fed
}

type lexState uint8

const (
	stNormal       lexState = iota
	stSingle                // '...'
	stEscape                // E'...', where backslash escapes
	stEscapeBS              // just after a backslash in E'...'
	stDouble                // "..."
	stDollarTag             // reading the $tag$ that opens a dollar quote
	stDollar                // inside $tag$ ... $tag$
	stLineComment           // -- to end of line
	stBlockComment          // /* ... */, nestable
	stMeta                  // psql backslash command, to end of line
)

// maxTag bounds a dollar-quote tag; PostgreSQL identifiers are at most 63 bytes.
const maxTag = 256

func newLexer() lexer { return lexer{empty: true, match: -1} }

// atStatementStart reports whether the next byte can begin a statement.
func (l *lexer) atStatementStart() bool {
	return l.st == stNormal && !l.copying && l.empty && l.parens == 0
}

// outsideQuotes reports whether a backslash here would be a psql meta-command.
func (l *lexer) outsideQuotes() bool { return l.st == stNormal && !l.copying }

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// feed advances the lexer over SQL text; COPY data lines must not be fed.
func (l *lexer) feed(b []byte) {
	l.metas = l.metas[:0]
	for i := 0; i < len(b); i++ {
		c := b[i]
		l.pos = i
		switch l.st {
		case stNormal:
			l.normal(c)
		case stSingle, stDouble:
			if (l.st == stSingle && c == '\'') || (l.st == stDouble && c == '"') {
				l.closeQuote(c)
			}
		case stEscape:
			if c == '\\' {
				l.st = stEscapeBS
			} else if c == '\'' {
				l.closeQuote(c)
			}
		case stEscapeBS:
			l.st = stEscape
		case stDollarTag:
			switch {
			case c == '$':
				l.st, l.match = stDollar, -1
			case len(l.tag) < maxTag && (isIdent(c) && c != '$') && !(len(l.tag) == 0 && c >= '0' && c <= '9'):
				l.tag = append(l.tag, c)
			default: // $1 or a lone $: not a quote after all
				l.st, l.prev, l.prev2 = stNormal, 0, 0
				l.normal(c)
			}
		case stDollar:
			switch {
			case c == '$' && l.match == len(l.tag):
				l.st, l.prev, l.prev2 = stNormal, 0, 0
			case c == '$':
				l.match = 0
			case l.match >= 0 && l.match < len(l.tag) && c == l.tag[l.match]:
				l.match++
			default:
				l.match = -1
			}
		case stLineComment, stMeta:
			if c == '\n' {
				l.st, l.prev, l.prev2 = stNormal, 0, 0
				l.newline()
			}
		case stBlockComment:
			switch {
			case c == '*' && l.prev == '/':
				l.depth++
				l.prev = 0
			case c == '/' && l.prev == '*':
				l.depth--
				l.prev = 0
				if l.depth == 0 {
					l.st, l.prev2 = stNormal, 0
				}
			default:
				l.prev = c
			}
		}
	}
}

func (l *lexer) closeQuote(c byte) {
	l.lastQuote = l.st
	l.st, l.prev2, l.prev = stNormal, 0, c
	l.note(c)
}

func (l *lexer) normal(c byte) {
	p, p2 := l.prev, l.prev2
	l.prev2, l.prev = p, c
	switch c {
	case '\n':
		l.newline()
		l.noteSpace()
	case ' ', '\t', '\r', '\f', '\v':
		l.noteSpace()
	case '\'':
		switch {
		case p == '\'' && l.lastQuote == stEscape: // E'it''s' continues the E string
			l.st = stEscape
		case (p == 'E' || p == 'e') && !isIdent(p2):
			l.st = stEscape
		default:
			l.st = stSingle
		}
		l.note(c)
	case '"':
		l.st = stDouble
		l.note(c)
	case '$':
		if !isIdent(p) {
			l.st, l.tag = stDollarTag, l.tag[:0]
		}
		l.note(c)
	case '\\':
		l.st = stMeta
		l.metas = append(l.metas, l.pos)
	case '-', '/':
		if c == '-' && p == '-' {
			l.st, l.empty = stLineComment, l.emptySaved
			l.dropLast()
			return
		}
		l.emptySaved = l.empty
		l.note(c)
	case '*':
		if p == '/' {
			l.st, l.depth, l.empty, l.prev = stBlockComment, 1, l.emptySaved, 0
			l.dropLast()
			return
		}
		l.note(c)
	case '(':
		l.parens++
		l.note(c)
	case ')':
		if l.parens > 0 {
			l.parens--
		}
		l.note(c)
	case ';':
		if l.parens > 0 {
			l.note(c)
			return
		}
		l.copyNext = l.isCopyFromStdin()
		l.empty = true
		l.head, l.tail = l.head[:0], l.tail[:0]
	default:
		l.note(c)
	}
}

// newline starts COPY data after "COPY ... FROM stdin;": psql reads the data
// from the line after the statement.
func (l *lexer) newline() {
	if l.copyNext {
		l.copyNext, l.copying = false, true
	}
}

// note records a byte of statement text.
func (l *lexer) note(c byte) {
	l.empty = false
	if len(l.head) < 8 {
		l.head = append(l.head, c)
	}
	if len(l.tail) >= 64 {
		l.tail = append(l.tail[:0], l.tail[len(l.tail)-31:]...)
	}
	l.tail = append(l.tail, c)
}

func (l *lexer) noteSpace() {
	if !l.empty && (len(l.tail) == 0 || l.tail[len(l.tail)-1] != ' ') {
		l.note(' ')
	}
}

// dropLast forgets the '-' or '/' that turned out to open a comment.
func (l *lexer) dropLast() {
	if n := len(l.tail); n > 0 {
		l.tail = l.tail[:n-1]
	}
	if n := len(l.head); n > 0 && l.empty {
		l.head = l.head[:n-1]
	}
}

func (l *lexer) isCopyFromStdin() bool {
	if len(l.head) < 5 || !equalFold(l.head[:4], "copy") || !isSpace(l.head[4]) {
		return false
	}
	t := l.tail
	for len(t) > 0 && t[len(t)-1] == ' ' {
		t = t[:len(t)-1]
	}
	const want = "from stdin"
	if len(t) < len(want)+1 || !equalFold(t[len(t)-len(want):], want) {
		return false
	}
	return !isIdent(t[len(t)-len(want)-1])
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
