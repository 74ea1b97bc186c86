package pgload

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// maxPrefix is how much of a line the rewriter looks at. Longer lines (COPY
// rows, huge function bodies) pass through in pieces of this size; the
// statements it rewrites fit easily, as database names have at most 63 bytes.
const maxPrefix = 64 << 10

// completeMarker is the comment pg_dump writes after the last statement.
// Without it the dump was cut short, and psql would happily commit the
// half it got.
const completeMarker = "-- PostgreSQL database dump complete"

// dropKind says how far blanking goes: a meta-command ends with its line,
// a statement with its semicolon.
type dropKind uint8

const (
	keep dropKind = iota
	dropLine
	dropStatement
)

type rewriter struct {
	br        *bufio.Reader
	source    string
	created   string // name in the dump's CREATE DATABASE, once seen
	target    string
	lx        lexer
	lineStart bool
	drop      dropKind
	complete  bool // saw completeMarker outside COPY data
	skipRoles bool // blank the statements that name roles (Options.SkipRoles)
	line      int  // number of the line being processed, from 1
	cut       bool // the piece being processed is a line's part, not its end
	// restrict, when set, is the key of the \restrict the stream opens
	// with, so psql itself refuses every meta-command after it.
	restrict string
	out      []byte
	err      error
}

// newRewriter turns a plain-SQL `pg_dump -C` stream of sourceDB into one
// that loads into the database psql is already connected to, targetDB:
//
//   - CREATE DATABASE, ALTER DATABASE <source> OWNER TO and every \connect
//     to the source are blanked (the target exists, the loader owns it, and
//     a \connect would leave psql's single transaction);
//   - ALTER DATABASE, COMMENT ON, SECURITY LABEL ON, GRANT/REVOKE ON
//     DATABASE and ALTER ROLE ... IN DATABASE naming the source get the
//     target's name instead;
//   - everything else, above all COPY data, strings, comments and function
//     bodies, passes byte for byte.
//
// Blanked lines become empty lines, so psql's error line numbers are the
// dump's. If sourceDB is "" or differs from the dump's CREATE DATABASE, the
// dump's own name wins. The stream fails if the dump creates a second
// database or \connects to another one (pg_dumpall output): loading that
// into one database would mix databases. Memory stays bounded by maxPrefix
// whatever the line lengths.
func newRewriter(r io.Reader, sourceDB, targetDB string) *rewriter {
	return &rewriter{br: bufio.NewReaderSize(r, maxPrefix), source: sourceDB, target: targetDB,
		lx: newLexer(), lineStart: true}
}

// Complete reports whether pg_dump's end-of-dump comment went through.
func (rw *rewriter) Complete() bool { return rw.complete }

func (rw *rewriter) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(rw.out) > 0 {
			c := copy(p[n:], rw.out)
			rw.out = rw.out[c:]
			n += c
			continue
		}
		if rw.err != nil || (n > 0 && !rw.lineBuffered()) {
			break
		}
		rw.step()
	}
	if n > 0 {
		return n, nil
	}
	return 0, rw.err
}

// lineBuffered reports whether the next piece is available without
// blocking, so Read returns many short lines at once but never waits for
// more input while it holds output.
func (rw *rewriter) lineBuffered() bool {
	b := rw.br.Buffered()
	if b == 0 {
		return false
	}
	if b >= maxPrefix {
		return true
	}
	buf, _ := rw.br.Peek(b)
	return bytes.IndexByte(buf, '\n') >= 0
}

func (rw *rewriter) step() {
	piece, err := rw.br.ReadSlice('\n')
	rw.cut = err == bufio.ErrBufferFull
	if rw.cut {
		err = nil
	}
	if len(piece) > 0 {
		first := rw.line == 0
		rw.out, rw.err = rw.process(piece)
		if first && rw.restrict != "" && rw.err == nil {
			rw.out = rw.openRestricted(piece, rw.out)
		}
	}
	if err != nil && rw.err == nil {
		rw.err = err
	}
}

// process handles the next piece: a whole line, or the next maxPrefix bytes
// of a longer one. Decisions are made on a line's first piece only, which
// bufio makes the same however the input arrives.
func (rw *rewriter) process(piece []byte) ([]byte, error) {
	start := rw.lineStart
	rw.lineStart = piece[len(piece)-1] == '\n'
	if start {
		rw.line++
	}
	if rw.lx.copying {
		if start && isCopyEnd(piece) {
			rw.lx.copying = false
		}
		return piece, nil
	}
	if !start {
		rw.lx.feed(piece)
		if err := rw.allowMetas(piece, false); err != nil {
			return nil, err
		}
		return rw.emit(piece), nil
	}
	line := bytes.TrimRight(piece, "\r\n")
	var out []byte
	switch {
	case rw.drop != keep: // the rest of a multi-line statement being blanked
	case rw.lx.atStatementStart():
		if string(line) == completeMarker {
			rw.complete = true
		}
		kind, name := classify(line, rw.lineStart)
		if rw.skipRoles && namesRoles(line, rw.lineStart) {
			kind, rw.drop = stmtOther, dropStatement
		}
		switch kind {
		case stmtCreateDB:
			if err := rw.sawCreate(name.name()); err != nil {
				return nil, err
			}
			rw.drop = dropStatement
		case stmtAlterDBOwner:
			if name.name() == rw.source {
				rw.drop = dropStatement
			}
		case stmtDBLevel:
			if name.name() == rw.source {
				out = replaceName(piece, name, rw.target)
			}
		}
		if rw.drop == keep && out == nil {
			if err := rw.meta(line); err != nil {
				return nil, err
			}
		}
	case rw.lx.outsideQuotes():
		if err := rw.meta(line); err != nil {
			return nil, err
		}
	}
	rw.lx.feed(piece)
	if err := rw.allowMetas(piece, true); err != nil {
		return nil, err
	}
	if out != nil {
		return out, nil
	}
	return rw.emit(piece), nil
}

// emit passes a piece, or blanks it while dropping: a blanked line becomes
// one newline, and blanking a statement goes on to the line it ends on.
func (rw *rewriter) emit(piece []byte) []byte {
	if rw.drop == keep {
		return piece
	}
	if !rw.lineStart {
		return nil
	}
	if rw.drop == dropLine || rw.lx.atStatementStart() {
		rw.drop = keep
	}
	return []byte{'\n'}
}

func (rw *rewriter) sawCreate(db string) error {
	if rw.created != "" && rw.created != db {
		return fmt.Errorf("the dump creates more than one database (%q, then %q): pg_dumpall output cannot be loaded into one database", rw.created, db)
	}
	rw.created, rw.source = db, db
	return nil
}

// meta blanks \connect lines to the source; a \connect anywhere else would
// make psql write the rest of the dump into some other database.
func (rw *rewriter) meta(line []byte) error {
	isConnect, db, err := parseConnect(line)
	switch {
	case !isConnect:
		return nil
	case !connectLine.Match(line):
		return rw.refuse(bytes.TrimLeft(line, " \t"), "pg_dump writes no such command")
	case err != nil:
		return fmt.Errorf("dump line %q: %v", line, err)
	case db == "" || db == rw.source:
		rw.drop = dropLine
		return nil
	case rw.source == "":
		return fmt.Errorf("the dump connects to database %q before creating any: pass the dump's database name", db)
	default:
		return fmt.Errorf("the dump of %q switches to database %q (\\connect): pg_dumpall output cannot be loaded into one database", rw.source, db)
	}
}

func isCopyEnd(piece []byte) bool {
	if len(piece) < 2 || len(piece) > 4 || piece[0] != '\\' || piece[1] != '.' {
		return false
	}
	rest := string(piece[2:])
	return rest == "\n" || rest == "\r\n" || rest == "" || rest == "\r"
}

// openRestricted puts the loader's \restrict before the first line's
// output. When the dump's first line is a whole comment line (pg_dump's
// first line is "--"), the command takes its place, so psql's error line
// numbers stay the dump's; otherwise it goes before it, one line more.
func (rw *rewriter) openRestricted(piece, out []byte) []byte {
	head := []byte("\\restrict " + rw.restrict + "\n")
	line := bytes.TrimRight(piece, "\r\n")
	if bytes.HasPrefix(line, []byte("--")) && !rw.cut && len(piece) > len(line) {
		return head
	}
	return append(head, out...)
}
