package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// UnionName is the union remote the seed note's setup uploads to.
const UnionName = "archive-target-database"

// WriteRcloneConf writes dir/rclone.conf (mode 0600, as it holds secrets)
// from section texts and returns its path.
func WriteRcloneConf(t testing.TB, dir string, sections ...string) string {
	t.Helper()
	var parts []string
	for _, s := range sections {
		parts = append(parts, strings.TrimRight(s, "\n")+"\n")
	}
	p := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(p, []byte(strings.Join(parts, "\n")), 0o600); err != nil {
		t.Fatalf("write rclone.conf: %v", err)
	}
	return p
}

// UnionSection returns a union remote section that writes to and acts on all
// upstreams and searches the first one found, as in the seed note.
func UnionSection(name string, upstreams ...string) string {
	for _, u := range upstreams {
		if strings.ContainsAny(u, " \t\n") {
			// rclone splits upstreams on spaces; fail loudly rather than
			// produce a config that silently names other directories.
			panic(fmt.Sprintf("UnionSection: upstream %q contains whitespace", u))
		}
	}
	return renderSection(name, []string{"type", "upstreams", "create_policy", "action_policy", "search_policy"},
		map[string]string{
			"type":          "union",
			"upstreams":     strings.Join(upstreams, " "),
			"create_policy": "all",
			"action_policy": "all",
			"search_policy": "ff",
		})
}

// MinIORemoteName is the section name WriteSeedRcloneConf gives the i-th
// server: minio-a, minio-b, ...
func MinIORemoteName(i int) string { return "minio-" + string(rune('a'+i)) }

// WriteSeedRcloneConf writes dir/rclone.conf with one s3 section per server
// (minio-a, minio-b, ...; extra options go to every one) and the union
// UnionName over "<remote>:<bucket>" for each plus localDir (skipped if "").
func WriteSeedRcloneConf(t testing.TB, dir, localDir string, extra map[string]string, servers ...*MinIO) string {
	t.Helper()
	var sections, upstreams []string
	for i, m := range servers {
		name := MinIORemoteName(i)
		sections = append(sections, m.RcloneSection(name, extra))
		upstreams = append(upstreams, name+":"+m.Bucket)
	}
	if localDir != "" {
		if err := os.MkdirAll(localDir, 0o700); err != nil {
			t.Fatal(err)
		}
		upstreams = append(upstreams, localDir)
	}
	sections = append(sections, UnionSection(UnionName, upstreams...))
	return WriteRcloneConf(t, dir, sections...)
}
