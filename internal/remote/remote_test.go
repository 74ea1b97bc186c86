package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/s3"
)

func TestStreamChunk(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		total      int64
		parts      int
		configured int64
		want       int64
	}{
		{1 << 40, 10000, 5 * mib, 105 * mib}, // 1 TiB at S3's limit
		{64 * mib, 3, 5 * mib, 22 * mib},     // the e2e test's setting
		{10 * mib, 3, 5 * mib, 0},            // configured chunks suffice
		{0, 10000, 5 * mib, 0},
		{1 << 40, 0, 5 * mib, 0},
	} {
		if got := StreamChunk(c.total, c.parts, c.configured); got != c.want {
			t.Errorf("StreamChunk(%d, %d, %d) = %d MiB, want %d MiB", c.total, c.parts, c.configured, got/mib, c.want/mib)
		}
		if got := StreamChunk(c.total, c.parts, c.configured); got > 0 && got*int64(c.parts) < c.total {
			t.Errorf("chunk %d x %d parts does not reach %d", got, c.parts, c.total)
		}
	}
}

func TestCheckSyntax(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		conf string
		line string // "" means valid
	}{
		"valid":          {"# comment\n[a]\ntype = local\n; other\n\n[b]\ntype=s3\n", ""},
		"no equals":      {"[a]\ntype = union\nupstreams /x\n", "line 3"},
		"orphan setting": {"type = local\n[a]\n", "line 1"},
		"bad header":     {"[a\ntype = local\n", "line 1"},
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(c.conf), 0o600)
		err := checkSyntax(p)
		if (err == nil) != (c.line == "") || (err != nil && !strings.Contains(err.Error(), c.line)) {
			t.Errorf("%s: checkSyntax = %v, want %q", name, err, c.line)
		}
	}
}

func TestStripMode(t *testing.T) {
	for in, want := range map[string]struct {
		name string
		mode Mode
	}{
		"s3:bucket": {"s3:bucket", ReadWrite}, "s3:bucket:ro": {"s3:bucket", ReadOnly},
		"/srv/x:nc": {"/srv/x", NoCreate}, "b2:x:writeback": {"b2:x", ReadWrite},
	} {
		if n, m := stripMode(in); n != want.name || m != want.mode {
			t.Errorf("stripMode(%q) = %q, %q", in, n, m)
		}
		u := &Upstream{Mode: want.mode}
		if u.Creates() != (want.mode == ReadWrite) || u.Deletes() != (want.mode != ReadOnly) {
			t.Errorf("%s: creates %v, deletes %v", in, u.Creates(), u.Deletes())
		}
	}
}

func TestMultipartS3(t *testing.T) {
	for _, c := range []struct {
		root string
		size int64
		want bool
	}{
		{":s3:bucket", 10 << 20, false},                  // below the 200 MiB default
		{":s3:bucket", 300 << 20, true},                  // above it
		{":s3:bucket", -1, true},                         // a stream is always multipart
		{":s3,upload_cutoff=5Mi:bucket", 10 << 20, true}, // configured cutoff
		{"/srv/backup", 300 << 20, false},                // not S3
	} {
		if got := multipartS3(&Upstream{Root: c.root}, c.size); got != c.want {
			t.Errorf("multipartS3(%s, %d) = %v, want %v", c.root, c.size, got, c.want)
		}
	}
}
