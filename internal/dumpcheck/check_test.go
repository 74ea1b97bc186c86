package dumpcheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const plain = "--\n-- PostgreSQL database dump\n--\nSELECT 1;\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func check(compression string, b []byte) (string, error) {
	c := Start(compression)
	// Small writes, as the archive's tee hands them on.
	for len(b) > 0 {
		n := min(len(b), 7)
		c.Write(b[:n])
		b = b[n:]
	}
	err := c.Close()
	return c.Format(), err
}

func TestChecker(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "toc.dat", Mode: 0o600, Size: 3})
	tw.Write([]byte("toc"))
	tw.Close()
	custom := append([]byte("PGDMP\x01\x10\x00\x04\x08\x01"), bytes.Repeat([]byte{0}, 100)...)
	big := []byte(strings.Repeat("COPY row\n", 50000) + plain)
	good := map[string]struct {
		compression string
		data        []byte
		format      string
	}{
		"plain":                      {"none", []byte(plain), "plain"},
		"gzip":                       {"gzip", gz(big), "plain"},
		"zstd":                       {"zstd", zst(big), "plain"},
		"pg_dumpall":                 {"gzip", gz([]byte("--\n-- PostgreSQL database cluster dump\n--\n\nSET x;\n--\n-- PostgreSQL database cluster dump complete\n--\n")), "dumpall"},
		"plain, then a cluster line": {"gzip", gz([]byte("SET x;\n-- PostgreSQL database cluster dump\n--\n-- PostgreSQL database cluster dump complete\n--\n")), "plain"},
		"custom in gzip":             {"gzip", gz(custom), "custom"},
		"custom":                     {"none", custom, "custom"},
		"tar":                        {"none", tb.Bytes(), "tar"},
	}
	for name, c := range good {
		if f, err := check(c.compression, c.data); err != nil || f != c.format {
			t.Errorf("%s: %q, %v", name, f, err)
		}
	}
	full := gz(big)
	bad := map[string]struct {
		compression string
		data        []byte
		want        string
	}{
		"gzip of nothing":          {"gzip", gz(nil), "empty"},
		"not gzip":                 {"gzip", []byte(plain), "not gzip data"},
		"truncated gzip":           {"gzip", full[:len(full)/2], "cut short"},
		"gzip without its trailer": {"gzip", full[:len(full)-4], "cut short"},
		"truncated zstd":           {"zstd", zst(big)[:100], "cut short"},
		"no completion line":       {"gzip", gz([]byte("SELECT 1;\n")), "completion line"},
		"cut custom header":        {"none", []byte("PGDMP\x01"), "custom-format header"},
		"cut tar":                  {"none", tb.Bytes()[:600], "two zero blocks"},
		"nothing at all":           {"none", nil, "empty"},
	}
	for name, c := range bad {
		_, err := check(c.compression, c.data)
		if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBroken saying %q", name, err, c.want)
		}
	}
}

func FuzzChecker(f *testing.F) {
	f.Add([]byte(plain), false)
	f.Add(gz([]byte(plain)), true)
	f.Fuzz(func(t *testing.T, b []byte, compressed bool) {
		comp := "none"
		if compressed {
			comp = "gzip"
		}
		format, err := check(comp, b)
		if err == nil && format == "" {
			t.Fatal("accepted a dump without naming its format")
		}
	})
}
