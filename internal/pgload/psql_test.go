package pgload

import (
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/pgbin"
)

func TestStripPassword(t *testing.T) {
	for _, c := range []struct{ in, clean, password string }{
		{"host=/tmp port=5432 user=u password=secret dbname=db", "host=/tmp port=5432 user=u dbname=db", "secret"},
		{"host=h password='se cr\\'et' dbname='my db'", "host=h dbname='my db'", "se cr'et"},
		{"host=h dbname=db", "host=h dbname=db", ""},
		{"postgres://u:secret@h:5/db?sslmode=disable", "postgres://u@h:5/db?sslmode=disable", "secret"},
		{"postgresql://u@h/db?password=secret&application_name=x", "postgresql://u@h/db?application_name=x", "secret"},
		{"", "", ""},
	} {
		clean, pw, err := stripPassword(c.in)
		if err != nil || clean != c.clean || pw != c.password {
			t.Errorf("stripPassword(%q) = %q, %q, %v; want %q, %q", c.in, clean, pw, err, c.clean, c.password)
		}
	}
	if _, _, err := stripPassword("host=h password='open"); err == nil {
		t.Error("unterminated value: no error")
	}
	if _, _, err := stripPassword("postgres://u:sec ret@h:bad/db"); err == nil || strings.Contains(err.Error(), "sec") {
		t.Errorf("bad URL: %v", err)
	}
	env := psqlEnv("s3cret")
	n := 0
	for _, e := range env {
		if strings.HasPrefix(e, "PGPASSWORD=") {
			n++
		}
	}
	if n != 1 || env[len(env)-1] != "PGPASSWORD=s3cret" {
		t.Errorf("psqlEnv: %d PGPASSWORD entries", n)
	}
	for _, a := range psqlArgs("host=h dbname=db", "-") {
		if strings.Contains(a, "s3cret") {
			t.Errorf("password on the command line")
		}
	}
}

func TestTail(t *testing.T) {
	tl := &pgbin.Tail{Max: 10}
	for _, s := range []string{"0123456789", "abc", "\nde\xff"} {
		tl.Write([]byte(s))
	}
	if got := tl.String(); got != "789abc\nde?" {
		t.Errorf("tail = %q", got)
	}
}
