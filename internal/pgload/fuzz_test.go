package pgload

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// isRewrite reports whether out is in with one span that names the source
// database replaced by the quoted target.
func isRewrite(in, out, target string, sources ...string) bool {
	q := quoteIdent(target)
	for i := 0; i <= len(in) && i <= len(out); i++ {
		if i > 0 && in[i-1] != out[i-1] {
			break
		}
		rest, ok := strings.CutPrefix(out[i:], q)
		if !ok || len(in)-len(rest) < i || !strings.HasSuffix(in, rest) {
			continue
		}
		span := in[i : len(in)-len(rest)]
		t := token{text: span, quoted: strings.HasPrefix(span, `"`) && len(span) >= 2}
		for _, s := range sources {
			if t.name() == s {
				return true
			}
		}
	}
	return false
}

// FuzzRewriter checks, for any input: no panic; the output does not depend on
// how reads split the input; output line i is input line i, blank, or input
// line i with the source name replaced; and a COPY block at the start passes
// byte for byte whatever its rows contain.
func FuzzRewriter(f *testing.F) {
	// Small seeds: the fuzzer minimises every input that finds new coverage,
	// which takes minutes for a whole dump (those are unit-tested instead).
	for i, seed := range []string{
		"CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8';\nALTER DATABASE shop OWNER TO postgres;\n\\unrestrict k\n\\connect shop\n\\restrict k\n",
		"\\encoding SQL_ASCII\n\\connect -reuse-previous=on \"dbname='Weird Name'\"\nCOMMENT ON DATABASE \"Weird Name\" IS 'w';\n",
		"ALTER DATABASE shop SET work_mem TO '8MB';\nALTER ROLE bob IN DATABASE shop SET a TO '4';\nGRANT CONNECT ON DATABASE shop TO bob;\n",
		"CREATE FUNCTION f() RETURNS text AS $b$\nGRANT ALL ON DATABASE shop TO x;\n$b$;\nCOMMENT ON TABLE t IS E'a\\'\n\\connect other';\n",
		"/* c\n\\c x */ SELECT \"q\"\"\n\\c y\"; -- z\nCOPY t FROM stdin;\n\\connect z\n\\.\n" + completeMarker + "\n",
		"SECURITY LABEL FOR p ON DATABASE \"shop\" IS 'x';\nREVOKE ALL ON DATABASE SHOP FROM PUBLIC;\nCREATE DATABASE other;\n",
	} {
		f.Add([]byte(seed), []byte("CREATE DATABASE shop;\n\\connect shop\n"), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data, rows []byte, seed uint64) {
		const source = "shop"
		target := []string{"tgt", `Odd "T"`, "shop"}[seed%3]
		// The rows of a COPY block may hold anything but a line \. (its end).
		var block bytes.Buffer
		block.WriteString("COPY public.t (a) FROM stdin;\n")
		for _, l := range bytes.SplitAfter(rows, []byte("\n")) {
			if len(l) == 0 || isCopyEnd(l) {
				continue
			}
			block.Write(l)
			if l[len(l)-1] != '\n' {
				block.WriteByte('\n')
			}
		}
		block.WriteString("\\.\n")
		in := append(block.Bytes(), data...)

		rw := newRewriter(bytes.NewReader(in), source, target)
		rw.skipRoles = seed&4 != 0
		wantb, wantErr := io.ReadAll(rw)
		want := string(wantb)
		for i, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, chunks(seed)} {
			rw2 := newRewriter(wrap(bytes.NewReader(in)), source, target)
			rw2.skipRoles = rw.skipRoles
			gotb, err := io.ReadAll(rw2)
			got := string(gotb)
			if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("reader %d: output or error differs from a single read:\n got %q, %v\nwant %q, %v", i, got, err, want, wantErr)
			}
		}
		if !strings.HasPrefix(want, block.String()) {
			t.Fatalf("COPY block changed:\n got %q\nwant prefix %q", want, block.String())
		}
		inLines := strings.Split(string(in), "\n")
		outLines := strings.Split(want, "\n")
		if len(outLines) > len(inLines) {
			t.Fatalf("%d output lines from %d input lines", len(outLines), len(inLines))
		}
		for i, o := range outLines {
			l := inLines[i]
			last := i == len(outLines)-1
			switch {
			case o == l, o == "", strings.TrimRight(l, "\r") == "" && o == "":
			case last && (strings.HasPrefix(l, o) || wantErr != nil): // cut short by EOF or an error
			case isRewrite(l, o, target, source, rw.created): // the dump's CREATE DATABASE names the source
			default:
				t.Fatalf("line %d: %q became %q", i+1, l, o)
			}
		}
	})
}
