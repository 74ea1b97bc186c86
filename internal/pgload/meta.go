package pgload

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// parseConnect recognises psql's \connect (or \c) and returns the database
// it switches to; "" means the current one (no name, "-", or a connection
// string without dbname). pg_dump writes `\connect db1`, `\connect "Db1"`
// and, for names outside [A-Za-z0-9_.], `\connect -reuse-previous=on
// "dbname='weird name'"`.
func parseConnect(line []byte) (isConnect bool, db string, err error) {
	s := string(bytes.TrimLeft(line, " \t"))
	var rest string
	switch {
	case strings.HasPrefix(s, `\connect`):
		rest = s[len(`\connect`):]
	case strings.HasPrefix(s, `\c`):
		rest = s[len(`\c`):]
	default:
		return false, "", nil
	}
	if rest != "" && !isSpace(rest[0]) {
		return false, "", nil // \copy, \conninfo, \crosstabview, ...
	}
	args := metaArgs(rest)
	if len(args) > 0 && strings.HasPrefix(args[0], "-reuse-previous=") {
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "-" {
		return true, "", nil
	}
	a := args[0]
	switch {
	case strings.HasPrefix(a, "postgresql://") || strings.HasPrefix(a, "postgres://"):
		db, err = uriDBName(a)
	case strings.Contains(a, "="):
		var kv map[string]string
		kv, err = parseKeywordValue(a)
		db = kv["dbname"]
	default:
		db = a
	}
	return true, db, err
}

// metaArgs splits the arguments of a psql meta-command: whitespace
// separates them, "..." keeps its content (with "" for "), '...' too (with
// backslash escapes), as psql does for \connect's arguments.
func metaArgs(s string) []string {
	var args []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSpace(c):
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
			continue
		case c == '"':
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						i++
					} else {
						break
					}
				}
				cur.WriteByte(s[i])
			}
		case c == '\'':
			for i++; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				} else if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i++
					} else {
						break
					}
				}
				cur.WriteByte(s[i])
			}
		default:
			cur.WriteByte(c)
		}
		in = true
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// parseKeywordValue reads a libpq "key=value key='va lue'" string.
func parseKeywordValue(s string) (map[string]string, error) {
	pairs, err := splitKeywordValue(s)
	kv := map[string]string{}
	for _, p := range pairs {
		kv[p[0]] = p[1]
	}
	return kv, err
}

// splitKeywordValue returns the key/value pairs of a libpq connection
// string in order, values unquoted.
func splitKeywordValue(s string) ([][2]string, error) {
	var pairs [][2]string
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return pairs, nil
		}
		k := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[k:i]
		skip()
		if i >= len(s) || s[i] != '=' || key == "" {
			return pairs, errors.New("malformed connection string: want key=value")
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			for i++; ; i++ {
				if i >= len(s) {
					return pairs, errors.New("malformed connection string: unterminated quoted value")
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				} else if s[i] == '\'' {
					i++
					break
				}
				v.WriteByte(s[i])
			}
		} else {
			for ; i < len(s) && !isSpace(s[i]); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
		}
		pairs = append(pairs, [2]string{key, v.String()})
	}
}

func uriDBName(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if db := u.Query().Get("dbname"); db != "" {
		return db, nil
	}
	return strings.TrimPrefix(u.Path, "/"), nil
}

// The meta-commands pg_dump writes, whole lines each, in the only forms
// it writes them: \connect (or \c) to a database, possibly as a connection
// string; \restrict / \unrestrict with a key of letters and digits; and
// \encoding with an encoding's name (before its \connect).
// Anything else psql would run (\! shell commands, \copy and \o that write
// files, \i that reads them, \set, \gexec, backquotes in arguments, a second
// command after the first on one line) has no place in a dump and is
// refused before psql sees the line.
var (
	connectLine = regexp.MustCompile(`^\\(connect|c)( +-reuse-previous=on)? +([A-Za-z0-9_]+|"([^"\r\n]|"")*") *\r?\n?$`)
	sessionLine = regexp.MustCompile(`^\\(restrict|unrestrict|encoding) +[A-Za-z0-9_]+ *\r?\n?$`)
)

// allowMetas checks every meta-command that starts in piece (lineStart:
// piece begins a line). \connect lines were judged by meta already; the
// dump's own \restrict, \unrestrict and \encoding are blanked, since the
// loader puts its own \restrict first and psql then allows no other
// command (the dump sets client_encoding in SQL right after its \connect).
func (rw *rewriter) allowMetas(piece []byte, lineStart bool) error {
	for _, off := range rw.lx.metas {
		cmd := piece[off:]
		atStart := lineStart && len(bytes.TrimLeft(piece[:off], " \t")) == 0
		nl := bytes.IndexByte(cmd, '\n')
		if nl < 0 && rw.cut {
			// The command runs on past this piece, over 64 KiB: no
			// meta-command pg_dump writes is that long.
			return rw.refuse(cmd, "it is longer than any pg_dump writes")
		}
		whole := cmd
		if nl >= 0 {
			whole = cmd[:nl+1]
		}
		switch {
		case atStart && connectLine.Match(whole):
		case atStart && sessionLine.Match(whole):
			rw.drop = dropLine
		default:
			return rw.refuse(whole, "pg_dump writes no such command")
		}
	}
	return nil
}

// refuse says which meta-command was refused where, without repeating
// more of the line than its command word (it may be long, or a secret).
func (rw *rewriter) refuse(cmd []byte, why string) error {
	word := cmd
	if i := bytes.IndexAny(word[1:], " \t\r\n"); i >= 0 {
		word = word[:i+1]
	}
	if len(word) > 20 {
		word = append(word[:20:20], "..."...)
	}
	return fmt.Errorf("%w: line %d: psql meta-command %q (%s); a dump this archive vouches for must not run commands on the loading host", ErrMetaCommand, rw.line, strings.ToValidUTF8(string(word), "?"), why)
}

// ErrMetaCommand marks a dump refused for a psql meta-command it must not
// contain: a forged or tampered dump.
var ErrMetaCommand = errors.New("refused")
