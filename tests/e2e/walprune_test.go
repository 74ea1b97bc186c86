package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// TestWALListStatusPrune: list and status show each upstream's WAL runs
// and the recovery window; prune with --keep-last 1 removes the older
// base backup and exactly the WAL before the kept one's start, and the
// kept one still restores; a segment missing everywhere is a GAP that
// status reports (exit 1, metrics).
func TestWALListStatusPrune(t *testing.T) {
	p := newPITRWorld(t)
	conn := "host=" + p.pg.SocketDir + " port=" + strconv.Itoa(p.pg.Port) + " user=postgres dbname=postgres"
	basebackup := func() {
		t.Helper()
		if r := p.pgarchive(t, nil, "--recipient", p.recip, "basebackup", "--connection", conn, "--compression", "zstd"); r.exit != 0 {
			t.Fatalf("basebackup: %s", r.stderr)
		}
	}
	basebackup()
	for i := 0; i < 3; i++ {
		p.switchAndWait(t)
	}
	basebackup()
	var last string
	for i := 0; i < 2; i++ {
		last = p.switchAndWait(t)
	}

	list := p.pgarchive(t, nil, "list")
	if list.exit != 0 || !strings.Contains(list.stdout, "WAL of system "+strconv.FormatUint(p.cluster.SystemID, 10)) ||
		!strings.Contains(list.stdout, "recovery window: from ") || !strings.Contains(list.stdout, "timeline 1: ") ||
		strings.Count(list.stdout, ": on every upstream") != 2 {
		t.Fatalf("list:\n%s\n%s", list.stdout, list.stderr)
	}
	var wal []struct {
		Upstreams []struct {
			Upstream string   `json:"upstream"`
			Ranges   []string `json:"ranges"`
			Gaps     []string `json:"gaps"`
		} `json:"upstreams"`
		Window struct {
			Problems []string `json:"problems"`
			Bases    []struct {
				MissingOn []string `json:"missing_on"`
			} `json:"base_backups"`
		} `json:"recovery_window"`
	}
	decodeJSON(t, []byte(p.pgarchive(t, nil, "list", "--wal", "--json").stdout), &wal)
	if len(wal) != 1 || len(wal[0].Upstreams) != 3 || len(wal[0].Window.Problems) != 0 || len(wal[0].Window.Bases) != 2 || len(wal[0].Window.Bases[0].MissingOn) != 0 {
		t.Fatalf("list --wal --json: %+v", wal)
	}
	for _, u := range wal[0].Upstreams {
		if len(u.Ranges) != 1 || !strings.HasSuffix(strings.Fields(u.Ranges[0])[0], last) || len(u.Gaps) != 0 {
			t.Errorf("%s: ranges %v gaps %v, want one run ending at %s", u.Upstream, u.Ranges, u.Gaps, last)
		}
	}
	if st := p.pgarchive(t, nil, "status", "--max-age", "0"); st.exit != 0 || !strings.Contains(st.stdout, "recovery window") {
		t.Fatalf("status: %d\n%s\n%s", st.exit, st.stdout, st.stderr)
	}

	// Which WAL the kept (newer) backup needs: from its start segment on.
	var bases []struct {
		Key string `json:"key"`
	}
	decodeJSON(t, []byte(p.pgarchive(t, nil, "list", "-d", p.cluster.BaseDatabase(), "--json").stdout), &bases)
	if len(bases) != 2 {
		t.Fatalf("%d base backups listed", len(bases))
	}
	m := readBaseManifest(t, p, bases[0].Key)
	startLSN, _ := walname.ParseLSN(m.Base.StartLSN)
	startSeg := startLSN.SegNo(16 << 20)
	before := p.walObjects(t)[0]
	var wantGone []string
	for _, name := range before {
		f, _ := walname.Parse(name)
		if n, err := f.SegNo(16 << 20); err == nil && n < startSeg {
			wantGone = append(wantGone, name)
		}
	}
	if len(wantGone) < 3 {
		t.Fatalf("test setup: only %v before the kept backup's start segment", wantGone)
	}
	dry := p.pgarchive(t, nil, "prune", "--keep-last", "1", "--dry-run")
	if !strings.Contains(dry.stdout, "would remove "+strconv.Itoa(len(wantGone))+" files") {
		t.Fatalf("prune --dry-run does not plan %d WAL files:\n%s\n%s", len(wantGone), dry.stdout, dry.stderr)
	}
	if r := p.pgarchive(t, nil, "prune", "--keep-last", "1"); r.exit != 0 {
		t.Fatalf("prune: %d\n%s", r.exit, r.stderr)
	}
	for i, files := range p.walObjects(t) {
		for _, name := range before {
			gone := slices.Contains(wantGone, name)
			if slices.Contains(files, name) == gone {
				t.Errorf("upstream %d: %s present=%v after prune, want %v", i, name, !gone, !gone)
			}
		}
	}
	if r := p.pgarchive(t, nil, "list", "-d", p.cluster.BaseDatabase(), "--json"); strings.Count(r.stdout, `"key"`) != 1 {
		t.Errorf("prune --keep-last 1 left:\n%s", r.stdout)
	}
	dir := filepath.Join(p.dir, "after-prune")
	if r := p.pgarchive(t, nil, "restore-cluster", "--latest", "--target-dir", dir, "-i", p.idPath); r.exit != 0 {
		t.Fatalf("restore-cluster after prune: %s", r.stderr)
	}

	// A segment after the kept backup missing everywhere: a GAP.
	f, _ := walname.Parse(last)
	n, _ := f.SegNo(16 << 20)
	gapName := walname.SegmentName(1, n-1, 16<<20)
	key := p.cluster.Key("", gapName)
	for _, mi := range p.minios {
		mi.DeleteObject(t, key+naming.ManifestSuffix)
	}
	os.Remove(filepath.Join(p.local, filepath.FromSlash(key+naming.ManifestSuffix)))
	metricsDir := t.TempDir()
	st := p.pgarchive(t, nil, "--metrics-dir", metricsDir, "status", "--max-age", "0")
	if st.exit != 1 || !strings.Contains(st.stderr, "WAL gap "+gapName) {
		t.Errorf("status with a WAL gap: exit %d\n%s\n%s", st.exit, st.stdout, st.stderr)
	}
	prom := string(mustRead(t, filepath.Join(metricsDir, "pgarchive-wal.prom")))
	if !strings.Contains(prom, `pgarchive_wal_ok{command="status",system_identifier="`+strconv.FormatUint(p.cluster.SystemID, 10)+`"} 0`) ||
		!strings.Contains(prom, "pgarchive_wal_gaps") || !strings.Contains(prom, "pgarchive_wal_recovery_window_start_timestamp_seconds") {
		t.Errorf("WAL metrics:\n%s", prom)
	}
}

type baseManifest struct {
	Base struct {
		StartLSN string `json:"start_lsn"`
	} `json:"base"`
}

func readBaseManifest(t *testing.T, p *pitrWorld, key string) baseManifest {
	t.Helper()
	var m baseManifest
	if err := json.Unmarshal(p.minios[0].ReadObject(t, key+naming.ManifestSuffix), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
