package pgload

import (
	"strings"
	"testing"
)

func TestScanProps(t *testing.T) {
	head := `--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET client_encoding = 'LATIN1';
SET standard_conforming_strings = on;

--
-- Name: "Shop 1"; Type: DATABASE; Schema: -; Owner: app_owner
--

CREATE DATABASE "Shop 1" WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE_PROVIDER = libc LOCALE = 'C';


ALTER DATABASE "Shop 1" OWNER TO "App Owner";

\connect -reuse-previous=on "dbname='Shop 1'"

COPY public.t (v) FROM stdin;
CREATE DATABASE evil WITH ENCODING = 'UTF8';
\.
`
	p := ScanProps([]byte(head))
	want := Props{Encoding: "LATIN1", LocaleProvider: "libc", Locale: "C", Owner: "App Owner"}
	if p != want {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if got := p.createOptions("App Owner"); got != ` WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE_PROVIDER = libc LOCALE = 'C' OWNER = "App Owner"` {
		t.Fatalf("options %s", got)
	}

	// PostgreSQL 15 writes LC_COLLATE and LC_CTYPE; a dump without -C only
	// its client_encoding.
	p = ScanProps([]byte("CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LC_COLLATE = 'en_US.UTF-8' LC_CTYPE = 'de''DE';\n"))
	if p.Collate != "en_US.UTF-8" || p.Ctype != "de'DE" || p.Encoding != "UTF8" {
		t.Fatalf("%+v", p)
	}
	if got := p.createOptions(""); !strings.Contains(got, `LC_CTYPE = 'de''DE'`) {
		t.Fatalf("quoting: %s", got)
	}
	if p := ScanProps([]byte("SET client_encoding = 'UTF8';\nSELECT 1;\n")); p != (Props{Encoding: "UTF8"}) {
		t.Fatalf("%+v", p)
	}
	// What is not a plain name is never taken for an encoding.
	if p := ScanProps([]byte("CREATE DATABASE x WITH ENCODING = 'UTF8; DROP';\n")); p.Encoding != "" {
		t.Fatalf("%+v", p)
	}
	if (Props{}).Describe() != "the cluster's defaults" {
		t.Fatal("describe")
	}
}

// FuzzScanProps: never panics, and whatever it finds renders as options
// whose quotes are balanced (nothing escapes its literal).
func FuzzScanProps(f *testing.F) {
	f.Add([]byte("SET client_encoding = 'LATIN1';\nCREATE DATABASE a WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE = 'C';\nALTER DATABASE a OWNER TO b;\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		p := ScanProps(head)
		opts := p.createOptions("")
		if p.Owner != "" && p.createOptions(p.Owner) != opts+" OWNER = "+quoteIdent(p.Owner) {
			t.Fatalf("owner not appended as a quoted name: %s", p.createOptions(p.Owner))
		}
		// Outside literals, only the fixed keywords appear.
		var outside strings.Builder
		inLit := false
		for i := 0; i < len(opts); i++ {
			c := opts[i]
			if c == '\'' {
				if inLit && i+1 < len(opts) && opts[i+1] == '\'' {
					i++
					continue
				}
				inLit = !inLit
				continue
			}
			if !inLit {
				outside.WriteByte(c)
			}
		}
		if inLit {
			t.Fatalf("unbalanced quotes: %s", opts)
		}
		rest := outside.String()
		if strings.ContainsAny(rest, ";\"\\") {
			t.Fatalf("%q outside literals in %s", rest, opts)
		}
	})
}
