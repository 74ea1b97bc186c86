package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPreviousFile: whatever an earlier file holds (damaged, hand-edited,
// another exporter's), the next run writes a file that parses and carries
// its own result, and keeps only series pgarchive knows.
func FuzzPreviousFile(f *testing.F) {
	f.Add([]byte("# HELP pgarchive_drill_last_success x\n# TYPE pgarchive_drill_last_success gauge\npgarchive_drill_last_success{database=\"db2\"} 1\n"))
	f.Add([]byte("pgarchive_drill_last_success_timestamp_seconds{database=\"a\\\"b\"} 1e9 123\nfoo_bucket{le=\"1\"} 2\n"))
	f.Add([]byte("# TYPE pgarchive_archives histogram\npgarchive_archives_bucket{le=\"+Inf\"} 1\n"))
	f.Add([]byte("pgarchive_drill_last_success NaN\n"))
	f.Fuzz(func(t *testing.T, prev []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, DrillFile)
		if err := os.WriteFile(path, prev, 0o644); err != nil {
			t.Fatal(err)
		}
		err := WriteDrill(dir, []DrillResult{{Database: "db1", Time: t1, OK: true}})
		if err != nil && !strings.Contains(err.Error(), "unreadable") {
			t.Fatalf("the new file was not written: %v", err)
		}
		p := parseFile(t, path)
		p.want(t, 1, DrillSuccess, "database", "db1")
		for name := range p.fams {
			if _, ok := help[name]; !ok {
				t.Errorf("foreign series %s kept", name)
			}
		}
		onlyFiles(t, dir, DrillFile)
	})
}
