package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/notify"
	"github.com/pgarchive/pgarchive/tests/harness"
)

// hookSecret is the secret part of the test webhook URLs, as in Slack's
// https://hooks.slack.com/services/T.../B.../<token>: it must never show in
// output.
const hookSecret = "/services/T0E2E/B0E2E/e2eS3cretT0ken"

// hook is a real HTTP server on loopback standing in for Slack: it answers
// with the given statuses in turn (the last one from then on) and records
// every request.
type hook struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []hookRequest
	statuses []int
}

type hookRequest struct {
	Path, ContentType string
	Body              []byte
}

func startHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: b})
		status := h.statuses[min(len(h.reqs), len(h.statuses))-1]
		h.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// urlFile writes the hook's secret URL to a file, as a credential would be.
func (h *hook) urlFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook-url")
	if err := os.WriteFile(p, []byte(h.srv.URL+hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// only returns the single request the hook got, checking its path and type.
func (h *hook) only(t *testing.T) []byte {
	t.Helper()
	reqs := h.requests()
	if len(reqs) != 1 {
		t.Fatalf("the webhook got %d requests, want 1", len(reqs))
	}
	if reqs[0].Path != hookSecret || reqs[0].ContentType != "application/json" {
		t.Fatalf("request to %q as %q", reqs[0].Path, reqs[0].ContentType)
	}
	return reqs[0].Body
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "e2eS3cretT0ken") || strings.Contains(s, "T0E2E") {
		t.Errorf("%s shows the webhook URL's secret path:\n%s", what, s)
	}
}

// TestNotifyFailure: a real archive run fails under a real journald (one
// upstream refuses connections), then notify reads that journal with
// journalctl, as a handler unit would, and posts to a real HTTP server.
func TestNotifyFailure(t *testing.T) {
	harness.NeedRoot(t)
	harness.Need(t, "age", "journalctl")
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	conf := harness.WriteRcloneConf(t, dir,
		"[dead]\ntype = s3\nprovider = Minio\nendpoint = http://127.0.0.1:"+strconv.Itoa(harness.FreePort(t))+"\naccess_key_id = x\nsecret_access_key = y\nlow_level_retries = 1\n",
		harness.UnionSection(harness.UnionName, good, "dead:bucket"))
	idPath, _ := harness.AgeKeygen(t, false)
	dump := filepath.Join(dir, "db1.sql.gz")
	os.WriteFile(dump, harness.RandomDump(5, 50_000, true), 0o600)

	j := harness.StartJournald(t)
	if exit := j.RunAsService(t, []string{"RCLONE_CONFIG=" + conf}, "postgresqlBackup-db1", bin,
		"--identity-file", idPath, "archive", "--database", "db1", "--file", dump); exit == 0 {
		t.Fatal("a run with an unreachable upstream must fail")
	}
	// What systemd hands an OnFailure= handler. The standalone journald has
	// no units, so its entries carry no _SYSTEMD_UNIT or invocation id:
	// --journal-match selects the run's entries by identifier instead (the
	// nspawn test covers the invocation id under real systemd).
	monitor := []string{"MONITOR_UNIT=postgresqlBackup-db1.service", "MONITOR_SERVICE_RESULT=exit-code",
		"MONITOR_EXIT_CODE=exited", "MONITOR_EXIT_STATUS=1"}
	notifyArgs := func(h *hook, format string, lines int, unit string) []string {
		args := []string{"--log-target", "stderr", "notify", "--event", "failure",
			"--journal-match", "SYSLOG_IDENTIFIER=pgarchive", "--journal-match", "SYSLOG_IDENTIFIER=postgresqlBackup-db1",
			"--webhook-url-file", h.urlFile(t), "--format", format, "--journal-lines", strconv.Itoa(lines)}
		if unit != "" {
			args = append(args, "--unit", unit)
		}
		return args
	}

	t.Run("json", func(t *testing.T) {
		h := startHook(t, 200)
		_, stderr, exit := j.Run(t, monitor, bin, notifyArgs(h, "json", 3, "postgresqlBackup-db1.service")...)
		if exit != 0 {
			t.Fatalf("notify exited %d:\n%s", exit, stderr)
		}
		noSecret(t, "notify's stderr", stderr)
		var n notify.Notice
		decodeJSON(t, h.only(t), &n)
		host, _ := os.Hostname()
		if n.Version != 1 || n.Event != "failure" || n.Host != host || n.Unit != "postgresqlBackup-db1.service" ||
			n.Database != "db1" || len(n.Databases) != 1 || n.Result != "exit-code" || n.ExitCode != "exited" || n.ExitStatus != "1" ||
			n.JournalError != "" || n.Summary != nil || time.Since(n.Time) > 5*time.Minute {
			t.Errorf("notice: %+v", n)
		}
		if len(n.FailedUpstreams) != 1 || n.FailedUpstreams[0] != "dead:bucket" {
			t.Errorf("failed_upstreams = %v, want [dead:bucket]", n.FailedUpstreams)
		}
		if len(n.Journal) != 3 {
			t.Fatalf("want the last 3 journal lines, got %q", n.Journal)
		}
		// The same entries, read back independently: the notice carries
		// the last three, in order.
		all := j.Entries(t, "SYSLOG_IDENTIFIER=pgarchive", "SYSLOG_IDENTIFIER=postgresqlBackup-db1")
		for i, e := range all[len(all)-3:] {
			if !strings.HasSuffix(n.Journal[i], ": "+e["MESSAGE"]) && !strings.HasSuffix(n.Journal[i], "…") {
				t.Errorf("journal line %d is %q, the journal has %q", i, n.Journal[i], e["MESSAGE"])
			}
		}
		if !strings.Contains(n.Journal[2], "pgarchive[") || !strings.Contains(n.Journal[2], ": error: db1: ") {
			t.Errorf("the last line should be pgarchive's final error, got %q", n.Journal[2])
		}
		if !strings.Contains(strings.Join(n.Journal, "\n"), "dead:bucket") {
			t.Errorf("the journal lines lack the upstream's failure: %q", n.Journal)
		}
	})

	t.Run("slack, database from the journal", func(t *testing.T) {
		h := startHook(t, 200)
		// A unit name that implies no database: the journal's fields name it.
		_, stderr, exit := j.Run(t, []string{"MONITOR_UNIT=nightly-archive.service", "MONITOR_SERVICE_RESULT=exit-code",
			"MONITOR_EXIT_CODE=exited", "MONITOR_EXIT_STATUS=1"}, bin, notifyArgs(h, "slack", 20, "")...)
		if exit != 0 {
			t.Fatalf("notify exited %d:\n%s", exit, stderr)
		}
		var msg struct{ Text string }
		decodeJSON(t, h.only(t), &msg)
		t.Logf("Slack text:\n%s", msg.Text)
		for _, want := range []string{
			":x: *nightly-archive.service failed* on `",
			"*Database:* `db1`",
			"*Result:* exit-code (status 1)",
			"*Failed upstreams:* `dead:bucket`",
			"NOT stored on dead:bucket",
		} {
			if !strings.Contains(msg.Text, want) {
				t.Errorf("Slack text lacks %q:\n%s", want, msg.Text)
			}
		}
		if lines := strings.Count(msg.Text[strings.Index(msg.Text, "```"):], "\n"); lines < 4 || lines > 21 {
			t.Errorf("%d journal lines in the code block:\n%s", lines, msg.Text)
		}
	})

	// systemd's invocation id selects nothing in this journal: the notice
	// still goes out, saying why it has no journal lines.
	t.Run("no journal entries", func(t *testing.T) {
		h := startHook(t, 200)
		_, stderr, exit := j.Run(t, append(monitor, "MONITOR_INVOCATION_ID=0123456789abcdef0123456789abcdef"), bin,
			"--log-target", "stderr", "notify", "--event", "failure", "--unit", "postgresqlBackup-db1.service",
			"--webhook-url-file", h.urlFile(t), "--format", "json")
		if exit != 0 {
			t.Fatalf("notify exited %d:\n%s", exit, stderr)
		}
		var n notify.Notice
		decodeJSON(t, h.only(t), &n)
		if n.Database != "db1" || n.InvocationID != "0123456789abcdef0123456789abcdef" || n.ExitStatus != "1" ||
			len(n.Journal) != 0 || !strings.Contains(n.JournalError, "no journal entries found for invocation 0123456789abcdef") {
			t.Errorf("notice: %+v", n)
		}
		if !strings.Contains(stderr, "no journal entries found") {
			t.Errorf("the missing journal should be logged:\n%s", stderr)
		}
	})

	t.Run("500 then 200 is retried", func(t *testing.T) {
		h := startHook(t, 500, 200)
		_, stderr, exit := j.Run(t, monitor, bin, notifyArgs(h, "json", 5, "postgresqlBackup-db1.service")...)
		if exit != 0 {
			t.Fatalf("notify exited %d:\n%s", exit, stderr)
		}
		reqs := h.requests()
		if len(reqs) != 2 || !bytes.Equal(reqs[0].Body, reqs[1].Body) {
			t.Fatalf("want the same body twice, got %d requests", len(reqs))
		}
		u := strings.TrimPrefix(h.srv.URL, "http://")
		if !strings.Contains(stderr, "attempt 1 failed (HTTP 500 Internal Server Error") || !strings.Contains(stderr, "delivered to http://"+u+" (HTTP 200, 2 attempts)") {
			t.Errorf("stderr should tell of the retry and the delivery:\n%s", stderr)
		}
		noSecret(t, "notify's stderr", stderr)
	})
}

// TestNotifyUndeliverable: a webhook nobody listens on and one that refuses
// the payload both exit 1 with an error that names the host, not the URL.
func TestNotifyUndeliverable(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dead := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	urlFile := filepath.Join(t.TempDir(), "webhook-url")
	os.WriteFile(urlFile, []byte(dead+hookSecret+"?token=e2eS3cretT0ken\n"), 0o600)
	start := time.Now()
	r := runBin(t, bin, nil, "--log-target", "stderr", "notify", "--event", "failure", "--unit", "pgarchive-prune.service",
		"--journal-lines", "0", "--webhook-url-file", urlFile)
	if r.exit != 1 || !strings.Contains(r.stderr, "failure notice for pgarchive-prune.service NOT delivered: webhook "+dead+": ") ||
		!strings.Contains(r.stderr, "connection refused (after 4 attempts)") {
		t.Errorf("exit %d, stderr:\n%s", r.exit, r.stderr)
	}
	if d := time.Since(start); d < 6*time.Second {
		t.Errorf("4 attempts with 1+2+4 s backoff took only %s", d)
	}
	noSecret(t, "stderr", r.stderr)

	h := startHook(t, 404)
	r = runBin(t, bin, nil, "--log-target", "stderr", "notify", "--event", "success", "--unit", "x.service", "--journal-lines", "0",
		"--webhook-url", h.srv.URL+hookSecret)
	if r.exit != 1 || len(h.requests()) != 1 || !strings.Contains(r.stderr, "HTTP 404 Not Found") {
		t.Errorf("a 404 must fail at once: exit %d after %d requests:\n%s", r.exit, len(h.requests()), r.stderr)
	}
	noSecret(t, "stderr", r.stderr)

	for _, bad := range [][]string{
		{"--event", "failure"}, // no webhook
		{"--event", "failure", "--webhook-url", "ftp://x" + hookSecret},
		{"--event", "failure", "--webhook-url", h.srv.URL, "--webhook-url-file", urlFile},
		{"--event", "crash", "--dry-run"},
		{"--event", "failure", "--dry-run", "--format", "xml"},
		{"--event", "failure", "--dry-run", "--journal-lines", "1000"},
	} {
		r := runBin(t, bin, nil, append([]string{"--log-target", "stderr", "notify"}, bad...)...)
		if r.exit != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", bad, r.exit, r.stderr)
		}
		noSecret(t, "usage error", r.stderr)
	}
}

// TestNotifySummary archives to the world (two MinIO and a folder), then
// makes one database's only archive three days old and deletes a copy, and
// checks what the daily summary reports per upstream.
func TestNotifySummary(t *testing.T) {
	w := newWorld(t, nil)
	_, recip := harness.AgeKeygen(t, false)
	for i, db := range []string{"db1", "db2"} {
		p := filepath.Join(w.dir, db+".sql.gz")
		os.WriteFile(p, harness.RandomDump(int64(20+i), 40_000, true), 0o600)
		if r := w.pgarchive(t, nil, "-r", recip, "archive", "--database", db, "--file", p); r.exit != 0 {
			t.Fatalf("archive %s: %s", db, r.stderr)
		}
	}
	ups := w.upstreams(t)
	db2, _ := archivesIn(ups[0].list("db2/"))
	w.backdate(t, db2[0], 72*time.Hour)
	db1, _ := archivesIn(ups[0].list("db1/"))
	w.minios[1].DeleteObject(t, db1[0]) // minio-b keeps a manifest without data
	size := int64(len(ups[0].read(db1[0])))

	// db3's upload is rejected by minio-b (a revoked key): the archive
	// waits in the backlog of stateDir.
	stateDir := t.TempDir()
	goodKey := w.minios[1].SecretKey
	w.minios[1].SecretKey = "revoked-" + goodKey
	badConf := harness.WriteSeedRcloneConf(t, t.TempDir(), w.local, nil, w.minios...)
	w.minios[1].SecretKey = goodKey
	db3 := filepath.Join(w.dir, "db3.sql.gz")
	os.WriteFile(db3, harness.RandomDump(23, 30_000, true), 0o600)
	if r := runBin(t, w.bin, nil, "--rclone-config", badConf, "--log-target", "stderr", "--state-dir", stateDir,
		"-r", recip, "archive", "--database", "db3", "--file", db3); r.exit == 0 {
		t.Fatalf("archive with a revoked key on minio-b must fail:\n%s", r.stderr)
	}
	db3Keys, _ := archivesIn(ups[0].list("db3/"))
	db3Size := int64(len(ups[0].read(db3Keys[0])))

	h := startHook(t, 200)
	r := w.pgarchive(t, nil, "--state-dir", stateDir, "notify", "--event", "summary", "--webhook-url-file", h.urlFile(t), "--format", "json")
	if r.exit != 0 {
		t.Fatalf("summary exited %d:\n%s", r.exit, r.stderr)
	}
	var n notify.Notice
	decodeJSON(t, h.only(t), &n)
	d := n.Summary
	if n.Event != "summary" || d == nil || d.Until.Sub(d.Since) != 24*time.Hour || d.Error != "" {
		t.Fatalf("notice: %+v", n)
	}
	if strings.Join(d.Databases, ",") != "db1,db2,db3" || strings.Join(d.Stale, ",") != "db2" {
		t.Errorf("databases %v, stale %v", d.Databases, d.Stale)
	}
	if len(d.Upstreams) != 3 {
		t.Fatalf("upstreams: %+v", d.Upstreams)
	}
	for i, u := range d.Upstreams {
		wantName := harness.MinIORemoteName(i) + ":" + w.minios[min(i, 1)].Bucket
		if i == 2 {
			wantName = w.local
		}
		if u.Name != wantName || u.Error != "" || strings.Join(u.Missing, ",") != map[bool]string{true: "db1,db2,db3", false: "db2"}[i == 1] {
			t.Errorf("upstream %d: %+v", i, u)
			continue
		}
		switch i {
		case 1:
			if u.Archives != 0 || u.Incomplete != 2 || len(u.Databases) != 0 {
				t.Errorf("minio-b lost db1's data and never got db3's: %+v", u)
			}
		default:
			if u.Archives != 2 || u.Bytes != size+db3Size || u.Incomplete != 0 || len(u.Databases) != 2 ||
				u.Databases[0].Database != "db1" || u.Databases[0].Bytes != size || time.Since(u.Databases[0].Newest) > 10*time.Minute ||
				u.Databases[1].Database != "db3" || u.Databases[1].Bytes != db3Size {
				t.Errorf("%s: %+v", u.Name, u)
			}
		}
	}
	if strings.Join(n.FailedUpstreams, ",") != strings.Join([]string{d.Upstreams[0].Name, d.Upstreams[1].Name, d.Upstreams[2].Name}, ",") {
		t.Errorf("failed_upstreams %v: every upstream misses db2", n.FailedUpstreams)
	}
	if b := d.Backlog; b == nil || b.Archives != 1 || b.Bytes != db3Size || b.Error != "" || b.Oldest == nil ||
		len(b.Databases) != 1 || b.Databases[0].Database != "db3" || b.Databases[0].Bytes != db3Size {
		t.Errorf("backlog: %+v", d.Backlog)
	}

	h = startHook(t, 200)
	if r := w.pgarchive(t, nil, "--state-dir", stateDir, "notify", "--event", "summary", "--webhook-url-file", h.urlFile(t)); r.exit != 0 {
		t.Fatalf("summary exited %d:\n%s", r.exit, r.stderr)
	}
	var msg struct{ Text string }
	decodeJSON(t, h.only(t), &msg)
	t.Logf("Slack text:\n%s", msg.Text)
	for _, want := range []string{
		":warning: *pgarchive summary* for `",
		"*No new archive anywhere:* `db2`",
		"• `minio-a:" + w.minios[0].Bucket + "`: 2 archives, ",
		" (db1 ×1, db3 ×1); *nothing from* `db2`",
		"• `minio-b:" + w.minios[1].Bucket + "`: 0 archives, 0 B; *nothing from* `db1`, `db2`, `db3`; *2 archives incomplete or missing here*",
		"*Backlog:* 1 archive, ",
		" waiting for upload (db3 ×1)",
	} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("Slack summary lacks %q:\n%s", want, msg.Text)
		}
	}

	// The remote cannot be read: the summary still goes out, and says so.
	h = startHook(t, 200)
	r = runBin(t, w.bin, nil, "--log-target", "stderr", "--rclone-config", filepath.Join(w.dir, "absent.conf"),
		"notify", "--event", "summary", "--webhook-url-file", h.urlFile(t), "--format", "json")
	decodeJSON(t, h.only(t), &n)
	if r.exit != 1 || n.Summary == nil || !strings.Contains(n.Summary.Error, "reading the remote: ") {
		t.Errorf("unreadable remote: exit %d, summary %+v\n%s", r.exit, n.Summary, r.stderr)
	}
}

// backdate moves an archive (data and manifest, on every upstream) to the
// name it would have had age ago, rewriting the manifest to match.
func (w *world) backdate(t *testing.T, key string, age time.Duration) {
	t.Helper()
	old, err := naming.Parse(filepath.Base(key))
	if err != nil {
		t.Fatal(err)
	}
	n, err := naming.New(old.Database, old.Created.Add(-age), old.Suffix)
	if err != nil {
		t.Fatal(err)
	}
	newKey := n.Key("")
	for i, up := range w.upstreams(t) {
		data := up.read(key)
		m, err := manifest.Parse(bytes.NewReader(up.read(key + naming.ManifestSuffix)))
		if err != nil {
			t.Fatal(err)
		}
		m.Archive, m.Created = n.Base(), n.Created
		mb, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if i < len(w.minios) {
			w.minios[i].PutObject(t, newKey, data)
			w.minios[i].PutObject(t, newKey+naming.ManifestSuffix, mb)
			w.minios[i].DeleteObject(t, key)
			w.minios[i].DeleteObject(t, key+naming.ManifestSuffix)
			continue
		}
		for k, b := range map[string][]byte{newKey: data, newKey + naming.ManifestSuffix: mb} {
			if err := os.WriteFile(filepath.Join(w.local, k), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(filepath.Join(w.local, key))
		os.Remove(filepath.Join(w.local, key+naming.ManifestSuffix))
	}
}
