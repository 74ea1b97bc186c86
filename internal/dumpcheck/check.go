package dumpcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrBroken marks a dump that cannot restore: not the compression it claims,
// cut short, empty, or a plain-SQL dump without pg_dump's completion line.
var ErrBroken = errors.New("the dump cannot be restored")

// Checker judges a dump while it streams by: write the dump as stored
// (compressed) into it, then Close and read the verdict. It decompresses on
// its own goroutine, so it costs another core rather than time.
type Checker struct {
	pw      *io.PipeWriter
	verdict chan result
	format  string
}

type result struct {
	format string
	err    error
}

// Start begins checking a dump compressed with compression (a manifest's
// compression name).
func Start(compression string) *Checker {
	pr, pw := io.Pipe()
	c := &Checker{pw: pw, verdict: make(chan result, 1)}
	go func() {
		f, err := judge(compression, pr)
		// Whatever was decided, read the rest: the writer must never block.
		io.Copy(io.Discard, pr)
		c.verdict <- result{f, err}
	}()
	return c
}

// Write feeds the next bytes of the dump as stored.
func (c *Checker) Write(p []byte) (int, error) { return c.pw.Write(p) }

// Close ends the dump and returns the verdict: nil for a dump pg_dump
// finished, else an error wrapping ErrBroken that says what is wrong.
func (c *Checker) Close() error {
	c.pw.Close()
	r := <-c.verdict
	c.format = r.format
	return r.err
}

// Format is what Close found: "plain", "dumpall", "custom" or "tar".
func (c *Checker) Format() string { return c.format }

func judge(compression string, r io.Reader) (string, error) {
	dec, err := Decompress(compression, r)
	if err != nil {
		return "", fmt.Errorf("%w: it is not %s data (%v)", ErrBroken, compression, err)
	}
	defer dec.Close()
	var t Tail
	n, err := io.Copy(&t, dec)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: its %s stream is damaged or cut short after %d bytes (%v)", ErrBroken, compression, n, err)
	case n == 0:
		return "", fmt.Errorf("%w: it is empty", ErrBroken)
	}
	return t.Format()
}

// tarEnd is how a tar archive ends: two zero blocks.
var tarEnd = make([]byte, 1024)

// Format names a finished dump's format from its first and last bytes, or
// says why it is not one pg_dump finished:
//   - custom (pg_dump -Fc): "PGDMP", format version 1.x, integer and offset
//     sizes of 4 or 8 bytes, format byte 1 (the table of contents is
//     pg_restore's to read);
//   - tar (pg_dump -Ft): "ustar" at offset 257, ending in two zero blocks;
//   - plain SQL: the completion comment near the end; "dumpall" when it
//     begins as pg_dumpall begins ("-- PostgreSQL database cluster dump").
func (t *Tail) Format() (string, error) {
	f := Sniff(t.head)
	switch f {
	case FormatCustom:
		h := t.head
		if len(h) < 11 || h[5] != 1 || (h[8] != 4 && h[8] != 8) || (h[9] != 4 && h[9] != 8) || h[10] != 1 {
			return "custom", fmt.Errorf("%w: its pg_dump custom-format header is not one pg_dump writes", ErrBroken)
		}
		return "custom", nil
	case FormatTar:
		if !bytes.HasSuffix(t.buf, tarEnd) {
			return "tar", fmt.Errorf("%w: the tar archive does not end with its two zero blocks (cut short)", ErrBroken)
		}
		return "tar", nil
	}
	if err := t.Check(); err != nil {
		return f, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	return f, nil
}

// Dump formats, as Sniff and Format name them (and manifests record).
const (
	FormatPlain   = "plain"   // pg_dump SQL
	FormatDumpall = "dumpall" // pg_dumpall SQL
	FormatCustom  = "custom"  // pg_dump -Fc
	FormatTar     = "tar"     // pg_dump -Ft
)

// Sniff names a dump's format from its first bytes (at least 512 for tar):
// "PGDMP" starts a custom-format dump, "ustar" at offset 257 is a tar
// archive, pg_dumpall's header comment (only blank and "--" lines before
// it) a cluster dump; anything else is taken for plain SQL.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("PGDMP")):
		return FormatCustom
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return FormatTar
	}
	for _, line := range bytes.SplitN(head, []byte("\n"), 8) {
		l := bytes.TrimSpace(line)
		switch {
		case len(l) == 0 || string(l) == "--":
			continue
		case bytes.HasPrefix(l, []byte("-- PostgreSQL database cluster dump")):
			return FormatDumpall
		}
		break
	}
	return FormatPlain
}
