package pgload

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// psqlArgs are the flags of every psql run: no ~/.psqlrc (it could change
// settings or echo), quiet, never prompt for a password (psql runs in its
// own process group, where reading the terminal would stop it), stop at the
// first error, and one transaction, so a failed load leaves nothing behind.
func psqlArgs(conn, file string) []string {
	args := []string{"-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", file}
	if conn != "" {
		args = append(args, "-d", conn)
	}
	return args
}

// psqlEnv is our environment plus PGPASSWORD when the connection string
// had a password: a command line is visible to every local user in ps.
func psqlEnv(password string) []string {
	env := os.Environ()
	if password == "" {
		return env
	}
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "PGPASSWORD=") {
			out = append(out, e)
		}
	}
	return append(out, "PGPASSWORD="+password)
}

// stripPassword removes the password from a libpq URL or keyword/value
// connection string and returns it separately.
func stripPassword(conn string) (clean, password string, err error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", "", errors.New("cannot parse the connection URL") // url's message would repeat it, password included
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				password = p
				u.User = url.User(u.User.Username())
			}
		}
		q := u.Query()
		if q.Has("password") {
			password = q.Get("password")
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), password, nil
	}
	pairs, err := splitKeywordValue(conn)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	for _, p := range pairs {
		if p[0] == "password" {
			password = p[1]
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", p[0], quoteConnValue(p[1]))
	}
	return b.String(), password, nil
}

func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
