package verify

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/rclone/rclone/backend/local"
	"github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// TestBackendHash against rclone's real local backend, which offers every
// kind: the cheapest one the manifest records is compared.
func TestBackendHash(t *testing.T) {
	dir := t.TempDir()
	data := []byte("ciphertext, as stored")
	os.WriteFile(filepath.Join(dir, "obj"), data, 0o600)
	ups, err := remote.Resolve(context.Background(), dir, remote.Options{})
	if err != nil || ups[0].Err != nil {
		t.Fatal(err, ups[0].Err)
	}
	u := ups[0]
	sum := sha256.Sum256(data)
	m5 := md5.Sum(data)
	crc := crc32.ChecksumIEEE(data)
	good := manifest.Blob{SHA256: hex.EncodeToString(sum[:]), MD5: hex.EncodeToString(m5[:]),
		CRC32: hex.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})}
	for _, c := range []struct {
		name string
		blob manifest.Blob
		key  string
		want hash.Type
		bad  bool // a mismatch
		err  bool // another error
	}{
		{name: "all recorded: CRC-32 first", blob: good, key: "obj", want: hash.CRC32},
		{name: "MD5 only", blob: manifest.Blob{SHA256: good.SHA256, MD5: good.MD5}, key: "obj", want: hash.MD5},
		{name: "SHA-256 only", blob: manifest.Blob{SHA256: good.SHA256}, key: "obj", want: hash.SHA256},
		{name: "nothing recorded", blob: manifest.Blob{}, key: "obj", want: hash.None},
		{name: "CRC-32 differs", blob: manifest.Blob{SHA256: good.SHA256, CRC32: "00000000"}, key: "obj", bad: true},
		{name: "no object", blob: good, key: "gone", err: true},
	} {
		m := &manifest.Manifest{Ciphertext: c.blob}
		got, err := BackendHash(context.Background(), u, c.key, m)
		switch {
		case c.bad:
			if !errors.Is(err, ErrHashMismatch) {
				t.Errorf("%s: err %v, want a mismatch", c.name, err)
			}
		case c.err:
			if err == nil || errors.Is(err, ErrHashMismatch) {
				t.Errorf("%s: err %v, want a read error", c.name, err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
