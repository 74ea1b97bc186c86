package restore

import (
	"bytes"
	"errors"
)

// tailSize is how much of the end of a dump is kept to look for pg_dump's
// completion comment; only \unrestrict and blank lines follow it.
const tailSize = 4 << 10

// ErrIncompleteDump means the dump decrypted and matched its manifest, but
// pg_dump never finished writing it: every copy is equally truncated.
var ErrIncompleteDump = errors.New("the dump does not end with pg_dump's completion line: pg_dump was interrupted or the dump was truncated before it was archived")

var completionLines = [][]byte{
	[]byte("-- PostgreSQL database dump complete"),
	[]byte("-- PostgreSQL database cluster dump complete"), // pg_dumpall
}

// tail remembers the last tailSize bytes written and the first few.
type tail struct {
	head []byte
	buf  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	if len(t.head) < 8 {
		n := min(8-len(t.head), len(p))
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

// check reports whether a plain-SQL dump ended as pg_dump ends it. Custom
// and other binary formats (PGDMP) have no such line and are not judged.
func (t *tail) check() error {
	if bytes.HasPrefix(t.head, []byte("PGDMP")) {
		return nil
	}
	i := -1
	for _, l := range completionLines {
		if j := bytes.LastIndex(t.buf, l); j > i {
			i = j
		}
	}
	if i < 0 {
		return ErrIncompleteDump
	}
	// Past the comment only blank lines, "--" lines and psql meta-commands
	// (\unrestrict) may follow.
	for _, line := range bytes.Split(t.buf[i:], []byte("\n"))[1:] {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && !bytes.HasPrefix(l, []byte("--")) && !bytes.HasPrefix(l, []byte(`\`)) {
			return ErrIncompleteDump
		}
	}
	return nil
}
