// Package e2e runs the real pgarchive binary against real PostgreSQL dumps,
// real MinIO servers, a local directory, a standalone journald and the stock
// age CLI. Nothing here is mocked.
package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// world is the seed setup: a union of two MinIO servers and a local folder.
type world struct {
	bin    string
	dir    string
	minios []*harness.MinIO
	local  string
	conf   string
}

func newWorld(t *testing.T, extra map[string]string) *world {
	t.Helper()
	return newWorldIn(t, t.TempDir(), extra)
}

// newWorldIn builds the world in dir (e.g. one another account can read).
func newWorldIn(t *testing.T, dir string, extra map[string]string) *world {
	t.Helper()
	harness.Need(t, "minio", "age")
	w := &world{bin: harness.BuildBinary(t, "./cmd/pgarchive"), dir: dir}
	w.minios = []*harness.MinIO{harness.StartMinIO(t), harness.StartMinIO(t)}
	w.local = filepath.Join(w.dir, "local-upstream")
	w.conf = harness.WriteSeedRcloneConf(t, w.dir, w.local, extra, w.minios...)
	return w
}

type run struct {
	exit   int
	stdout string
	stderr string
}

// pgarchive runs the binary with the world's rclone config.
func (w *world) pgarchive(t *testing.T, stdin []byte, args ...string) run {
	t.Helper()
	return runBin(t, w.bin, stdin, append([]string{"--rclone-config", w.conf, "--log-target", "stderr"}, args...)...)
}

func runBin(t *testing.T, bin string, stdin []byte, args ...string) run {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), "RCLONE_CONFIG=") // only what the test passes
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return r
}

// upstream is read access to one place archives land, for assertions.
type upstream struct {
	name string
	list func(prefix string) []string
	read func(key string) []byte
}

func (w *world) upstreams(t *testing.T) []upstream {
	var ups []upstream
	for i, m := range w.minios {
		m := m
		ups = append(ups, upstream{
			name: harness.MinIORemoteName(i),
			list: func(prefix string) []string { return m.ListObjects(t, prefix) },
			read: func(key string) []byte { return m.ReadObject(t, key) },
		})
	}
	ups = append(ups, upstream{
		name: w.local,
		list: func(prefix string) []string { return listDir(t, w.local, prefix) },
		read: func(key string) []byte { return mustRead(t, filepath.Join(w.local, key)) },
	})
	return ups
}

func listDir(t *testing.T, root, prefix string) []string {
	var keys []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			if strings.HasPrefix(filepath.ToSlash(rel), prefix) {
				keys = append(keys, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(keys)
	return keys
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archivesIn splits keys into data objects and manifests.
func archivesIn(keys []string) (data, manifests []string) {
	for _, k := range keys {
		switch {
		case strings.HasSuffix(k, ".age.manifest.json"):
			manifests = append(manifests, k)
		case strings.HasSuffix(k, ".age"):
			data = append(data, k)
		}
	}
	return data, manifests
}

// checkCopies asserts every upstream holds exactly one complete archive under
// prefix, that decrypt(ciphertext) gives the dump back, that the manifest
// matches, and that no 32-byte run of the dump shows in anything stored.
func (w *world) checkCopies(t *testing.T, prefix string, dump []byte, decrypt func([]byte) []byte) {
	t.Helper()
	for _, up := range w.upstreams(t) {
		keys := up.list(prefix)
		data, mans := archivesIn(keys)
		if len(data) != 1 || len(mans) != 1 || mans[0] != data[0]+".manifest.json" {
			t.Fatalf("%s: want one archive and its manifest under %q, got %v", up.name, prefix, keys)
		}
		ct := up.read(data[0])
		if got := decrypt(ct); !bytes.Equal(got, dump) {
			t.Fatalf("%s: %s does not decrypt to the dump (%d vs %d bytes)", up.name, data[0], len(got), len(dump))
		}
		mb := up.read(mans[0])
		m, err := manifest.Parse(bytes.NewReader(mb))
		if err != nil {
			t.Fatalf("%s: manifest: %v\n%s", up.name, err, mb)
		}
		if m.Dump.Size != int64(len(dump)) || m.Dump.SHA256 != sha256Hex(dump) ||
			m.Ciphertext.Size != int64(len(ct)) || m.Ciphertext.SHA256 != sha256Hex(ct) ||
			m.Archive != filepath.Base(data[0]) {
			t.Fatalf("%s: manifest does not describe the archive: %s", up.name, mb)
		}
		for _, blob := range [][]byte{ct, mb} {
			if harness.ContainsRun(blob, dump, 32) {
				t.Fatalf("%s: a 32-byte run of the plaintext dump is stored in the clear", up.name)
			}
		}
	}
}

// checkNothingStored asserts no upstream holds anything under prefix.
func (w *world) checkNothingStored(t *testing.T, prefix string) {
	t.Helper()
	for _, up := range w.upstreams(t) {
		if keys := up.list(prefix); len(keys) > 0 {
			t.Fatalf("%s: expected nothing under %q, found %v", up.name, prefix, keys)
		}
	}
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}
