package tee

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

type failAfter struct {
	n   int
	buf bytes.Buffer
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.buf.Len()+len(p) > f.n {
		return 0, errors.New("disk on fire")
	}
	return f.buf.Write(p)
}

var small = Options{BlockSize: 1000, Depth: 3}

func TestCopiesEverythingInOrder(t *testing.T) {
	data := make([]byte, 10_500)
	rand.Read(data)
	var a, b bytes.Buffer
	h := sha256.New()
	res, err := Copy(iotest.HalfReader(bytes.NewReader(data)), []Sink{{W: h}, {W: &a, Optional: true}, {W: &b, Optional: true}}, small)
	if err != nil || res.N != int64(len(data)) {
		t.Fatalf("Copy: %v, n=%d", err, res.N)
	}
	if !bytes.Equal(a.Bytes(), data) || !bytes.Equal(b.Bytes(), data) {
		t.Fatal("sink content differs")
	}
	if sum := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatal("hash differs")
	}
}

func TestOptionalFailureIsIsolated(t *testing.T) {
	data := make([]byte, 10_000)
	rand.Read(data)
	var good bytes.Buffer
	bad := &failAfter{n: 2500}
	res, err := Copy(bytes.NewReader(data), []Sink{{W: bad, Optional: true}, {W: &good, Optional: true}}, small)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if res.Errs[0] == nil || res.Errs[1] != nil {
		t.Fatalf("errs = %v", res.Errs)
	}
	if !bytes.Equal(good.Bytes(), data) {
		t.Fatal("surviving sink incomplete")
	}
}

func TestAllOptionalFail(t *testing.T) {
	data := make([]byte, 100_000)
	_, err := Copy(bytes.NewReader(data), []Sink{{W: io.Discard}, {W: &failAfter{n: 10}, Optional: true}}, small)
	if !errors.Is(err, ErrAllOptionalFailed) {
		t.Fatalf("err = %v", err)
	}
}

func TestRequiredFailureStops(t *testing.T) {
	_, err := Copy(bytes.NewReader(make([]byte, 100_000)), []Sink{{W: &failAfter{n: 10}}, {W: io.Discard, Optional: true}}, small)
	if err == nil {
		t.Fatal("required failure ignored")
	}
}

func TestReadErrorStops(t *testing.T) {
	boom := errors.New("boom")
	_, err := Copy(io.MultiReader(bytes.NewReader(make([]byte, 5000)), iotest.ErrReader(boom)), []Sink{{W: io.Discard}}, small)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmpty(t *testing.T) {
	var b bytes.Buffer
	res, err := Copy(bytes.NewReader(nil), []Sink{{W: &b}}, small)
	if err != nil || res.N != 0 || b.Len() != 0 {
		t.Fatalf("%v %d", err, res.N)
	}
}
