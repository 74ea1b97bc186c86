package pgload

import (
	"bytes"
	"errors"
	"net/url"
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
