package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/walname"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestWALFetchAndPushEdges: wal-fetch's exit status tells "not found
// anywhere" (1) from everything that must stop recovery (126): a copy
// damaged everywhere, an unsigned or forged manifest under trust, a wrong
// key, an unreachable upstream. wal-push of the same file again is a
// no-op; of different content under the same name, a loud failure that
// overwrites nothing.
func TestWALFetchAndPushEdges(t *testing.T) {
	p := newPITRWorld(t)
	p.pg.Exec(t, "postgres", "CREATE TABLE t AS SELECT generate_series(1, 10000) n")
	seg := p.switchAndWait(t)
	key := p.cluster.Key("", seg)
	fetchWith := func(t *testing.T, id, file string, args ...string) (run, []byte) {
		t.Helper()
		dest := filepath.Join(t.TempDir(), "out")
		t0 := time.Now()
		r := p.pgarchive(t, nil, append(args, "wal-fetch", "--pgdata", p.pg.DataDir, "-i", id, file, dest)...)
		t.Logf("wal-fetch %s %v: exit %d in %v", file, args, r.exit, time.Since(t0))
		got, _ := os.ReadFile(dest)
		return r, got
	}
	fetch := func(t *testing.T, file string, args ...string) (run, []byte) {
		t.Helper()
		return fetchWith(t, p.idPath, file, args...)
	}
	orig, err := os.ReadFile(filepath.Join(p.pg.DataDir, "pg_wal", seg))
	if err != nil {
		// Recycled already: the archive's copy is what counts; compare
		// with what the first fetch gives.
		orig = nil
	}
	r, got := fetch(t, seg)
	if r.exit != 0 || len(got) != 16<<20 || orig != nil && !bytes.Equal(got, orig) {
		t.Fatalf("wal-fetch %s: exit %d, %d bytes\n%s", seg, r.exit, len(got), r.stderr)
	}
	if r, _ := fetch(t, "0000000100000000000000FF"); r.exit != 1 {
		t.Errorf("wal-fetch of a segment archived nowhere: exit %d, want 1\n%s", r.exit, r.stderr)
	}
	if r, _ := fetch(t, "00000009.history"); r.exit != 1 {
		t.Errorf("wal-fetch of a missing history file: exit %d, want 1", r.exit)
	}
	if r, _ := fetch(t, "../../etc/passwd"); r.exit != 126 {
		t.Errorf("wal-fetch of a hostile name: exit %d, want 126", r.exit)
	}
	wrongID, _ := harness.AgeKeygen(t, false)
	os.Chmod(wrongID, 0o644)
	if r, _ := fetchWith(t, wrongID, seg); r.exit != 126 {
		t.Errorf("wal-fetch with a wrong key: exit %d, want 126\n%s", r.exit, r.stderr)
	}
	// Unsigned archive, signers trusted: abort, never "not found".
	_, pub := harness.SSHKeygen(t, "ed25519")
	if r, _ := fetch(t, seg, "--trusted-signer", pub); r.exit != 126 || !strings.Contains(r.stderr, "UNTRUSTED") {
		t.Errorf("wal-fetch of an unsigned file under trust: exit %d, want 126\n%s", r.exit, r.stderr)
	}
	// Damaged on one MinIO: the next upstream's copy serves.
	p.minios[0].FlipByte(t, key, 5000)
	if r, got := fetch(t, seg); r.exit != 0 || len(got) != 16<<20 {
		t.Errorf("wal-fetch with one damaged copy: exit %d\n%s", r.exit, r.stderr)
	}
	// Damaged everywhere: abort.
	p.minios[1].FlipByte(t, key, 5000)
	local := filepath.Join(p.local, filepath.FromSlash(key))
	b := mustRead(t, local)
	b[5000] ^= 1
	os.WriteFile(local, b, 0o644)
	if r, _ := fetch(t, seg); r.exit != 126 || !strings.Contains(r.stderr, "SHA-256") {
		t.Errorf("wal-fetch with every copy damaged: exit %d, want 126\n%s", r.exit, r.stderr)
	}
	// A manifest copied from another segment's key, on every upstream:
	// refused, though it and its data are genuine.
	other := p.switchAndWait(t)
	okey := p.cluster.Key("", other)
	third := p.switchAndWait(t)
	tkey := p.cluster.Key("", third)
	swapped := p.minios[0].ReadObject(t, okey+naming.ManifestSuffix)
	for _, m := range p.minios {
		m.PutObject(t, tkey+naming.ManifestSuffix, swapped)
		m.PutObject(t, tkey, m.ReadObject(t, okey))
	}
	os.WriteFile(filepath.Join(p.local, filepath.FromSlash(tkey+naming.ManifestSuffix)), swapped, 0o644)
	if r, _ := fetch(t, third); r.exit != 126 || !strings.Contains(r.stderr, "describes") {
		t.Errorf("wal-fetch under a swapped manifest: exit %d, want 126\n%s", r.exit, r.stderr)
	}
	// An upstream down: nothing may be called "not found".
	p.minios[1].Stop()
	if r, _ := fetch(t, "0000000100000000000000FE"); r.exit != 126 {
		t.Errorf("wal-fetch with an upstream down: exit %d, want 126\n%s", r.exit, r.stderr)
	}
	p.minios[1].Start(t)

	// wal-push: the same file again is fine; other content is refused.
	walFile := filepath.Join(t.TempDir(), other)
	r, got = fetch(t, other)
	if r.exit != 0 {
		t.Fatalf("wal-fetch %s: %s", other, r.stderr)
	}
	os.WriteFile(walFile, got, 0o600)
	push := func(path string) run {
		return p.pgarchive(t, nil, "--recipient", p.recip, "wal-push", "--pgdata", p.pg.DataDir, path)
	}
	before := p.minios[0].ReadObject(t, okey)
	if r := push(walFile); r.exit != 0 {
		t.Fatalf("wal-push of an archived file again: %d\n%s", r.exit, r.stderr)
	}
	if !bytes.Equal(before, p.minios[0].ReadObject(t, okey)) {
		t.Error("a second push of the same file replaced the stored copy")
	}
	got[100] ^= 0xff
	os.WriteFile(walFile, got, 0o600)
	r = push(walFile)
	if r.exit != 1 || !strings.Contains(r.stderr, "different file is already archived") || !strings.Contains(r.stderr, "upstream") {
		t.Errorf("wal-push of other content under an archived name: exit %d\n%s", r.exit, r.stderr)
	}
	if !bytes.Equal(before, p.minios[0].ReadObject(t, okey)) {
		t.Error("a conflicting push overwrote the stored copy")
	}
}

// TestWALSigned: files pushed with --signing-key fetch under the signer's
// trust; under another trusted key, or with a signature made over another
// file's manifest, recovery is stopped (126), never told "not found".
func TestWALSigned(t *testing.T) {
	p := newPITRWorld(t)
	seg := p.switchAndWait(t)
	dir := t.TempDir()
	r := p.pgarchive(t, nil, "wal-fetch", "--pgdata", p.pg.DataDir, "-i", p.idPath, seg, filepath.Join(dir, "seg"))
	if r.exit != 0 {
		t.Fatalf("wal-fetch: %s", r.stderr)
	}
	content := mustRead(t, filepath.Join(dir, "seg"))
	signKey, pub := harness.SSHKeygen(t, "ed25519")
	_, otherPub := harness.SSHKeygen(t, "ed25519")
	names := []string{walname.SegmentName(9, 1, 16<<20), walname.SegmentName(9, 2, 16<<20)}
	for _, n := range names {
		os.WriteFile(filepath.Join(dir, n), content, 0o600)
		if r := p.pgarchive(t, nil, "--recipient", p.recip, "--signing-key", signKey, "wal-push", "--pgdata", p.pg.DataDir, filepath.Join(dir, n)); r.exit != 0 {
			t.Fatalf("signed wal-push: %s", r.stderr)
		}
	}
	fetch := func(name string, trusted string) run {
		return p.pgarchive(t, nil, "--trusted-signer", trusted, "wal-fetch", "--prefetch", "0", "--pgdata", p.pg.DataDir, "-i", p.idPath, name, filepath.Join(dir, "out"))
	}
	if r := fetch(names[0], pub); r.exit != 0 {
		t.Fatalf("signed file under its signer's trust: %d\n%s", r.exit, r.stderr)
	}
	if r := fetch(names[0], otherPub); r.exit != 126 || !strings.Contains(r.stderr, "UNTRUSTED") {
		t.Errorf("signed file under another key's trust: %d\n%s", r.exit, r.stderr)
	}
	// names[1]'s signature put beside names[0]'s manifest: it signs other bytes.
	k0, k1 := p.cluster.Key("", names[0]), p.cluster.Key("", names[1])
	sig := p.minios[0].ReadObject(t, k1+naming.SignatureSuffix)
	for _, m := range p.minios {
		m.PutObject(t, k0+naming.SignatureSuffix, sig)
	}
	os.WriteFile(filepath.Join(p.local, filepath.FromSlash(k0+naming.SignatureSuffix)), sig, 0o644)
	if r := fetch(names[0], pub); r.exit != 126 || !strings.Contains(r.stderr, "does not match") {
		t.Errorf("file under a signature of another manifest: %d\n%s", r.exit, r.stderr)
	}
}
