package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Postgres is a scratch PostgreSQL 15 cluster reachable only through a unix
// socket in a private directory.
type Postgres struct {
	Dir       string // everything of this cluster lives below here
	DataDir   string
	SocketDir string
	DumpDir   string // like nixpkgs' services.postgresqlBackup.location: 0700, owned by the cluster's account
	LogPath   string
	Port      int
	Superuser string // database role, always "postgres"
	OSUser    string // account the server runs as ("" = the test's own)

	acct account
	drop bool

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// StartPostgres creates and starts a cluster; t.Cleanup stops it.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	Need(t, "initdb", "postgres", "pg_isready", "psql", "pg_dump")
	acct, drop := unprivileged(t)
	if drop {
		Need(t, "runuser")
	}
	base := sharedTempDir(t, "pgh-")
	p := &Postgres{
		Dir:       base,
		DataDir:   filepath.Join(base, "data"),
		SocketDir: filepath.Join(base, "sock"),
		DumpDir:   filepath.Join(base, "dump"),
		LogPath:   filepath.Join(base, "postgres.log"),
		Port:      FreePort(t),
		Superuser: "postgres",
		OSUser:    acct.Name,
		acct:      acct,
		drop:      drop,
	}
	for _, d := range []string{p.SocketDir, p.DumpDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("postgres: %v", err)
		}
	}
	if drop {
		for _, d := range []string{base, p.SocketDir, p.DumpDir} {
			if err := os.Chown(d, acct.UID, acct.GID); err != nil {
				t.Fatalf("postgres: chown %s: %v", d, err)
			}
		}
		// A TMPDIR inside a 0700 root directory would make initdb fail with a
		// confusing permission error; say what is wrong instead.
		if _, err := p.asUser(t, "test", "-w", base); err != nil {
			t.Fatalf("postgres: %s cannot write %s (is TMPDIR=%q reachable by it?): %v",
				acct.Name, base, os.Getenv("TMPDIR"), err)
		}
	}
	if out, err := p.asUser(t, p.Bin("initdb"), "-D", p.DataDir, "-U", p.Superuser, "-A", "trust",
		"--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		t.Fatalf("postgres: initdb: %v\n%s", err, tailString(out, 3000))
	}
	t.Cleanup(p.Stop)
	if err := p.start(); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return p
}

// asUser runs a short command as the cluster's account via runuser (initdb
// refuses to run as root; nixpkgs runs the backup as User=postgres).
func (p *Postgres) asUser(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	if p.drop {
		args = append([]string{"-u", p.acct.Name, "--", name}, args...)
		name = LookTool("runuser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = p.Dir // runuser keeps the cwd, which root's might not be readable
	cmd.Env = append(os.Environ(), "PATH="+PostgresBinDir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs the postmaster in the foreground as our child (not via pg_ctl's
// daemonizing) so Pdeathsig reaps it if the test binary dies.
func (p *Postgres) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.Bin("postgres"), "-D", p.DataDir, "-k", p.SocketDir,
		"-p", strconv.Itoa(p.Port), "-c", "listen_addresses=", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.Dir
	cmd.SysProcAttr = childAttr()
	if p.drop {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(p.acct.UID), Gid: uint32(p.acct.GID), Groups: []uint32{}}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() { p.waitErr = cmd.Wait(); close(exited) }()

	ready := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := runCmd(ctx, nil, nil, p.Bin("pg_isready"), "-q", "-h", p.SocketDir,
			"-p", strconv.Itoa(p.Port), "-U", p.Superuser, "-d", "postgres", "-t", "2")
		return err
	}
	died := func() error {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %v", p.waitErr)
		default:
			return nil
		}
	}
	if err := waitFor(60*time.Second, ready, died); err != nil {
		return fmt.Errorf("postgres not ready: %v\nlog tail:\n%s", err, logTail(p.LogPath, 3000))
	}
	return nil
}

// Stop shuts the cluster down (fast shutdown, then SIGKILL after 30 s). It is
// idempotent and safe to call from tests and cleanups alike.
func (p *Postgres) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// Restart starts a stopped cluster again on the same data directory and port.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	if err := p.start(); err != nil {
		t.Fatalf("postgres restart: %v", err)
	}
}

// Bin returns the path of a PostgreSQL 15 program.
func (p *Postgres) Bin(name string) string {
	if c := filepath.Join(PostgresBinDir, name); isExecutable(c) {
		return c
	}
	return LookTool(name)
}

// Env is what a libpq client needs to reach this cluster.
func (p *Postgres) Env() []string {
	return []string{"PGHOST=" + p.SocketDir, "PGPORT=" + strconv.Itoa(p.Port), "PGUSER=" + p.Superuser}
}

func (p *Postgres) psql(t testing.TB, db string, args ...string) string {
	t.Helper()
	base := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", p.SocketDir, "-p", strconv.Itoa(p.Port),
		"-U", p.Superuser, "-d", db}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, _, err := runCmd(ctx, nil, nil, p.Bin("psql"), append(base, args...)...)
	if err != nil {
		t.Fatalf("psql on %s: %v\nserver log tail:\n%s", db, err, logTail(p.LogPath, 1500))
	}
	return string(out)
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// CreateDB creates a database (its own psql call: CREATE DATABASE cannot run
// inside a multi-statement transaction).
func (p *Postgres) CreateDB(t testing.TB, name string) {
	t.Helper()
	p.Exec(t, "postgres", "CREATE DATABASE "+quoteIdent(name))
}

// Exec runs one SQL statement.
func (p *Postgres) Exec(t testing.TB, db, sql string) {
	t.Helper()
	p.psql(t, db, "-c", sql)
}

// ExecFile runs an SQL script (any number of statements, psql meta-commands allowed).
func (p *Postgres) ExecFile(t testing.TB, db, path string) {
	t.Helper()
	p.psql(t, db, "-f", path)
}

// Query runs one statement and returns its unaligned, tuples-only output.
func (p *Postgres) Query(t testing.TB, db, sql string) string {
	t.Helper()
	return strings.TrimSpace(p.psql(t, db, "-A", "-t", "-c", sql))
}

// Restore feeds a plain-SQL dump made with `pg_dump -C` (it creates and
// \connects to its database itself) into this cluster.
func (p *Postgres) Restore(t testing.TB, sql []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "restore.sql")
	if err := os.WriteFile(f, sql, 0o600); err != nil {
		t.Fatal(err)
	}
	p.ExecFile(t, "postgres", f)
}

// Fingerprint summarises the content of every table in db's public schema
// (row count and an order-independent digest), to compare a restored copy
// with its source across clusters.
func (p *Postgres) Fingerprint(t testing.TB, db string) string {
	t.Helper()
	tables := strings.Fields(p.Query(t, db,
		"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"))
	var parts []string
	for _, tbl := range tables {
		q := fmt.Sprintf("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM %s x",
			quoteIdent(tbl))
		parts = append(parts, tbl+"="+p.Query(t, db, q))
	}
	return strings.Join(parts, ";")
}

// generateSQL covers the types a dump has to carry faithfully: non-ASCII and
// control characters, NULLs, arrays, jsonb, bytea, uuid, numeric, timestamps,
// plus a foreign key, an index and a view. Everything derives from the row
// number, so the same rows give the same dump.
const generateSQL = `
CREATE TABLE registrations (
  id integer PRIMARY KEY,
  email text NOT NULL UNIQUE,
  full_name text NOT NULL,
  country char(2),
  amount numeric(12,2),
  active boolean NOT NULL,
  registered_at timestamptz NOT NULL,
  birth_date date,
  tags text[],
  profile jsonb,
  avatar bytea,
  ref uuid
);
INSERT INTO registrations
SELECT i,
  'user' || i || '@example.org',
  (ARRAY['Zoë','José','Ælfrida','Łukasz','Иван','山田','O''Brien', 'Tab' || chr(9) || 'Name'])[1 + i % 8] || ' ' || md5(i::text),
  (ARRAY['DE','FR','JP','US','PL'])[1 + i % 5],
  round((i * 37 % 100000) / 100.0, 2),
  i % 3 <> 0,
  timestamptz '2024-01-01 00:00:00+00' + i * interval '17 minutes',
  CASE WHEN i % 7 = 0 THEN NULL ELSE date '1970-01-01' + (i * 13 % 15000) END,
  ARRAY['t' || (i % 4), 'group-' || (i % 11)],
  jsonb_build_object('n', i, 'even', i % 2 = 0, 'note', 'line1' || chr(10) || 'line2 \ "quoted"'),
  decode(md5('avatar' || i) || md5('x' || i), 'hex'),
  md5('uuid' || i)::uuid
FROM generate_series(1, :rows) AS i;
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  registration_id integer NOT NULL REFERENCES registrations(id),
  kind text NOT NULL,
  at timestamptz NOT NULL,
  payload text
);
INSERT INTO events (registration_id, kind, at, payload)
SELECT 1 + (g % :rows), (ARRAY['login','logout','purchase'])[1 + g % 3],
  timestamptz '2024-06-01 00:00:00+00' + g * interval '1 second',
  repeat(md5(g::text), 1 + g % 4)
FROM generate_series(1, CASE WHEN :rows > 0 THEN 2 * :rows ELSE 0 END) AS g;
CREATE INDEX events_registration_idx ON events (registration_id);
CREATE VIEW active_registrations AS SELECT id, email FROM registrations WHERE active;
`

// GenerateData creates the tables registrations (rows rows) and events
// (2*rows rows) in db with deterministic content.
func (p *Postgres) GenerateData(t testing.TB, db string, rows int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "generate.sql")
	if err := os.WriteFile(f, []byte(generateSQL), 0o600); err != nil {
		t.Fatal(err)
	}
	p.psql(t, db, "-v", "rows="+strconv.Itoa(rows), "-f", f)
}

// nixpkgsBackupScript mirrors the script of nixpkgs'
// nixos/modules/services/backup/postgresql-backup.nix (compressionLevel 6,
// pgdumpOptions "-C"; database "all" is backupAll's pg_dumpall), which runs
// as User=postgres: keep .prev, stream into .in-progress, then rename.
const nixpkgsBackupScript = `set -e -o pipefail
umask 0077
cd "$LOCATION"
db=$1; comp=$2; suffix=$3
if [ -e "$db.sql$suffix" ]; then
  rm -f "$db.prev.sql" "$db.prev.sql.gz" "$db.prev.sql.zstd"
  mv "$db.sql$suffix" "$db.prev.sql$suffix"
fi
# backupAll: pg_dumpall into all.sql*.
dump() { if [ "$db" = all ]; then pg_dumpall; else pg_dump -C "$db"; fi; }
case $comp in
  none) dump | cat > "$db.in-progress.sql$suffix" ;;
  gzip) dump | gzip -c -6 --rsyncable > "$db.in-progress.sql$suffix" ;;
  zstd) dump | zstd -c -6 --rsyncable > "$db.in-progress.sql$suffix" ;;
esac
mv "$db.in-progress.sql$suffix" "$db.sql$suffix"
`

// Dump runs a real `pg_dump -C db | gzip|zstd|cat` into p.DumpDir exactly as
// nixpkgs' postgresqlBackup does (same account, umask, file names) and
// returns DumpDir/<db>.sql[.gz|.zstd].
func (p *Postgres) Dump(t testing.TB, db, compression string) string {
	t.Helper()
	suffix := map[string]string{"none": "", "gzip": ".gz", "zstd": ".zstd"}
	sfx, ok := suffix[compression]
	if !ok {
		t.Fatalf("Dump: compression %q is not gzip, zstd or none", compression)
	}
	if compression != "none" {
		Need(t, compression)
	}
	Need(t, "bash")
	args := []string{"env", "LOCATION=" + p.DumpDir, "PGHOST=" + p.SocketDir,
		"PGPORT=" + strconv.Itoa(p.Port), "PGUSER=" + p.Superuser,
		"bash", "-c", nixpkgsBackupScript, "backup", db, compression, sfx}
	if out, err := p.asUser(t, args[0], args[1:]...); err != nil {
		t.Fatalf("Dump %s (%s): %v\n%s\nserver log tail:\n%s", db, compression, err,
			tailString(out, 2000), logTail(p.LogPath, 1500))
	}
	return filepath.Join(p.DumpDir, db+".sql"+sfx)
}

// NormalizeDump blanks the random key of the `\restrict KEY` and
// `\unrestrict KEY` lines that pg_dump writes into plain dumps since
// 15.14 (CVE-2025-8714), so two dumps of the same data compare equal.
func NormalizeDump(sql []byte) []byte {
	lines := strings.SplitAfter(string(sql), "\n")
	for i, l := range lines {
		for _, cmd := range []string{`\restrict `, `\unrestrict `} {
			if strings.HasPrefix(l, cmd) {
				lines[i] = cmd + "KEY" + l[len(strings.TrimRight(l, "\n")):]
			}
		}
	}
	return []byte(strings.Join(lines, ""))
}

// StartPostgresOn starts a server on an existing data directory (a
// restored one, say), handing it to the account servers run as first;
// t.Cleanup stops it. The server is started in the foreground, so a
// recovery runs before it answers: the wait allows for that.
func StartPostgresOn(t testing.TB, dataDir string) *Postgres {
	t.Helper()
	acct, drop := unprivileged(t)
	base := sharedTempDir(t, "pgh-")
	p := &Postgres{Dir: base, DataDir: dataDir, SocketDir: filepath.Join(base, "sock"), DumpDir: filepath.Join(base, "dump"),
		LogPath: filepath.Join(base, "postgres.log"), Port: FreePort(t), Superuser: "postgres", OSUser: acct.Name, acct: acct, drop: drop}
	if err := os.Mkdir(p.SocketDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if drop {
		for _, d := range []string{base, p.SocketDir} {
			if err := os.Chown(d, acct.UID, acct.GID); err != nil {
				t.Fatal(err)
			}
		}
		err := filepath.Walk(dataDir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, acct.UID, acct.GID)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(p.Stop)
	if err := p.start(); err != nil {
		t.Fatalf("postgres on %s: %v", dataDir, err)
	}
	return p
}

// Log is the server's log so far.
func (p *Postgres) Log(t testing.TB) string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}
