package dumpcheck

import (
	"bytes"
	"errors"
)

// tailSize is how much of the end of a dump is kept to look for pg_dump's
// completion comment; only \unrestrict and blank lines follow it.
const tailSize = 4 << 10

// headSize is how much of the start is kept: a tar header's magic sits at
// offset 257.
const headSize = 512

// ErrIncomplete means the dump decrypted and matched its manifest, but
// pg_dump never finished writing it: every copy is equally truncated.
var ErrIncomplete = errors.New("the dump does not end with pg_dump's completion line: pg_dump was interrupted or the dump was truncated before it was archived")

var completionLines = [][]byte{
	[]byte("-- PostgreSQL database dump complete"),
	[]byte("-- PostgreSQL database cluster dump complete"), // pg_dumpall
}

// Tail remembers the last tailSize bytes written and the first few.
type Tail struct {
	head []byte
	buf  []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	if len(t.head) < headSize {
		n := min(headSize-len(t.head), len(p))
		t.head = append(t.head, p[:n]...)
	}
	if len(p) >= tailSize {
		t.buf = append(t.buf[:0], p[len(p)-tailSize:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// Check reports whether a plain-SQL dump ended as pg_dump ends it. Custom
// and tar archives (pg_dump's, and pg_basebackup's) have no such line and
// are not judged here (see Format; their SHA-256 is checked anyway).
func (t *Tail) Check() error {
	if f := Sniff(t.head); f == FormatCustom || f == FormatTar {
		return nil
	}
	i := -1
	for _, l := range completionLines {
		if j := bytes.LastIndex(t.buf, l); j > i {
			i = j
		}
	}
	if i < 0 {
		return ErrIncomplete
	}
	// Past the comment only blank lines, "--" lines and psql meta-commands
	// (\unrestrict) may follow.
	for _, line := range bytes.Split(t.buf[i:], []byte("\n"))[1:] {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && !bytes.HasPrefix(l, []byte("--")) && !bytes.HasPrefix(l, []byte(`\`)) {
			return ErrIncomplete
		}
	}
	return nil
}
