package walname

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestReadClusterMatchesPgControldata reads a real data directory, when the
// test is given one (PGARCHIVE_TEST_PGDATA; tests/e2e covers it always),
// and compares with pg_controldata's view.
func TestReadClusterMatchesPgControldata(t *testing.T) {
	dir := os.Getenv("PGARCHIVE_TEST_PGDATA")
	if dir == "" {
		t.Skip("PGARCHIVE_TEST_PGDATA not set")
	}
	c, err := ReadCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_controldata")
	if len(bins) == 0 {
		t.Skip("no pg_controldata")
	}
	out, err := exec.Command(bins[len(bins)-1], dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Database system identifier:\s+(\d+)`).FindSubmatch(out)
	if m == nil || string(m[1]) != strconv.FormatUint(c.SystemID, 10) {
		t.Fatalf("ReadCluster = %v; pg_controldata says %s", c, m)
	}
}

func TestParseControlRejects(t *testing.T) {
	ctl := make([]byte, 300)
	ctl[0] = 1
	if _, err := ParseControl(ctl, []byte("15\n")); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string][2]string{
		"short":   {"12345678", "15"},
		"zero id": {string(make([]byte, 300)), "15"},
		"version": {string(ctl), "15beta"},
		"old":     {string(ctl), "9"},
	} {
		if _, err := ParseControl([]byte(tc[0]), []byte(tc[1])); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadCluster(t.TempDir()); err == nil {
		t.Error("an empty directory passed for a data directory")
	}
}
