package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// historyWorld is two MinIO servers holding two years of nightly archives
// of database shop (signed, as by `archive --signing-key`), the newest one
// archived by the real binary from a real pg_dump, in a directory user
// postgres can read (drill refuses root).
type historyWorld struct {
	*world
	acct        *user.User
	idPath      string // the age identity, readable by postgres
	signingKey  string
	trusted     string // the signing key's public line
	missingWeek []string
	untrusted   string // the one archive signed by another key
	global      []string
}

func newHistoryWorld(t *testing.T) *historyWorld {
	t.Helper()
	harness.NeedRoot(t)
	harness.Need(t, "minio", "age", "ssh-keygen")
	acct, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the drill runs as user postgres: %v", err)
	}
	base, err := os.MkdirTemp("", "pgreport-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	w := &world{bin: harness.BuildBinary(t, "./cmd/pgarchive"), dir: base}
	w.minios = []*harness.MinIO{harness.StartMinIO(t), harness.StartMinIO(t)}
	w.conf = harness.WriteSeedRcloneConf(t, base, "", nil, w.minios...)
	h := &historyWorld{world: w, acct: acct}

	id, recip := harness.AgeKeygen(t, false)
	h.idPath = filepath.Join(base, "identity.txt")
	os.WriteFile(h.idPath, mustRead(t, id), 0o600)
	key, pub := harness.SSHKeygen(t, "ed25519")
	h.signingKey, h.trusted = key, pub
	other, _ := harness.SSHKeygen(t, "ed25519")
	h.global = []string{"--trusted-signer", h.trusted}

	// Two years of nightly archives at 03:00 UTC, yesterday back. minio-b
	// lacks the week 10 to 16 days ago; the archive 20 days ago is signed
	// by a key nobody trusts.
	signer, err := sign.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	forger, err := sign.LoadSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(15, 15))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	objs := []map[string][]byte{{}, {}}
	for day := 1; day <= 730; day++ {
		a := harness.NewFakeArchive(t, r, "", "shop", today.Add(3*time.Hour).AddDate(0, 0, -day), 0, harness.CopyComplete, harness.CopyComplete)
		by := signer
		if day == 20 {
			by, h.untrusted = forger, a.Name.Base()
		}
		sig, err := by.Sign(a.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		for i := range objs {
			if i == 1 && day >= 10 && day <= 16 {
				h.missingWeek = append(h.missingWeek, a.Name.Base())
				continue
			}
			for k, v := range a.Objects(i) {
				objs[i][k] = v
			}
			objs[i][a.Key+naming.SignatureSuffix] = sig
		}
	}
	for i, m := range w.minios {
		m.PutObjects(t, objs[i])
	}

	// The newest: a real dump of a real database, archived by the binary.
	pg := harness.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.GenerateData(t, "shop", 2000)
	dump := pg.Dump(t, "shop", "gzip")
	if r := w.pgarchive(t, nil, "--recipient", recip, "--signing-key", key, "archive", "--database", "shop", "--file", dump); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	return h
}

// asPostgres runs the binary as user postgres with the world's settings.
func (h *historyWorld) asPostgres(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runAs(t, h.acct, h.bin, h.dir, append(append([]string{"--rclone-config", h.conf}, h.global...), args...)...)
}

// runAs runs bin as acct (drill: initdb refuses root) with --pg-bin and a
// private temporary directory below dir, logging to its output.
func runAs(t *testing.T, acct *user.User, bin, dir string, args ...string) (int, string) {
	t.Helper()
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	tmp := filepath.Join(dir, "scratch")
	os.MkdirAll(tmp, 0o700)
	os.Chown(tmp, uid, gid)
	cmd := exec.Command(bin, append([]string{"--log-target", "stderr", "--pg-bin", harness.PostgresBinDir}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// failDrill runs a real drill of shop whose check fails, writing
// pgarchive-drill.prom into mdir.
func (h *historyWorld) failDrill(t *testing.T, mdir string) {
	t.Helper()
	code, out := h.asPostgres(t, "--metrics-dir", mdir, "drill", "-d", "shop", "-i", h.idPath,
		"--check", "select count(*) from no_such_table", "--expect", ">= 1")
	if code != 1 || !strings.Contains(out, "drill FAILED") {
		t.Fatalf("drill with a failing check: exit %d\n%s", code, out)
	}
}

// TestReportSeededHistory: the report of two years of archives on two
// MinIO, one upstream missing a week, one untrusted archive and a failed
// drill, opened in headless Chromium: no console message, the DOM shows the
// missing week and the untrusted archive by name, and screenshots at desktop
// and phone widths (and a PDF print) are left as artefacts.
func TestReportSeededHistory(t *testing.T) {
	h := newHistoryWorld(t)
	mdir := filepath.Join(h.dir, "textfile")
	os.Mkdir(mdir, 0o755)
	uid, _ := strconv.Atoi(h.acct.Uid)
	os.Chown(mdir, uid, -1)
	h.failDrill(t, mdir)

	conf := filepath.Join(h.dir, "pgarchive.json")
	os.WriteFile(conf, []byte(`{"status": {"max-age": "26h"}, "prune": {"keep-daily": 30, "keep-monthly": 12}}`), 0o644)
	out := harness.ArtifactDir(t, "report")
	page := filepath.Join(out, "index.html")
	js := filepath.Join(out, "report.json")
	args := append(append([]string{"--config", conf, "--metrics-dir", mdir}, h.global...),
		"report", "--html", page, "--json-file", js)
	rep := h.pgarchive(t, nil, args...)
	st := h.pgarchive(t, nil, append(append([]string{"--config", conf}, h.global...), "status")...)
	if rep.exit != 1 || st.exit != 1 {
		t.Fatalf("report exit %d, status exit %d (want 1: an untrusted archive)\n%s\n%s", rep.exit, st.exit, rep.stderr, st.stderr)
	}
	var r struct {
		OK         bool   `json:"ok"`
		ExitStatus int    `json:"exit_status"`
		Summary    string `json:"summary"`
		Databases  []struct {
			Database      string `json:"database"`
			Archives      int    `json:"archives"`
			MissingCopies []struct {
				Upstream string `json:"upstream"`
				Archives int    `json:"archives"`
			} `json:"missing_copies"`
			Suspects []struct {
				Archive string `json:"archive"`
			} `json:"suspects"`
			Drill *struct {
				Passed       bool `json:"passed"`
				Checks       int  `json:"checks"`
				ChecksFailed int  `json:"checks_failed"`
			} `json:"drill"`
			Prune *struct {
				Keep   int `json:"keep"`
				Remove []struct {
					Archive string `json:"archive"`
				} `json:"remove"`
			} `json:"prune"`
		} `json:"databases"`
	}
	decodeJSON(t, mustRead(t, js), &r)
	if firstLine := strings.SplitN(st.stdout, "\n", 2)[0]; r.Summary != firstLine || r.OK || r.ExitStatus != 1 {
		t.Fatalf("report verdict %q (exit %d), status says %q", r.Summary, r.ExitStatus, firstLine)
	}
	if len(r.Databases) != 1 {
		t.Fatalf("databases: %+v", r.Databases)
	}
	shop := r.Databases[0]
	if shop.Archives != 730 || len(shop.MissingCopies) != 1 || shop.MissingCopies[0].Archives != 7 ||
		!strings.HasPrefix(shop.MissingCopies[0].Upstream, harness.MinIORemoteName(1)) {
		t.Fatalf("shop: %d archives, missing copies %+v", shop.Archives, shop.MissingCopies)
	}
	if len(shop.Suspects) != 1 || shop.Suspects[0].Archive != h.untrusted {
		t.Fatalf("suspects %+v, want %s", shop.Suspects, h.untrusted)
	}
	if d := shop.Drill; d == nil || d.Passed || d.Checks != 1 || d.ChecksFailed != 1 {
		t.Fatalf("drill: %+v", d)
	}
	// keep-daily 30 + keep-monthly 12 of the 730 trusted archives; the
	// untrusted one is left alone (prune --remove-untrusted removes it).
	if p := shop.Prune; p == nil || p.Keep < 30 || p.Keep > 43 || len(p.Remove) != 730-p.Keep {
		t.Fatalf("prune plan: %+v", p)
	}

	url := "file://" + page
	pg := harness.OpenPage(t, url, 1280, 2400)
	if len(pg.Console) > 0 {
		t.Errorf("the page logged to the console:\n%s", strings.Join(pg.Console, "\n"))
	}
	dom := pg.DOM
	for _, want := range []string{
		`data-exit-status="1"`, `class="verdict bad"`, "UNTRUSTED",
		"lacks 7 archives", `data-archive="` + h.untrusted + `"`, "FAILED", "1 failed",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	// The missing week, mark by mark, on minio-b's row of the timeline.
	for _, name := range h.missingWeek {
		re := regexp.MustCompile(`data-state="missing" data-archive="` + regexp.QuoteMeta(name) + `" title="[^"]* on ` + harness.MinIORemoteName(1))
		if !re.MatchString(dom) {
			t.Errorf("the timeline shows no missing mark for %s on %s", name, harness.MinIORemoteName(1))
		}
	}
	if n := strings.Count(dom, `data-state="missing"`); n != 7 {
		t.Errorf("%d missing marks, want 7", n)
	}
	if !regexp.MustCompile(`data-state="untrusted" data-archive="` + regexp.QuoteMeta(h.untrusted) + `"`).MatchString(dom) {
		t.Error("the timeline does not mark the untrusted archive")
	}

	// The detector is not blind: a page that loads from elsewhere is caught.
	bad := filepath.Join(h.dir, "bad.html")
	os.WriteFile(bad, []byte(`<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src 'none'"><img src="https://cdn.example/x.png">`), 0o644)
	if c := harness.OpenPage(t, "file://"+bad, 800, 600).Console; len(c) == 0 {
		t.Fatal("a blocked load logged nothing: the console check proves nothing")
	}

	for _, shot := range []struct {
		name          string
		width, height int
	}{{"desktop.png", 1280, 2400}, {"phone.png", 390, 2400}} {
		if c := harness.Screenshot(t, url, filepath.Join(out, shot.name), shot.width, shot.height); len(c) > 0 {
			t.Errorf("%s: console:\n%s", shot.name, strings.Join(c, "\n"))
		}
	}
	harness.PrintPDF(t, url, filepath.Join(out, "print.pdf"))
	t.Logf("report, screenshots and print in %s", out)

	// A healthy store reports OK with exit 0, like status.
	var healthy struct {
		OK         bool `json:"ok"`
		ExitStatus int  `json:"exit_status"`
	}
	ok := h.pgarchive(t, nil, "report", "--json", "--database", "shop")
	if ok.exit != 0 && !strings.Contains(ok.stdout, "{") {
		t.Fatalf("report --json without trust: exit %d\n%s", ok.exit, ok.stderr)
	}
	if err := json.Unmarshal([]byte(ok.stdout), &healthy); err != nil || !healthy.OK || healthy.ExitStatus != 0 || ok.exit != 0 {
		t.Fatalf("unsigned view of the same store: %v exit %d %+v\n%s", err, ok.exit, healthy, ok.stderr)
	}
}

// TestReportRefusals: how report is called wrong, and where it cannot
// write: usage errors exit 2, an unwritable page exits 3 naming the file
// and leaves nothing behind; a store with a future-dated archive gets
// status's verdict and the archive named on the page.
func TestReportRefusals(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.MkdirAll(a, 0o700)
	os.MkdirAll(b, 0o700)
	conf := harness.WriteRcloneConf(t, dir, harness.UnionSection(harness.UnionName, a, b))
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	pga := func(args ...string) run {
		return runBin(t, bin, nil, append([]string{"--rclone-config", conf, "--log-target", "stderr"}, args...)...)
	}
	for _, c := range []struct {
		args []string
		exit int
		says string
	}{
		{[]string{"report"}, 2, "--html FILE, --json or --json-file FILE"},
		{[]string{"report", "--json", "--days", "0"}, 2, "--days: 0"},
		{[]string{"report", "--json", "--html", "-"}, 2, "both go to standard output"},
		{[]string{"report", "--json", "extra"}, 2, "no arguments"},
		{[]string{"report", "--json", "--max-age", "1d"}, 2, "max-age"},
		{[]string{"report", "--html", filepath.Join(dir, "no-such-dir", "index.html")}, 3, filepath.Join(dir, "no-such-dir", "index.html")},
	} {
		r := pga(c.args...)
		if r.exit != c.exit || !strings.Contains(r.stderr, c.says) {
			t.Errorf("%v: exit %d, want %d saying %q\n%s", c.args, r.exit, c.exit, c.says, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("report left files behind: %v", ents)
	}

	// A dump archived, then an archive named a day ahead (a skewed clock or
	// a forgery meant to look fresh forever), whole on both upstreams.
	gz := filepath.Join(dir, "db1.sql.gz")
	os.WriteFile(gz, harness.RandomDump(1, 2000, true), 0o600)
	_, recip := harness.AgeKeygen(t, false)
	if r := pga("--recipient", recip, "archive", "--database", "db1", "--file", gz); r.exit != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	fa := harness.NewFakeArchive(t, rand.New(rand.NewPCG(1, 2)), "", "db1", time.Now().Add(24*time.Hour), 0, harness.CopyComplete, harness.CopyComplete)
	for i, up := range []string{a, b} {
		for key, data := range fa.Objects(i) {
			os.WriteFile(filepath.Join(up, filepath.FromSlash(key)), data, 0o600)
		}
	}
	name := fa.Name.Base()
	page := filepath.Join(dir, "index.html")
	r := pga("report", "--html", page)
	st := pga("status")
	if r.exit != 1 || st.exit != 1 {
		t.Fatalf("report exit %d, status exit %d: want 1 (FUTURE)\n%s\n%s", r.exit, st.exit, r.stderr, st.stdout)
	}
	html := string(mustRead(t, page))
	if !strings.Contains(html, `data-archive="`+name+`"`) || !strings.Contains(html, "FUTURE") {
		t.Errorf("the page does not name the future-dated archive %s", name)
	}
}
