// Package nspawn_test boots real systemd (PID 1 in systemd-nspawn) with a
// backup unit shaped like the one NixOS renders for services.postgresqlBackup
// plus services.pgarchive: ExecStart dumps a real PostgreSQL database as user
// postgres, ExecStartPost runs pgarchive with the settings file, credentials
// and command line that nix/wiring.nix (the module's own rendering) produces.
// It mirrors the NixOS VM test (nix/vm-test.nix), which needs a Nix host.
//
// The container shares the host's network namespace (no --private-network):
// MinIO listens on the host's 127.0.0.1 and a private network namespace would
// cut the container off from it. Nothing else of the host is writable inside
// (--volatile=yes, /etc read-only); PostgreSQL is reached through its socket
// directory, bound to /run/postgresql.
package nspawn_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

const (
	optDir     = "/opt/pgarchive" // stands in for the store paths of the package and settings file
	keysDir    = "/run/keys/pgarchive"
	dumpDir    = "/var/backup/postgresql" // services.postgresqlBackup.location's default
	failedUnit = "pgarchive-test-failed.service"
	doneUnit   = "pgarchive-test-done.service"
	target     = "pgarchive-test.target"
	marker     = "nspawn-marker-7f3a"

	exitSuccess   = 0 // the backup unit succeeded and doneUnit ran
	exitOnFailure = 3 // the backup unit failed and its OnFailure= unit ran
	exitBroken    = 4 // one of those two units failed itself
)

// nixpkgs' postgresql-backup.nix names dumps ${location}/${db}.sql${compressSuffix}.
var suffixes = map[string]string{"gzip": ".gz", "zstd": ".zstd", "none": ""}

type world struct {
	pg        *harness.Postgres
	minio     []*harness.MinIO
	bin       string
	identity  string
	secrets   string // host directory bound to keysDir
	nspawn    string
	bootCount int
}

func TestBackupUnitUnderSystemd(t *testing.T) {
	harness.NeedRoot(t)
	w := &world{nspawn: nixeval.Need(t, "systemd-nspawn", "apt-get install -y systemd-container")}
	nixeval.Need(t, "nix-instantiate", nixeval.Install)
	harness.Need(t, "journalctl", "gzip", "zstd", "pg_dump", "pg_dumpall")

	w.pg = harness.StartPostgres(t)
	if w.pg.OSUser == "" {
		t.Fatalf("PostgreSQL must run as a dedicated account for the unit's User=")
	}
	w.pg.CreateDB(t, "db1")
	w.pg.Exec(t, "db1", "CREATE TABLE t (v text)")
	w.pg.Exec(t, "db1", "INSERT INTO t VALUES ('"+marker+"')")
	w.minio = []*harness.MinIO{harness.StartMinIO(t), harness.StartMinIO(t)}
	w.bin = harness.BuildBinary(t, "./cmd/pgarchive")

	var recipient string
	w.identity, recipient = harness.AgeKeygen(t, false)
	w.secrets = t.TempDir()
	harness.WriteSeedRcloneConf(t, w.secrets, "", nil, w.minio...)
	writeFile(t, filepath.Join(w.secrets, "recipients"), "# test recipient\n"+recipient+"\n", 0o600)
	identity, err := os.ReadFile(w.identity)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.secrets, "identity"), string(identity), 0o600)

	perDB := func(prefix string) nixeval.Case {
		o := nixeval.Defaults()
		o.Prefix = prefix
		o.RcloneConfigFile = nixeval.Str(keysDir + "/rclone.conf")
		o.RecipientsFile = nixeval.Str(keysDir + "/recipients")
		return nixeval.Case{Cfg: o, Backup: nixeval.Backup{Location: dumpDir, Compression: "gzip", Databases: []string{"db1"}}}
	}

	t.Run("per-database gzip recipientsFile", func(t *testing.T) {
		c := perDB("nspawn-db1")
		b := w.boot(t, c)
		b.expectExit(t, exitSuccess)
		w.checkArchives(t, b, "db1", "gzip")
	})

	t.Run("backupAll zstd identityFile", func(t *testing.T) {
		o := nixeval.Defaults()
		o.Prefix = "nspawn-all"
		o.RcloneConfigFile = nixeval.Str(keysDir + "/rclone.conf")
		o.IdentityFile = nixeval.Str(keysDir + "/identity")
		b := w.boot(t, nixeval.Case{Cfg: o, Backup: nixeval.Backup{Location: dumpDir, Compression: "zstd", BackupAll: true}})
		b.expectExit(t, exitSuccess)
		w.checkArchives(t, b, "all", "zstd")
	})

	// A key revoked at one provider: the upload there fails at once.
	t.Run("rejected upload fails the unit and fires OnFailure", func(t *testing.T) {
		good := w.minio[1].SecretKey
		w.minio[1].SecretKey = "revoked-" + good
		harness.WriteSeedRcloneConf(t, w.secrets, "", nil, w.minio...)
		w.minio[1].SecretKey = good
		defer harness.WriteSeedRcloneConf(t, w.secrets, "", nil, w.minio...)
		w.expectFailure(t, w.boot(t, perDB("nspawn-rejected")), "nspawn-rejected")
	})

	// An upstream that is down: pgarchive's S3 client retries (several attempts
	// with backoff; ~10 s at pgarchive's default --low-level-retries 3) before
	// giving up; -short skips it.
	t.Run("stopped MinIO fails the unit and fires OnFailure", func(t *testing.T) {
		if testing.Short() {
			t.Skip("SKIPPED: -short: a stopped S3 upstream costs client retries before it fails; the rejected-upload case covers the unit's failure path")
		}
		w.minio[1].Stop()
		w.expectFailure(t, w.boot(t, perDB("nspawn-stopped")), "nspawn-stopped")
	})
}

// expectFailure checks the failure path: the unit failed, its OnFailure=
// unit ran, pgarchive logged the failed upstream, and the healthy upstream
// kept its copy.
func (w *world) expectFailure(t *testing.T, b *bootResult, prefix string) {
	t.Helper()
	b.expectExit(t, exitOnFailure)
	if e := b.entries(t, "UNIT="+b.unit+".service", "JOB_RESULT=failed"); len(e) == 0 {
		t.Errorf("systemd did not log %s.service as failed", b.unit)
	}
	if e := b.entries(t, "_SYSTEMD_UNIT="+failedUnit); len(e) == 0 || !strings.Contains(e[0]["MESSAGE"], "OnFailure fired") {
		t.Errorf("no journal entry from %s: %v", failedUnit, e)
	}
	bad := harness.MinIORemoteName(1) + ":" + w.minio[1].Bucket
	logged := b.entries(t, "_SYSTEMD_UNIT="+b.unit+".service", "PGARCHIVE_DATABASE=db1")
	named := false
	for _, e := range logged {
		if e["PGARCHIVE_UPSTREAM"] == bad && e["PRIORITY"] <= "3" {
			named = true
		}
	}
	if !named {
		t.Errorf("no error entry with PGARCHIVE_UPSTREAM=%s; pgarchive logged:\n%s", bad, messages(logged))
	}
	if keys := ageObjects(t, w.minio[0], prefix+"/db1/"); len(keys) != 1 {
		t.Errorf("the healthy upstream should keep its copy, has %v", keys)
	}
}

// checkArchives verifies that every MinIO holds the archive the journal
// names, that it decrypts to the dump file postgresqlBackup left, and that the
// unit's journal carries pgarchive's structured fields for each upstream.
func (w *world) checkArchives(t *testing.T, b *bootResult, db, compression string) {
	t.Helper()
	entries := b.entries(t, "_SYSTEMD_UNIT="+b.unit+".service", "PGARCHIVE_DATABASE="+db)
	upstreams := map[string]map[string]string{}
	for _, e := range entries {
		if e["PGARCHIVE_UPSTREAM"] != "" {
			upstreams[e["PGARCHIVE_UPSTREAM"]] = e
		}
	}
	if len(upstreams) != len(w.minio) {
		t.Fatalf("journal entries with _SYSTEMD_UNIT=%s.service PGARCHIVE_DATABASE=%s name upstreams %v, want %d; whole journal:\n%s",
			b.unit, db, keysOf(upstreams), len(w.minio), messages(b.entries(t)))
	}

	dumpFile := filepath.Join(w.pg.DumpDir, db+".sql"+suffixes[compression])
	dump, err := os.ReadFile(dumpFile)
	if err != nil {
		t.Fatalf("postgresqlBackup's dump is gone: %v", err)
	}
	if st, err := os.Stat(dumpFile); err == nil {
		if uid := st.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != lookupUID(t, w.pg.OSUser) || st.Mode().Perm() != 0o600 {
			t.Errorf("dump %s: uid %d mode %v, want the %s account's, 0600", dumpFile, uid, st.Mode().Perm(), w.pg.OSUser)
		}
	}
	if !bytes.Contains(decompress(t, dump, compression), []byte(marker)) {
		t.Fatalf("the dump %s lacks the marker row", dumpFile)
	}

	for i, m := range w.minio {
		up := harness.MinIORemoteName(i) + ":" + m.Bucket
		e, ok := upstreams[up]
		if !ok {
			t.Errorf("no journal entry for upstream %s", up)
			continue
		}
		for _, f := range []string{"PGARCHIVE_ARCHIVE", "PGARCHIVE_BYTES", "PGARCHIVE_SHA256"} {
			if e[f] == "" {
				t.Errorf("journal entry for %s lacks %s: %v", up, f, e)
			}
		}
		ct := m.ReadObject(t, e["PGARCHIVE_ARCHIVE"])
		if sum := sha256.Sum256(ct); hex.EncodeToString(sum[:]) != e["PGARCHIVE_SHA256"] || strconv.Itoa(len(ct)) != e["PGARCHIVE_BYTES"] {
			t.Errorf("%s: stored object (%d B) does not match the journal's PGARCHIVE_BYTES=%s PGARCHIVE_SHA256=%s",
				up, len(ct), e["PGARCHIVE_BYTES"], e["PGARCHIVE_SHA256"])
		}
		if got := harness.AgeDecrypt(t, ct, "-i", w.identity); !bytes.Equal(got, dump) {
			t.Errorf("%s: %s does not decrypt to the dump file", up, e["PGARCHIVE_ARCHIVE"])
		}
	}
}

func ageObjects(t *testing.T, m *harness.MinIO, prefix string) []string {
	var out []string
	for _, k := range m.ListObjects(t, prefix) {
		if strings.HasSuffix(k, ".age") {
			out = append(out, k)
		}
	}
	return out
}
