package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/remote"
)

// TestSpoolAndDurations: the spool gets byte for byte what the upstreams
// got, and every upstream reports how long it took.
func TestSpoolAndDurations(t *testing.T) {
	ups, k, _, dir := setup(t)
	dump := filepath.Join(dir, "db1.sql")
	os.WriteFile(dump, bytes.Repeat([]byte("spool me "), 300_000), 0o600)
	src, err := OpenFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var spool bytes.Buffer
	j := job(t, ups, k, src, time.Now())
	j.Spool = &spool
	res, err := Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Spooled || res.SpoolErr != nil {
		t.Fatalf("spooled = %v, %v", res.Spooled, res.SpoolErr)
	}
	stored, _ := os.ReadFile(filepath.Join(dir, "a", res.Key))
	if !bytes.Equal(spool.Bytes(), stored) {
		t.Fatalf("spool holds %d bytes that differ from the %d stored", spool.Len(), len(stored))
	}
	body, _ := os.ReadFile(filepath.Join(dir, "b", res.Key+".manifest.json"))
	if !bytes.Equal(body, res.ManifestBody) {
		t.Fatal("ManifestBody differs from the stored manifest")
	}
	for _, o := range res.Outcomes {
		if o.Duration <= 0 {
			t.Errorf("%s: duration %v", o.Upstream, o.Duration)
		}
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n += len(p); w.n > 1<<20 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// TestSpoolFailureSparesUploads: a spool that fails (a full disk) is
// dropped and the upstreams still get complete copies.
func TestSpoolFailureSparesUploads(t *testing.T) {
	ups, k, _, dir := setup(t)
	dump := filepath.Join(dir, "db1.sql")
	os.WriteFile(dump, bytes.Repeat([]byte("x"), 3<<20), 0o600)
	src, _ := OpenFile(dump)
	defer src.Close()
	j := job(t, ups, k, src, time.Now())
	j.Spool = &failingWriter{}
	res, err := Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Spooled || res.SpoolErr == nil {
		t.Fatalf("spooled = %v, %v", res.Spooled, res.SpoolErr)
	}
}

// TestDeliver copies a stored archive to a third folder from good, damaged,
// short and long sources: only the good one gets a manifest.
func TestDeliver(t *testing.T) {
	ups, k, _, dir := setup(t)
	dump := filepath.Join(dir, "db1.sql")
	os.WriteFile(dump, bytes.Repeat([]byte("deliver "), 200_000), 0o600)
	src, _ := OpenFile(dump)
	res, err := Run(context.Background(), job(t, ups, k, src, time.Now()))
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "a", res.Key))
	c, err := remote.Resolve(context.Background(), filepath.Join(dir, "c"), remote.Options{})
	if err != nil || c[0].Err != nil {
		t.Fatalf("resolve c: %v", err)
	}
	target := c[0]
	d := Delivery{Key: res.Key, Manifest: res.Manifest, Body: res.ManifestBody}
	manifestPath := filepath.Join(dir, "c", res.Key+".manifest.json")

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	for name, src := range map[string][]byte{
		"flipped": flipped, "short": good[:len(good)-1], "long": append(bytes.Clone(good), 0),
	} {
		_, err := Deliver(context.Background(), target, d, bytes.NewReader(src))
		if !errors.Is(err, ErrContentMismatch) {
			t.Fatalf("%s source: err = %v, want a content mismatch", name, err)
		}
		if _, err := os.Stat(manifestPath); err == nil {
			t.Fatalf("%s source: a manifest was put", name)
		}
	}
	out, err := Deliver(context.Background(), target, d, bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if out.Verified.String() != "crc32" {
		t.Errorf("verified with %v, want crc32", out.Verified)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "c", res.Key))
	body, _ := os.ReadFile(manifestPath)
	if !bytes.Equal(got, good) || !bytes.Equal(body, res.ManifestBody) {
		t.Fatal("delivered copy or manifest differs")
	}
	// Replacing a copy that has a manifest removes the manifest first, so a
	// bad source leaves no complete-looking copy behind.
	if _, err := Deliver(context.Background(), target, d, bytes.NewReader(flipped)); !errors.Is(err, ErrContentMismatch) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(manifestPath); err == nil {
		t.Fatal("manifest left over a replaced, damaged copy")
	}
}
