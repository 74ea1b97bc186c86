package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// authWorld is the drill world plus a signing key on the database host,
// another that an attacker holds, and a genuine archive of db1 signed by the
// host: the attack of the issue, on two MinIO and a local folder.
type authWorld struct {
	*drillWorld
	hostKey, hostPub     string
	attackKey, attackPub string
	recipient            string
	genuine              string // key of the genuine signed archive
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	d := newDrillWorld(t)
	a := &authWorld{drillWorld: d}
	a.hostKey, a.hostPub = harness.SSHKeygen(t, "ed25519")
	a.attackKey, a.attackPub = harness.SSHKeygen(t, "ed25519")
	_, a.recipient = keyOf(t, d.idPath)
	dump := filepath.Join(t.TempDir(), "db1.sql.gz")
	os.WriteFile(dump, d.dumpGz, 0o600)
	a.genuine = a.archive(t, "db1", dump, "--signing-key", a.hostKey)
	d.global = []string{"--trusted-signer", a.hostPub}
	return a
}

// archive stores file as database db (with extra global flags first) and
// returns the new archive's key.
func (a *authWorld) archive(t *testing.T, db, file string, global ...string) string {
	t.Helper()
	before, _ := archivesIn(a.upstreams(t)[2].list(db + "/"))
	args := append(append(global, "--recipient", a.recipient), "archive", "--database", db, "--file", file)
	if r := a.pgarchive(t, nil, args...); r.exit != 0 {
		t.Fatalf("archive %s: %s", db, r.stderr)
	}
	after, _ := archivesIn(a.upstreams(t)[2].list(db + "/"))
	for _, k := range after {
		if !contains(before, k) {
			return k
		}
	}
	t.Fatalf("archive %s made no new archive: %v", db, after)
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// trusted runs pgarchive as root with the host's key trusted.
func (a *authWorld) trusted(t *testing.T, args ...string) run {
	t.Helper()
	return a.pgarchive(t, nil, append([]string{"--trusted-signer", a.hostPub}, args...)...)
}

// evilDump is a plain SQL dump, complete by pg_dump's marker, that runs a
// shell command through psql and a program through the server.
func evilDump(t *testing.T, dir, shellMark, copyMark string) string {
	t.Helper()
	sql := "--\n-- PostgreSQL database dump\n--\n\n" +
		"\\! touch " + shellMark + "\n" +
		"COPY (SELECT 1) TO PROGRAM 'touch " + copyMark + "';\n\n" +
		"--\n-- PostgreSQL database dump complete\n--\n\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(sql))
	zw.Close()
	p := filepath.Join(dir, "evil.sql.gz")
	if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustNotExist(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists: a forged dump ran a command", p)
		}
	}
}

// TestForgedArchivesContained is the attack: with only the public recipient
// and upload rights, plant newer archives of db1 (one unsigned, one signed
// by another key) that run commands when loaded. Every reader must see
// through them.
func TestForgedArchivesContained(t *testing.T) {
	a := newAuthWorld(t)
	shellMark, copyMark := filepath.Join(a.dir, "pwned-shell"), filepath.Join(a.dir, "pwned-copy")
	evil := evilDump(t, t.TempDir(), shellMark, copyMark)
	unsigned := a.archive(t, "db1", evil)
	otherKey := a.archive(t, "db1", evil, "--signing-key", a.attackKey)

	code, out := a.run(t, "-d", "db1", "-i", a.idPath)
	if code == 0 {
		t.Fatalf("drill must fail while forged archives are newer than the genuine one:\n%s", out)
	}
	for _, k := range []string{unsigned, otherKey} {
		if !strings.Contains(out, k) || !strings.Contains(out, "UNTRUSTED") {
			t.Errorf("drill output does not name the forged archive %s as UNTRUSTED:\n%s", k, out)
		}
	}
	if !strings.Contains(out, "no signature") || !strings.Contains(out, "not a trusted signer") {
		t.Errorf("drill should say why each is untrusted:\n%s", out)
	}
	mustNotExist(t, shellMark, copyMark)

	// The genuine dump, not the forgery, comes back as the latest.
	r := a.trusted(t, "restore", "-d", "db1", "--latest", "--output", "-", "-i", a.idPath)
	if r.exit != 0 || r.stdout != string(a.sqlPlain) {
		t.Fatalf("restore --latest (exit %d, %d bytes, want the genuine %d):\n%s", r.exit, len(r.stdout), len(a.sqlPlain), r.stderr)
	}
	if !strings.Contains(r.stderr, "skipping "+otherKey) || !strings.Contains(r.stderr, "skipping "+unsigned) {
		t.Errorf("restore --latest should name the archives it skipped:\n%s", r.stderr)
	}
	r = a.trusted(t, "restore", "-d", "db1", "--archive", otherKey, "--output", filepath.Join(t.TempDir(), "x.sql"), "-i", a.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, "refusing to restore it") {
		t.Fatalf("restore --archive of a forged archive must be refused (exit %d):\n%s", r.exit, r.stderr)
	}
	mustNotExist(t, shellMark, copyMark)

	// status: not OK, and the forgery does not count as fresh.
	r = a.trusted(t, "status", "-d", "db1")
	if r.exit == 0 || !strings.Contains(r.stdout+r.stderr, "UNTRUSTED") || !strings.Contains(r.stdout+r.stderr, filepath.Base(otherKey)) {
		t.Fatalf("status must fail naming the untrusted archive (exit %d):\n%s%s", r.exit, r.stdout, r.stderr)
	}

	// list and keyless verify mark exactly the forged ones.
	r = a.trusted(t, "list", "-d", "db1", "--json")
	var listed []struct {
		Key   string `json:"key"`
		Trust string `json:"trust"`
	}
	decodeJSON(t, []byte(r.stdout), &listed)
	for _, l := range listed {
		want := "untrusted"
		if l.Key == a.genuine {
			want = "trusted"
		}
		if l.Trust != want && (l.Key == a.genuine || l.Key == unsigned || l.Key == otherKey) {
			t.Errorf("list: %s is %s, want %s", l.Key, l.Trust, want)
		}
	}
	r = a.trusted(t, "verify", "-d", "db1")
	if r.exit == 0 || !strings.Contains(r.stderr, otherKey+" on minio-a") || !strings.Contains(r.stderr, unsigned) {
		t.Fatalf("keyless verify must fail naming each forged archive (exit %d):\n%s", r.exit, r.stderr)
	}

	// prune keeps the genuine archive and neither counts nor deletes a forgery.
	r = a.trusted(t, "prune", "-d", "db1", "--keep-last", "1", "--dry-run", "--json")
	actions := pruneActions(t, r)
	if actions[a.genuine] != "keep" || actions[unsigned] != "skip" || actions[otherKey] != "skip" {
		t.Fatalf("prune --keep-last 1 --dry-run: %v (want the genuine kept, the forged skipped)\n%s", actions, r.stderr)
	}
	if r = a.trusted(t, "prune", "-d", "db1", "--keep-last", "1"); r.exit != 0 {
		t.Fatalf("prune: %s", r.stderr)
	}
	for _, up := range a.upstreams(t) {
		data, _ := archivesIn(up.list("db1/"))
		if !contains(data, a.genuine) || !contains(data, unsigned) || !contains(data, otherKey) {
			t.Fatalf("%s after prune: %v", up.name, data)
		}
	}

	// heal never spreads a forgery: its copy deleted on minio-b stays gone.
	a.minios[1].DeleteObject(t, otherKey)
	a.minios[1].DeleteObject(t, otherKey+".manifest.json")
	if r = a.trusted(t, "heal", "-d", "db1"); !strings.Contains(r.stderr, "never copied") {
		t.Fatalf("heal should say it leaves the forgery alone (exit %d):\n%s", r.exit, r.stderr)
	}
	if keys := a.minios[1].ListObjects(t, otherKey); len(keys) > 0 && contains(keys, otherKey) {
		t.Fatalf("heal copied a forged archive back: %v", keys)
	}

	// --remove-untrusted deletes them, signatures too.
	if r = a.trusted(t, "prune", "-d", "db1", "--keep-last", "5", "--remove-untrusted"); r.exit != 0 {
		t.Fatalf("prune --remove-untrusted: %s", r.stderr)
	}
	for _, up := range a.upstreams(t) {
		for _, k := range up.list("db1/") {
			if strings.HasPrefix(k, unsigned) || strings.HasPrefix(k, otherKey) {
				t.Fatalf("%s still holds %s after prune --remove-untrusted", up.name, k)
			}
		}
	}
	mustNotExist(t, shellMark, copyMark)
}

// TestSignaturesAndHeaderPin checks the format against stock OpenSSH and
// the data-swap attack: a genuine manifest and signature beside another
// archive's data object.
func TestSignaturesAndHeaderPin(t *testing.T) {
	a := newAuthWorld(t)
	local := a.upstreams(t)[2]
	dir := t.TempDir()
	m, sig := filepath.Join(dir, "m.json"), filepath.Join(dir, "m.json.sig")
	os.WriteFile(m, local.read(a.genuine+".manifest.json"), 0o600)
	os.WriteFile(sig, local.read(a.genuine+".manifest.json.sig"), 0o600)
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("pg1 namespaces=\"pgarchive\" "+a.hostPub+"\n"), 0o600)
	verify := func() error {
		cmd := exec.Command(harness.Tool(t, "ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", "pg1", "-n", "pgarchive", "-s", sig)
		cmd.Stdin = bytes.NewReader(mustRead(t, m))
		return cmd.Run()
	}
	if err := verify(); err != nil {
		t.Fatalf("stock ssh-keygen -Y verify refuses a genuine signature: %v", err)
	}
	b := mustRead(t, m)
	b[len(b)/2] ^= 1
	os.WriteFile(m, b, 0o600)
	if err := verify(); err == nil {
		t.Fatal("ssh-keygen accepted a manifest with one byte changed")
	}

	// A second genuine archive of the same dump: same size, other header.
	dump := filepath.Join(t.TempDir(), "db1.sql.gz")
	os.WriteFile(dump, a.dumpGz, 0o600)
	second := a.archive(t, "db1", dump, "--signing-key", a.hostKey)
	other := local.read(a.genuine)
	for _, up := range a.minios {
		up.PutObject(t, second, other)
	}
	os.WriteFile(filepath.Join(a.local, second), other, 0o644)
	out := filepath.Join(t.TempDir(), "swapped.sql")
	r := a.trusted(t, "restore", "-d", "db1", "--archive", second, "--output", out, "-i", a.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, "does not match its manifest") || !strings.Contains(r.stderr, "pins") {
		t.Fatalf("another archive's data under a genuine manifest must be refused by the header pin (exit %d):\n%s", r.exit, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("restore wrote output from a swapped data object")
	}
	r = a.trusted(t, "restore", "-d", "db1", "--archive", second, "--into", connString(a.pg, "swapped"), "-i", a.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, "pins") {
		t.Fatalf("restore --into of swapped data (exit %d):\n%s", r.exit, r.stderr)
	}
	if got := a.pg.Query(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'swapped'"); got != "0" {
		t.Fatalf("the target of a refused restore still exists")
	}
}

// TestFutureDatedArchive re-signs a genuine archive under a name in 2099
// with the host's key (stock ssh-keygen -Y sign): status fails naming it,
// prune keeps today's archive, restore --latest skips it.
func TestFutureDatedArchive(t *testing.T) {
	a := newAuthWorld(t)
	local := a.upstreams(t)[2]
	future := "db1/db1_20991231T000000Z.sql.gz.age"
	var m map[string]any
	decodeJSON(t, local.read(a.genuine+".manifest.json"), &m)
	m["archive"], m["created"] = filepath.Base(future), "2099-12-31T00:00:00Z"
	body, _ := json.MarshalIndent(m, "", "  ")
	body = append(body, '\n')
	dir := t.TempDir()
	mf := filepath.Join(dir, "m.json")
	os.WriteFile(mf, body, 0o600)
	if out, err := exec.Command(harness.Tool(t, "ssh-keygen"), "-Y", "sign", "-q", "-n", "pgarchive", "-f", a.hostKey, mf).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	objs := map[string][]byte{future: local.read(a.genuine), future + ".manifest.json": body, future + ".manifest.json.sig": mustRead(t, mf+".sig")}
	for _, up := range a.minios {
		up.PutObjects(t, objs)
	}
	for k, v := range objs {
		os.WriteFile(filepath.Join(a.local, k), v, 0o644)
	}

	r := a.trusted(t, "status", "-d", "db1")
	if r.exit == 0 || !strings.Contains(r.stdout+r.stderr, "FUTURE") || !strings.Contains(r.stdout+r.stderr, "db1_20991231T000000Z") {
		t.Fatalf("status must fail naming the future-dated archive (exit %d):\n%s%s", r.exit, r.stdout, r.stderr)
	}
	r = a.trusted(t, "list", "-d", "db1")
	if !strings.Contains(r.stdout, "2099-12-31 00:00:00 FUTURE") {
		t.Errorf("list should mark the future archive:\n%s", r.stdout)
	}
	r = a.trusted(t, "prune", "-d", "db1", "--keep-last", "1", "--keep-daily", "1", "--dry-run", "--json")
	if !strings.Contains(r.stdout, `"key": "`+a.genuine+`"`) {
		t.Fatalf("prune output lacks the genuine archive:\n%s", r.stdout)
	}
	if actions := pruneActions(t, r); actions[a.genuine] != "keep" || actions[future] != "skip" {
		t.Fatalf("prune plans %v (want today's kept, the future one skipped)", actions)
	}
	r = a.trusted(t, "restore", "-d", "db1", "--output", "-", "-i", a.idPath)
	if r.exit != 0 || !strings.Contains(r.stderr, "skipping "+future) || !strings.Contains(r.stderr, "restored "+a.genuine) {
		t.Fatalf("restore --latest must skip the future archive with a warning (exit %d):\n%s", r.exit, r.stderr)
	}
}

// TestSignedDumpMetaCommandRefused: even a genuinely signed dump (a
// compromised database host) must not run psql meta-commands on the
// restore or drill host.
func TestSignedDumpMetaCommandRefused(t *testing.T) {
	a := newAuthWorld(t)
	shellMark, copyMark := filepath.Join(a.dir, "signed-shell"), filepath.Join(a.dir, "signed-copy")
	evil := evilDump(t, t.TempDir(), shellMark, copyMark)
	a.archive(t, "evil", evil, "--signing-key", a.hostKey)
	r := a.trusted(t, "restore", "-d", "evil", "--into", connString(a.pg, "evil_copy"), "-i", a.idPath)
	if r.exit == 0 || !strings.Contains(r.stderr, `psql meta-command "\\!"`) || !strings.Contains(r.stderr, "evil/evil_") {
		t.Fatalf("restore --into must refuse the meta-command naming archive and line (exit %d):\n%s", r.exit, r.stderr)
	}
	code, out := a.run(t, "-d", "evil", "-i", a.idPath)
	if code == 0 || !strings.Contains(out, "psql meta-command") {
		t.Fatalf("drill must refuse it too (exit %d):\n%s", code, out)
	}
	mustNotExist(t, shellMark, copyMark)
}

// pruneActions reads prune --json of one database: action by archive key.
func pruneActions(t *testing.T, r run) map[string]string {
	t.Helper()
	var plan struct {
		Databases []struct {
			Archives []struct {
				Key    string `json:"key"`
				Action string `json:"action"`
			} `json:"archives"`
		} `json:"databases"`
	}
	decodeJSON(t, []byte(r.stdout), &plan)
	if len(plan.Databases) != 1 {
		t.Fatalf("prune --json: want one database:\n%s\n%s", r.stdout, r.stderr)
	}
	actions := map[string]string{}
	for _, x := range plan.Databases[0].Archives {
		actions[x.Key] = x.Action
	}
	return actions
}
