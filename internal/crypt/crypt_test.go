package crypt

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"filippo.io/age"
)

func encrypt(t testing.TB, recipients []age.Recipient, plain []byte) (got []byte, predicted int64) {
	e, err := New(recipients)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := e.Start(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), e.Size(int64(len(plain)))
}

func TestSizeIsExact(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	sc, _ := age.NewScryptRecipient("pw")
	sc.SetWorkFactor(10)
	sets := map[string][]age.Recipient{
		"x25519": {x.Recipient()}, "pq": {pq.Recipient()}, "scrypt": {sc},
		"two x25519": {x.Recipient(), x.Recipient()},
	}
	ids := map[string]age.Identity{"x25519": x, "pq": pq, "two x25519": x}
	for name, recips := range sets {
		for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3*chunkSize + 7} {
			plain := make([]byte, n)
			rand.Read(plain)
			ct, predicted := encrypt(t, recips, plain)
			if int64(len(ct)) != predicted {
				t.Errorf("%s, %d bytes: predicted %d, got %d", name, n, predicted, len(ct))
			}
			if id, ok := ids[name]; ok {
				r, err := age.Decrypt(bytes.NewReader(ct), id)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				back, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("%s, %d bytes: round trip failed: %v", name, n, err)
				}
			}
		}
	}
}

func TestStartTwice(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	e, _ := New([]age.Recipient{x.Recipient()})
	e.Start(io.Discard)
	if _, err := e.Start(io.Discard); err == nil {
		t.Error("second Start accepted")
	}
	if e.Size(-1) != -1 {
		t.Error("unknown size must stay unknown")
	}
}

// FuzzStreamSize compares the formula with real encryptions.
func FuzzStreamSize(f *testing.F) {
	x, _ := age.GenerateX25519Identity()
	f.Add(uint32(0))
	f.Add(uint32(chunkSize))
	f.Fuzz(func(t *testing.T, n uint32) {
		n %= 4 * chunkSize
		ct, predicted := encrypt(t, []age.Recipient{x.Recipient()}, make([]byte, n))
		if int64(len(ct)) != predicted {
			t.Fatalf("%d bytes: predicted %d, got %d", n, predicted, len(ct))
		}
	})
}
