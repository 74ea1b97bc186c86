package crypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
)

// sealed encrypts plain to a fresh identity and returns the ciphertext, the
// pin archive would record, and the identity.
func sealed(t testing.TB, plain []byte) ([]byte, string, *age.X25519Identity) {
	id, _ := age.GenerateX25519Identity()
	e, err := New([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := e.Start(&buf)
	w.Write(plain)
	w.Close()
	return buf.Bytes(), e.HeaderSHA256(), id
}

func TestHeaderPin(t *testing.T) {
	ct, pin, id := sealed(t, []byte("hello"))
	r, err := CheckHeader(bytes.NewReader(ct), pin)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := age.Decrypt(r, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(pr); string(got) != "hello" {
		t.Fatalf("decrypted %q", got)
	}
	// Another archive's data, encrypted to the same key, is refused
	// before decryption.
	other, _, _ := sealed(t, []byte("hello"))
	if _, err := CheckHeader(bytes.NewReader(other), pin); !errors.Is(err, ErrHeaderPin) {
		t.Fatalf("another header: %v", err)
	}
	for name, b := range map[string][]byte{"empty": nil, "not age": []byte("PGDMP"), "cut": ct[:40]} {
		if _, err := CheckHeader(bytes.NewReader(b), pin); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzCheckHeader(f *testing.F) {
	ct, pin, _ := sealed(f, []byte("x"))
	f.Add(ct)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\nxyz\n--- mac\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range []string{pin, headerPin(b)} {
			r, err := CheckHeader(bytes.NewReader(b), p)
			if err != nil {
				continue
			}
			n, err := HeaderLen(b)
			if err != nil || headerPin(b[:n]) != p {
				t.Fatalf("accepted a header whose pin is not %s", p)
			}
			if rest, _ := io.ReadAll(r); !bytes.Equal(rest, b) {
				t.Fatal("the stream handed on is not the input")
			}
		}
	})
}

// headerPin is the pin of b's header, or of all of b when it holds none.
func headerPin(b []byte) string {
	n, err := HeaderLen(b)
	if err == nil {
		b = b[:n]
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
