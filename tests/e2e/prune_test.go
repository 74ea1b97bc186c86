package e2e

import (
	"fmt"
	"math/rand/v2"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/tests/harness"
)

const prunePrefix = "hosts/pg1"

// pruneOutput is the part of `prune --json` the tests read.
type pruneOutput struct {
	DryRun    bool `json:"dry_run"`
	Databases []struct {
		Database string `json:"database"`
		Kept     int    `json:"kept"`
		Removed  int    `json:"removed"`
		Failed   int    `json:"failed"`
		Archives []struct {
			Key         string   `json:"key"`
			Action      string   `json:"action"`
			Reasons     []string `json:"reasons"`
			RemovedFrom []string `json:"removed_from"`
		} `json:"archives"`
		Upstreams []struct {
			Upstream string `json:"upstream"`
			Kept     int    `json:"kept"`
			Removed  int    `json:"removed"`
		} `json:"upstreams"`
	} `json:"databases"`
}

// keepPolicy mirrors the flags below for the independent expectation.
type keepPolicy struct {
	last, hourly, daily, weekly, monthly, yearly int
	within                                       time.Duration
}

var pruneFlags = []string{"--keep-last", "3", "--keep-hourly", "5", "--keep-daily", "10", "--keep-weekly", "6",
	"--keep-monthly", "9", "--keep-yearly", "-1", "--keep-within", "1d12h"}

var prunePolicy = keepPolicy{last: 3, hourly: 5, daily: 10, weekly: 6, monthly: 9, yearly: -1, within: 36 * time.Hour}

// pruneExpectKept computes the kept keys the way the documentation states the
// rules, period by period rather than by the planner's single walk: for each
// period kind, group the complete archives by period, take the newest
// archive of each of the n newest periods; add the n newest complete
// archives, those younger than within, the newest complete one, and failed
// uploads newer than it.
func pruneExpectKept(archives []harness.FakeArchive, p keepPolicy, now time.Time) map[string]bool {
	sorted := append([]harness.FakeArchive(nil), archives...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i].Name, sorted[j].Name
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.Seq > b.Seq
	})
	keep := map[string]bool{}
	var complete []harness.FakeArchive
	for _, a := range sorted {
		if a.Complete() {
			complete = append(complete, a)
		} else if len(complete) == 0 {
			keep[a.Key] = true // newer than every complete archive: maybe uploading
		}
	}
	if len(complete) > 0 {
		keep[complete[0].Key] = true
	}
	for i, a := range complete {
		if p.last == -1 || i < p.last {
			keep[a.Key] = true
		}
		if a.Name.Created.After(now.Add(-p.within)) {
			keep[a.Key] = true
		}
	}
	periods := []struct {
		n     int
		label func(time.Time) string
	}{
		{p.hourly, func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{p.daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{p.weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-%02d", y, w) }},
		{p.monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{p.yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, per := range periods {
		newest := map[string]string{} // period -> key of its newest complete archive
		var labels []string
		for _, a := range complete { // newest first, so the first seen wins
			l := per.label(a.Name.Created.UTC())
			if _, ok := newest[l]; !ok {
				newest[l] = a.Key
				labels = append(labels, l)
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(labels)))
		for i, l := range labels {
			if per.n == -1 || i < per.n {
				keep[newest[l]] = true
			}
		}
	}
	return keep
}

// TestPruneRetention generates two years of archives of two databases on
// two MinIO servers, checks prune --dry-run against an independently
// computed plan, prunes, checks each server's listing holds exactly the kept
// archives' objects, and prunes again to see that nothing more goes.
func TestPruneRetention(t *testing.T) {
	harness.Need(t, "minio")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	minios := []*harness.MinIO{harness.StartMinIO(t), harness.StartMinIO(t)}
	dir := t.TempDir()
	conf := harness.WriteSeedRcloneConf(t, dir, "", nil, minios...)
	pg := func(args ...string) run {
		return runBin(t, bin, nil, append([]string{"--rclone-config", conf, "--log-target", "stderr", "--prefix", prunePrefix}, args...)...)
	}

	now := time.Now().UTC()
	r := rand.New(rand.NewPCG(2026, 5))
	cutoff := now.Add(-prunePolicy.within)
	all := map[string][]harness.FakeArchive{
		"shop": harness.FakeHistory(t, r, prunePrefix, "shop", harness.IrregularTimes(r, now, cutoff)),
		"crm":  harness.FakeHistory(t, r, prunePrefix, "crm", everyNth(harness.IrregularTimes(r, now, cutoff), 8)),
	}
	var everything []harness.FakeArchive
	for _, as := range all {
		everything = append(everything, as...)
	}
	for i, m := range minios {
		m.Upload(t, everything, i)
	}
	expected := map[string]map[string]bool{}
	var kept []harness.FakeArchive
	for db, as := range all {
		expected[db] = pruneExpectKept(as, prunePolicy, now)
		for _, a := range as {
			if expected[db][a.Key] {
				kept = append(kept, a)
			}
		}
		t.Logf("%s: %d archives, %d to keep", db, len(as), len(expected[db]))
	}

	dry := pg(append([]string{"prune", "--dry-run", "--json"}, pruneFlags...)...)
	if dry.exit != 0 {
		t.Fatalf("prune --dry-run --json: exit %d\n%s", dry.exit, dry.stderr)
	}
	var plan pruneOutput
	decodeJSON(t, []byte(dry.stdout), &plan)
	checkPrunePlan(t, plan, all, expected)

	table := pg(append([]string{"prune", "--dry-run"}, pruneFlags...)...)
	if table.exit != 0 {
		t.Fatalf("prune --dry-run: exit %d\n%s", table.exit, table.stderr)
	}
	checkPruneTable(t, table.stdout, all, expected)
	for i, m := range minios {
		if got, want := m.ListObjects(t, ""), harness.UpstreamKeys(everything, i); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: a dry run changed the bucket: %d objects, want %d", harness.MinIORemoteName(i), len(got), len(want))
		}
	}

	pruned := pg(append([]string{"prune", "--json"}, pruneFlags...)...)
	if pruned.exit != 0 {
		t.Fatalf("prune: exit %d\n%s", pruned.exit, pruned.stderr)
	}
	var done pruneOutput
	decodeJSON(t, []byte(pruned.stdout), &done)
	removed := 0
	for _, d := range done.Databases {
		removed += d.Removed
		if d.Failed != 0 {
			t.Errorf("%s: %d failed", d.Database, d.Failed)
		}
	}
	if want := len(everything) - len(kept); removed != want {
		t.Errorf("removed %d archives, want %d", removed, want)
	}
	if n := strings.Count(pruned.stderr, "pgarchive: prune: removed "); n != removed {
		t.Errorf("%d 'removed' log lines for %d removed archives:\n%s", n, removed, pruneTail(pruned.stderr))
	}
	if !strings.Contains(pruned.stderr, fmt.Sprintf("prune: 2 databases on 2 upstreams: kept %d archives, removed %d", len(kept), removed)) {
		t.Errorf("no summary line:\n%s", pruneTail(pruned.stderr))
	}
	for i, m := range minios {
		got, want := m.ListObjects(t, ""), harness.UpstreamKeys(kept, i)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s after prune: %s", harness.MinIORemoteName(i), pruneDiff(got, want))
		}
	}

	again := pg(append([]string{"prune", "--json"}, pruneFlags...)...)
	if again.exit != 0 {
		t.Fatalf("second prune: exit %d\n%s", again.exit, again.stderr)
	}
	var second pruneOutput
	decodeJSON(t, []byte(again.stdout), &second)
	for _, d := range second.Databases {
		if d.Removed != 0 || d.Failed != 0 || d.Kept != len(expected[d.Database]) {
			t.Errorf("second prune of %s: kept %d removed %d failed %d; want everything kept", d.Database, d.Kept, d.Removed, d.Failed)
		}
	}
	for i, m := range minios {
		if got, want := m.ListObjects(t, ""), harness.UpstreamKeys(kept, i); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s after the second prune: %s", harness.MinIORemoteName(i), pruneDiff(got, want))
		}
	}

	one := pg("prune", "--database", "crm", "--dry-run", "--keep-last", "1")
	if one.exit != 0 || strings.Contains(one.stdout, "shop_") || !strings.Contains(one.stdout, "database crm: keep-last 1") {
		t.Errorf("prune --database crm --dry-run: exit %d\n%s\n%s", one.exit, one.stdout, one.stderr)
	}
}

func checkPrunePlan(t *testing.T, plan pruneOutput, all map[string][]harness.FakeArchive, expected map[string]map[string]bool) {
	t.Helper()
	if !plan.DryRun || len(plan.Databases) != len(all) {
		t.Fatalf("dry run JSON: dry_run %v, %d databases", plan.DryRun, len(plan.Databases))
	}
	for _, d := range plan.Databases {
		got := map[string]bool{}
		for _, a := range d.Archives {
			if a.Action == "keep" {
				got[a.Key] = true
			}
			if len(a.Reasons) == 0 {
				t.Errorf("%s: %s without a reason", a.Key, a.Action)
			}
		}
		if len(d.Archives) != len(all[d.Database]) {
			t.Errorf("%s: plan covers %d archives, %d exist", d.Database, len(d.Archives), len(all[d.Database]))
		}
		if !reflect.DeepEqual(got, expected[d.Database]) {
			t.Errorf("%s: the plan keeps %d, the expectation %d:\n%s", d.Database, len(got), len(expected[d.Database]),
				pruneDiff(pruneSortedKeys(got), pruneSortedKeys(expected[d.Database])))
		}
		if d.Kept != len(expected[d.Database]) || d.Removed != len(all[d.Database])-d.Kept {
			t.Errorf("%s: counts kept %d removed %d", d.Database, d.Kept, d.Removed)
		}
		for i, u := range d.Upstreams { // what metrics will report per upstream
			want := 0
			for _, a := range all[d.Database] {
				if expected[d.Database][a.Key] && a.Copies[i] == harness.CopyComplete {
					want++
				}
			}
			if u.Upstream != harness.MinIORemoteName(i)+":"+harness.DefaultBucket || u.Kept != want {
				t.Errorf("%s on %s: %d kept complete copies, want %d", d.Database, u.Upstream, u.Kept, want)
			}
		}
	}
}

// checkPruneTable finds each archive's row in the dry run's table and its action.
func checkPruneTable(t *testing.T, out string, all map[string][]harness.FakeArchive, expected map[string]map[string]bool) {
	t.Helper()
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], ".age") {
			continue
		}
		for _, w := range f[1:] {
			if w == "keep" || w == "remove" {
				rows[path.Base(f[0])] = w
				break
			}
		}
	}
	for db, as := range all {
		if !strings.Contains(out, "database "+db+": keep-last 3, keep-hourly 5, keep-daily 10, keep-weekly 6, keep-monthly 9, keep-yearly all, keep-within 1d12h") {
			t.Errorf("no header for %s in:\n%s", db, pruneHead(out))
		}
		for _, a := range as {
			want := "remove"
			if expected[db][a.Key] {
				want = "keep"
			}
			if got := rows[path.Base(a.Key)]; got != want {
				t.Errorf("table row of %s: %q, want %q", path.Base(a.Key), got, want)
			}
		}
	}
}

func mustName(t *testing.T, key string) naming.Name {
	t.Helper()
	n, err := naming.Parse(path.Base(key))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func everyNth(ts []time.Time, n int) []time.Time {
	var out []time.Time
	for i := 0; i < len(ts); i += n {
		out = append(out, ts[i])
	}
	return out
}

func pruneSortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pruneDiff says which keys are extra and which are missing.
func pruneDiff(got, want []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, k := range list {
			m[k] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var extra, missing []string
	for _, k := range got {
		if !w[k] {
			extra = append(extra, k)
		}
	}
	for _, k := range want {
		if !g[k] {
			missing = append(missing, k)
		}
	}
	return fmt.Sprintf("%d extra %v; %d missing %v", len(extra), extra, len(missing), missing)
}

func pruneTail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func pruneHead(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}

// TestPruneAppendOnly gives minio-a's upstream a MinIO user that may list,
// read and write but not delete: archive and verify work with it, prune
// fails naming that upstream and deletes nothing anywhere, and its probe
// is gone from the upstreams that do allow deletes. With deleting keys but
// one upstream down, prune refuses (it cannot see that upstream's copies);
// with all up, the same prune succeeds and cleans the probe up.
func TestPruneAppendOnly(t *testing.T) {
	harness.Need(t, "minio", "age")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	a, b := harness.StartMinIO(t), harness.StartMinIO(t)
	user := a.AddUser(t, "append-only", harness.AppendOnlyPolicy(a.Bucket))
	dir := t.TempDir()
	local := path.Join(dir, "local-upstream")
	union := harness.UnionSection(harness.UnionName, "minio-a:"+a.Bucket, "minio-b:"+b.Bucket, local)
	// no_check_bucket: rclone otherwise tries CreateBucket before the first
	// upload, which a user without bucket rights may not (rclone's docs).
	appendOnly := harness.WriteRcloneConf(t, dir, a.RcloneSectionAs("minio-a", user, map[string]string{"no_check_bucket": "true"}),
		b.RcloneSection("minio-b", nil), union)
	pgarchive := func(args ...string) run {
		return runBin(t, bin, nil, append([]string{"--rclone-config", appendOnly, "--log-target", "stderr"}, args...)...)
	}

	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "db1")
	pg.GenerateData(t, "db1", 200)
	dump := pg.Dump(t, "db1", "gzip")
	_, recip := harness.AgeKeygen(t, false)
	for range 3 {
		if r := pgarchive("--recipient", recip, "archive", "--database", "db1", "--file", dump); r.exit != 0 {
			t.Fatalf("archive with append-only keys: exit %d\n%s", r.exit, r.stderr)
		}
	}
	if r := pgarchive("verify"); r.exit != 0 {
		t.Fatalf("verify with append-only keys: exit %d\n%s", r.exit, r.stderr)
	}
	listings := func() [][]string {
		return [][]string{a.ListObjects(t, ""), b.ListObjects(t, ""), listDir(t, local, "")}
	}
	before := listings()
	if data, _ := archivesIn(before[0]); len(data) != 3 {
		t.Fatalf("want 3 archives on minio-a, got %v", before[0])
	}
	for i, keys := range before {
		if !reflect.DeepEqual(keys, before[0]) {
			t.Fatalf("upstream %d holds %v, minio-a %v", i, keys, before[0])
		}
	}

	if r := pgarchive("prune", "--keep-last", "1", "--dry-run"); r.exit != 0 || strings.Count(r.stdout, "remove  no policy keeps it") != 2 {
		t.Fatalf("prune --dry-run needs no delete right: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	r := pgarchive("prune", "--keep-last", "1")
	want := "upstream minio-a:" + a.Bucket + " refuses deletes (AccessDenied): prune needs credentials that may delete; nothing was deleted"
	if r.exit != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("prune with append-only keys: exit %d, want 1 and %q in:\n%s", r.exit, want, r.stderr)
	}
	if strings.Contains(r.stderr, "minio-b") || strings.Contains(r.stderr, local) || strings.Contains(r.stderr, "removed") {
		t.Errorf("only minio-a refuses deletes, and nothing is removed:\n%s", r.stderr)
	}
	after := listings()
	probe := "/" + ".pgarchive-prune-probe"
	wantA := append(append([]string{}, before[0]...), probe[1:])
	sort.Strings(wantA)
	if !reflect.DeepEqual(after[0], wantA) {
		t.Errorf("minio-a: %s (its probe could not be deleted, everything else must stay)", pruneDiff(after[0], wantA))
	}
	for i := 1; i < 3; i++ {
		if !reflect.DeepEqual(after[i], before[i]) {
			t.Errorf("upstream %d changed although prune was refused (or kept its probe): %s", i, pruneDiff(after[i], before[i]))
		}
	}

	full := harness.WriteRcloneConf(t, dir, a.RcloneSection("minio-a", nil), b.RcloneSection("minio-b", nil), union)
	b.Stop()
	r = runBin(t, bin, nil, "--rclone-config", full, "--log-target", "stderr", "--low-level-retries", "1", "prune", "--keep-last", "1")
	if r.exit != 1 || !strings.Contains(r.stderr, "prune refused: could not list upstream minio-b:"+b.Bucket) || !strings.Contains(r.stderr, "nothing was deleted") {
		t.Fatalf("prune with minio-b down: exit %d\n%s", r.exit, r.stderr)
	}
	if ga, gl := a.ListObjects(t, ""), listDir(t, local, ""); !reflect.DeepEqual(ga, after[0]) || !reflect.DeepEqual(gl, after[2]) {
		t.Fatalf("prune deleted while an upstream could not be listed: minio-a %s; local %s", pruneDiff(ga, after[0]), pruneDiff(gl, after[2]))
	}
	b.Start(t)

	r = runBin(t, bin, nil, "--rclone-config", full, "--log-target", "stderr", "prune", "--keep-last", "1")
	if r.exit != 0 || strings.Count(r.stderr, "prune: removed ") != 2 {
		t.Fatalf("prune with deleting keys: exit %d\n%s", r.exit, r.stderr)
	}
	data, _ := archivesIn(before[0])
	sort.Slice(data, func(i, j int) bool { return naming.Less(mustName(t, data[i]), mustName(t, data[j])) })
	newest := []string{data[2], data[2] + naming.ManifestSuffix}
	for i, keys := range listings() {
		if !reflect.DeepEqual(keys, newest) {
			t.Errorf("upstream %d after prune: %s", i, pruneDiff(keys, newest))
		}
	}
}
