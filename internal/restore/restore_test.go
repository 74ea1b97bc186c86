package restore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
)

func sqlDump(rows int, complete bool) []byte {
	var b bytes.Buffer
	b.WriteString("--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (a, b) FROM stdin;\n")
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "%d\t%x\n", i, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	}
	b.WriteString("\\.\n\n")
	if complete {
		b.WriteString("\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n")
	}
	return b.Bytes()
}

type fixture struct {
	plain, dump, cipher []byte
	m                   *manifest.Manifest
	ids                 *keys.Identities
}

func newFixture(t *testing.T, plain []byte) *fixture {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	id, _ := age.GenerateX25519Identity()
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(gz.Bytes())
	w.Close()
	sum := sha256.Sum256(gz.Bytes())
	created := time.Date(2026, 11, 21, 1, 2, 3, 0, time.UTC)
	m := &manifest.Manifest{Format: 1, Database: "db1", Archive: "db1_20261121T010203Z.sql.gz.age", Created: created,
		Dump:       manifest.Dump{Size: int64(gz.Len()), SHA256: hex.EncodeToString(sum[:]), Compression: "gzip", Source: "file"},
		Ciphertext: manifest.Blob{Size: int64(ct.Len()), SHA256: strings.Repeat("0", 64)},
		Key:        manifest.Key{Recipients: []manifest.Recipient{{Kind: "x25519", Fingerprint: "sha256:00"}}},
		Pgarchive:  manifest.Provenance{Version: "test"}}
	return &fixture{plain: plain, dump: gz.Bytes(), cipher: ct.Bytes(), m: m,
		ids: &keys.Identities{List: []age.Identity{id}, Label: "identity file test"}}
}

func copyOf(name string, data []byte) Copy {
	return Copy{Upstream: name, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func (f *fixture) read(t *testing.T, raw bool, copies ...Copy) ([]byte, *Reader, error) {
	r := Open(context.Background(), copies, Options{Manifest: f.m, Identities: f.ids, Raw: raw})
	// Small reads exercise the resume-at-offset arithmetic.
	var out bytes.Buffer
	buf := make([]byte, 1000)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), r, nil
		}
		if err != nil {
			return out.Bytes(), r, err
		}
	}
}

func TestRestoresAndFallsBack(t *testing.T) {
	f := newFixture(t, sqlDump(20000, true))
	flipped := bytes.Clone(f.cipher)
	flipped[len(flipped)*2/3] ^= 1
	truncated := f.cipher[:len(f.cipher)/2]
	missing := Copy{Upstream: "gone", Open: func(context.Context) (io.ReadCloser, error) { return nil, errors.New("object not found") }}

	got, r, err := f.read(t, false, copyOf("flipped", flipped), missing, copyOf("truncated", truncated), copyOf("good", f.cipher))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.plain) {
		t.Fatalf("restored %d bytes, want the %d-byte dump", len(got), len(f.plain))
	}
	if r.Used != "good" || len(r.Failures) != 3 {
		t.Errorf("used %q after failures %v", r.Used, r.Failures)
	}
	raw, _, err := f.read(t, true, copyOf("good", f.cipher))
	if err != nil || !bytes.Equal(raw, f.dump) {
		t.Errorf("raw restore: err %v, equal %v", err, bytes.Equal(raw, f.dump))
	}
}

func TestAllCopiesBad(t *testing.T) {
	f := newFixture(t, sqlDump(100, true))
	flipped := bytes.Clone(f.cipher)
	flipped[len(flipped)-5] ^= 1
	_, _, err := f.read(t, false, copyOf("a", flipped))
	if err == nil || !strings.Contains(err.Error(), "no copy could be restored") || !strings.Contains(err.Error(), "a:") {
		t.Errorf("got %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	f := newFixture(t, sqlDump(100, true))
	other, _ := age.GenerateX25519Identity()
	f.ids = &keys.Identities{List: []age.Identity{other}, Label: "identity file /k"}
	_, _, err := f.read(t, false, copyOf("a", f.cipher), copyOf("b", f.cipher))
	if err == nil || !strings.Contains(err.Error(), "identity file /k does not decrypt it; it was encrypted to x25519 sha256:00") {
		t.Errorf("got %v", err)
	}
}

func TestIncompleteDump(t *testing.T) {
	f := newFixture(t, sqlDump(100, false))
	_, _, err := f.read(t, false, copyOf("a", f.cipher))
	if !errors.Is(err, dumpcheck.ErrIncomplete) {
		t.Errorf("got %v", err)
	}
}

func TestManifestMismatch(t *testing.T) {
	f := newFixture(t, sqlDump(100, true))
	f.m.Dump.SHA256 = strings.Repeat("a", 64)
	_, _, err := f.read(t, false, copyOf("a", f.cipher))
	if err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("got %v", err)
	}
}
