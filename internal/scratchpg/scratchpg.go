// Package scratchpg runs a throwaway PostgreSQL cluster for restore drills:
// private to the current user (a unix socket in a 0700 directory, no TCP),
// tuned for loading rather than durability, and removed without a trace
// by Stop.
package scratchpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgarchive/pgarchive/internal/pgbin"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// Options tune Start.
type Options struct {
	PgBin   string       // directory of initdb and pg_ctl, "" to search (see pgbin.Find)
	TempDir string       // parent of the cluster's directory, "" for os.TempDir()
	Log     *slog.Logger // nil: silent
	// Settings are extra server settings (name -> value), after the defaults.
	Settings map[string]string
	// StartTimeout bounds pg_ctl start; 0 means 60 s. A restored cluster
	// replays WAL before it answers.
	StartTimeout time.Duration
}

// Cluster is a running scratch cluster.
type Cluster struct {
	dir     string
	user    string
	pgCtl   string
	log     *slog.Logger
	timeout time.Duration

	mu      sync.Mutex
	stopped bool
}

const port = "5432" // only a socket in a private directory: no clash with anything

// maxSocketPath is sun_path's size minus its terminating NUL on Linux.
const maxSocketPath = 107

// defaults favour loading speed: a scratch cluster is never worth an fsync.
// A restore in one transaction holds a lock per table, index and sequence
// until it commits; the default of 64 per connection would fail on schemas
// with a few thousand tables ("out of shared memory").
var defaults = [][2]string{
	{"listen_addresses", ""},
	{"fsync", "off"},
	{"full_page_writes", "off"},
	{"synchronous_commit", "off"},
	{"max_locks_per_transaction", "1024"},
}

// Start creates and starts a cluster below opt.TempDir. On any failure
// everything it created is removed again.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	if err := notRoot("initdb"); err != nil {
		return nil, err
	}
	initdb, err := pgbin.Find(opt.PgBin, "initdb")
	if err != nil {
		return nil, err
	}
	// pg_ctl from initdb's directory: a PATH with two PostgreSQL versions
	// must not pair one's initdb with the other's server.
	c, err := newCluster(opt, filepath.Dir(initdb))
	if err != nil {
		return nil, err
	}
	if err := c.startOrRemove(ctx, initdb, opt.Settings); err != nil {
		return nil, err
	}
	c.log.Info("scratch PostgreSQL started", "dir", c.dir, "user", c.user)
	return c, nil
}

// notRoot refuses root, whom refuser (initdb, PostgreSQL) refuses.
func notRoot(refuser string) error {
	if os.Geteuid() == 0 {
		return fmt.Errorf("drill cannot run as root: %s refuses it; run it as an unprivileged user (the NixOS unit uses DynamicUser)", refuser)
	}
	return nil
}

// newCluster makes the cluster's private directory, with pg_ctl from
// binDir.
func newCluster(opt Options, binDir string) (*Cluster, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pgCtl, err := pgbin.Find(binDir, "pg_ctl")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opt.TempDir, "pgarchive-scratch-")
	if err != nil {
		return nil, fmt.Errorf("scratch cluster directory: %w", err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the socket path and pg_ctl must not depend on the working directory
	}
	return &Cluster{dir: dir, user: currentUser(), pgCtl: pgCtl, log: log, timeout: opt.StartTimeout}, nil
}

// startOrRemove starts the server, or removes everything on failure.
func (c *Cluster) startOrRemove(ctx context.Context, initdb string, settings map[string]string) error {
	err := c.start(ctx, initdb, settings)
	if err != nil {
		if serr := c.Stop(); serr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, serr)
		}
	}
	return err
}

// StartFrom is Start on a data directory fill writes (a restored base
// backup, say) instead of initdb's. Whatever the copy's own settings say,
// the scratch server trusts local connections only (its own pg_hba.conf),
// archives nothing (archive_mode off: a restored production cluster must
// never push WAL into production's archive) and needs no postgresql.conf
// of its own (one that is missing, or a link into a Nix store this host
// lacks, is replaced by an empty one). It may still be recovering when
// StartFrom returns.
func StartFrom(ctx context.Context, opt Options, fill func(dataDir string) error) (*Cluster, error) {
	if err := notRoot("PostgreSQL"); err != nil {
		return nil, err
	}
	c, err := newCluster(opt, opt.PgBin)
	if err != nil {
		return nil, err
	}
	if err = fill(c.dataDir()); err == nil {
		err = c.ownConfig()
	}
	if err != nil {
		if serr := c.Stop(); serr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, serr)
		}
		return nil, err
	}
	settings := map[string]string{"hba_file": c.hbaPath(), "archive_mode": "off"}
	for k, v := range opt.Settings {
		settings[k] = v
	}
	if err := c.startOrRemove(ctx, "", settings); err != nil {
		return nil, err
	}
	c.log.Info("scratch PostgreSQL started on a restored data directory", "dir", c.dir)
	return c, nil
}

// LogTail is the end of the server's log, for error messages.
func (c *Cluster) LogTail() string { return logTail(c.logPath(), 3000) }

func (c *Cluster) hbaPath() string { return filepath.Join(c.dir, "pg_hba.conf") }

// ownConfig writes the scratch server's pg_hba.conf and, where the copy
// has none it can read, an empty postgresql.conf.
func (c *Cluster) ownConfig() error {
	if err := os.WriteFile(c.hbaPath(), []byte("local all all trust\n"), 0o600); err != nil {
		return err
	}
	conf := filepath.Join(c.dataDir(), "postgresql.conf")
	if _, err := os.Stat(conf); err != nil {
		os.Remove(conf) // a dangling link
		return os.WriteFile(conf, nil, 0o600)
	}
	return nil
}

// Superuser finds a superuser to connect as: the restored cluster's roles
// are production's, whose bootstrap superuser is usually postgres.
func (c *Cluster) Superuser(ctx context.Context, try ...string) string {
	for _, u := range try {
		if _, err := run(ctx, filepath.Join(filepath.Dir(c.pgCtl), "psql"), "-X", "-h", c.socketDir(), "-p", port, "-U", u, "-d", "postgres", "-c", "SELECT 1"); err == nil {
			c.user = u
			return u
		}
	}
	return c.user
}

func (c *Cluster) start(ctx context.Context, initdb string, settings map[string]string) error {
	sock := c.socketDir()
	if p := filepath.Join(sock, ".s.PGSQL."+port); len(p) > maxSocketPath {
		return fmt.Errorf("scratch cluster socket path %s is longer than %d bytes: choose a shorter temporary directory", p, maxSocketPath)
	}
	if err := os.Mkdir(sock, 0o700); err != nil {
		return err
	}
	if initdb != "" {
		if out, err := run(ctx, initdb, "-D", c.dataDir(), "-U", c.user, "-A", "trust", "--no-sync",
			"-E", "UTF8", "--locale=C"); err != nil {
			return fmt.Errorf("initdb: %v\n%s", err, out)
		}
	}
	opts := []string{"-k", textfmt.ShellQuote(sock), "-p", port}
	for _, kv := range defaults {
		opts = append(opts, "-c", textfmt.ShellQuote(kv[0]+"="+kv[1]))
	}
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		opts = append(opts, "-c", textfmt.ShellQuote(k+"="+settings[k]))
	}
	// pg_ctl -w returns once the server accepts connections, or fails
	// after -t seconds; pg_ctl hands -o to a shell, hence the quoting.
	timeout := 60
	if c.timeout > 0 {
		timeout = int(c.timeout.Seconds())
	}
	if out, err := run(ctx, c.pgCtl, "-D", c.dataDir(), "-l", c.logPath(), "-w", "-t", strconv.Itoa(timeout),
		"-o", strings.Join(opts, " "), "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\nserver log, last lines:\n%s", err, out, logTail(c.logPath(), 3000))
	}
	return nil
}

// ConnString is a libpq keyword/value string for database db.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=%s port=%s user=%s dbname=%s", connValue(c.socketDir()), port, connValue(c.user), connValue(db))
}

// Dir is the cluster's private directory (data, socket and server log).
func (c *Cluster) Dir() string { return c.dir }

func (c *Cluster) dataDir() string   { return filepath.Join(c.dir, "data") }
func (c *Cluster) socketDir() string { return filepath.Join(c.dir, "sock") }
func (c *Cluster) logPath() string   { return filepath.Join(c.dir, "log") }

// Stop shuts the server down without a checkpoint (nothing here is worth
// keeping), kills it if it lingers, and removes the directory. It is
// idempotent and does not depend on the context Start had, which may be
// cancelled by the time a deferred Stop runs.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	pid := postmasterPID(c.dataDir())
	if pid > 0 {
		if out, err := run(ctx, c.pgCtl, "-D", c.dataDir(), "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
			c.log.Warn("pg_ctl stop failed; killing the server", "dir", c.dir, "err", err, "output", out)
		}
		if err := killIfAlive(ctx, pid, c.dataDir()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove scratch cluster directory: %w", err))
	}
	if len(errs) == 0 {
		c.log.Info("scratch PostgreSQL removed", "dir", c.dir)
	}
	return errors.Join(errs...)
}

// currentUser names the cluster's superuser after the account running it,
// as initdb would. Without a passwd entry (DynamicUser= with a pure-Go
// build) any name does: the socket is private and authentication is trust.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "postgres"
}

// run runs a short PostgreSQL program in its own process group, so a
// Ctrl-C on the terminal reaches only pgarchive, which then tears down;
// cancelling ctx kills the group, initdb's postgres children included.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil && cmd.Process != nil {
		// Wait only reaps the group's leader: give the killed children
		// (initdb's bootstrap postgres) a moment to be gone too, so a
		// cancelled Start leaves no process behind when it returns.
		awaitGroupGone(cmd.Process.Pid, 2*time.Second)
	}
	return tailString(string(out), 3000), err
}

// awaitGroupGone polls until no live process of group pgid is left (a
// zombie waiting for init to reap it counts as gone), or timeout.
func awaitGroupGone(pgid int, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) || !groupAlive(pgid) {
			return
		}
	}
}

// groupAlive reports whether /proc shows a process of group pgid that is
// not a zombie. /proc/PID/stat reads "pid (comm) state ppid pgrp ...",
// and comm may hold spaces or parentheses, so fields count from the last ')'.
func groupAlive(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
