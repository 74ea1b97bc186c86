// Package pgload loads a pg_dump stream into a database of the caller's
// choosing: plain SQL with psql, in one transaction, the dump's own CREATE
// DATABASE and \connect lines taken out and its database-level statements
// pointed at the target (see newRewriter); custom and tar dumps with
// pg_restore, from a private spool. The target is created like the dump's
// database, and a non-empty one is replaced only once the load succeeded.
package pgload

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/pgbin"
)

// Options tune Load.
type Options struct {
	SourceDB string // database the dump was taken of (the dump's CREATE DATABASE wins)
	// Force replaces a target that is not empty: the dump is loaded into a
	// fresh database first, which takes the target's name only once the
	// load succeeded (see swapInto), so a failed load leaves it as it was.
	Force    bool
	Sanitize string // SQL file run on the target after the load, "" for none
	// SkipRoles leaves out what names roles (ALTER ... OWNER TO, GRANT,
	// REVOKE, ALTER DEFAULT PRIVILEGES, ALTER ROLE ... IN DATABASE, SET
	// SESSION AUTHORIZATION), like pg_restore --no-owner --no-privileges:
	// for a cluster without the dump's roles, such as a drill's scratch
	// cluster. Everything then belongs to the user Load connects as.
	SkipRoles bool
	PgBin     string       // directory of psql and pg_restore, "" to search (see pgbin.Find)
	Log       *slog.Logger // nil: silent
	// Archive names the archive being loaded, for error messages.
	Archive string
	// Jobs is pg_restore's --jobs for custom-format dumps; above 1 the load
	// is not one transaction (a failed load's database is dropped instead).
	Jobs int
	// TempDir holds the private spool of custom and tar dumps ("": the
	// system's temporary directory).
	TempDir string
}

// Result describes a successful load.
type Result struct {
	Database string // the target
	Created  bool   // the target did not exist before
	Replaced bool   // the target existed and was replaced (Force)
	Format   string // dumpcheck.FormatPlain, dumpcheck.FormatCustom or dumpcheck.FormatTar
	Bytes    int64  // dump bytes read
	Props    Props  // what the target was created with
}

// Load streams dump into the database connString names (a libpq URL or
// keyword/value string). Plain SQL goes through psql (see newRewriter),
// custom and tar dumps through pg_restore, from a private spool. A missing
// target is created like the dump's database (encoding, locale, owner);
// one that holds anything is replaced only with Force, and only once the
// new data loaded. When the load fails nothing of it stays. A pg_dumpall
// dump is refused: see LoadCluster.
func Load(ctx context.Context, connString string, dump io.Reader, opt Options) (Result, error) {
	l, err := newLoad(ctx, connString, dump, opt)
	if err != nil {
		return l.res, err
	}
	defer l.close()
	return l.res, l.run(ctx)
}

// load is one Load in progress.
type load struct {
	opt     Options
	log     *slog.Logger
	cfg     *pgx.ConnConfig
	conn    string // connection string without password
	env     []string
	target  string
	tool    string // psql or pg_restore
	bin     string
	dump    *bufio.Reader
	counted *countingReader
	maint   *pgx.Conn
	exists  bool // the target exists
	empty   bool // ... and holds nothing
	spool   *spool
	res     Result
}

func newLoad(ctx context.Context, connString string, dump io.Reader, opt Options) (*load, error) {
	l := &load{opt: opt, log: opt.Log}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if l.cfg, err = pgx.ParseConfig(connString); err != nil {
		return l, fmt.Errorf("target connection string: %w", err)
	}
	l.target = l.cfg.Database
	l.res.Database = l.target
	switch l.target {
	case "":
		return l, errors.New("the target connection string names no database (dbname=...)")
	case "template0", "template1":
		return l, fmt.Errorf("refusing to load a dump into %s: new databases are copied from it", l.target)
	}
	l.counted = &countingReader{r: dump}
	l.dump = bufio.NewReaderSize(l.counted, propsScanLimit)
	head, err := peek(ctx, l.dump, 512)
	if err != nil {
		return l, err
	}
	l.res.Format = dumpcheck.Sniff(head)
	switch l.res.Format {
	case dumpcheck.FormatDumpall:
		return l, fmt.Errorf("%s is a pg_dumpall dump of a whole cluster, not of one database", l.what())
	case dumpcheck.FormatPlain:
		l.tool = "psql"
	default:
		l.tool = "pg_restore"
	}
	if l.bin, err = pgbin.Find(opt.PgBin, l.tool); err != nil {
		return l, err
	}
	if opt.Sanitize != "" {
		if err := readable(opt.Sanitize); err != nil {
			return l, fmt.Errorf("sanitize script: %w", err)
		}
	}
	var password string
	if l.conn, password, err = stripPassword(connString); err != nil {
		return l, fmt.Errorf("target connection string: %w", err)
	}
	l.env = psqlEnv(password)
	if l.maint, err = connectMaintenance(ctx, l.cfg, l.target); err != nil {
		return l, err
	}
	return l, nil
}

func (l *load) close() {
	if l.maint != nil {
		l.maint.Close(context.Background())
	}
	if l.spool != nil {
		l.spool.remove()
	}
}

// what names the dump in messages.
func (l *load) what() string {
	if l.opt.Archive != "" {
		return l.opt.Archive
	}
	return "the dump"
}

func (l *load) run(ctx context.Context) error {
	// Refuse before any work: a non-empty target without --force.
	if err := l.checkTarget(ctx); err != nil {
		return err
	}
	props, err := l.props(ctx)
	if err != nil {
		return err
	}
	// A missing target is created and loaded; an existing one is replaced
	// by a new database only once the load succeeded, except an empty one
	// loaded in one transaction (it stays empty if the load fails), which
	// keeps its own settings and owner.
	work := l.target
	switch {
	case l.exists && l.empty && (l.res.Format == dumpcheck.FormatPlain || l.opt.Jobs <= 1):
	case l.exists:
		work = workName(l.target)
		fallthrough
	default:
		if err := l.create(ctx, work, props); err != nil {
			return err
		}
	}
	start := time.Now()
	l.log.Info(fmt.Sprintf("loading %s (%s) with %s into database %s", l.what(), l.res.Format, l.tool, work),
		"database", l.target, "source", l.opt.SourceDB)
	if err := l.loadInto(ctx, work); err != nil {
		return fmt.Errorf("loading %s (%s format, with %s) into database %q: %w%s", l.what(), l.res.Format, l.tool, l.target, err,
			l.afterFailure(ctx, work))
	}
	l.res.Bytes = l.counted.n.Load()
	switch {
	case work != l.target:
		if err := swapInto(ctx, l.log, l.maint, work, l.target); err != nil {
			return err
		}
		l.res.Replaced = true
	case !l.exists:
		l.res.Created = true
	}
	l.log.Info("dump loaded", "database", l.target, "bytes", l.res.Bytes, "seconds", time.Since(start).Seconds())
	return l.sanitize(ctx)
}

// checkTarget finds out whether the target exists and refuses a non-empty
// one without Force.
func (l *load) checkTarget(ctx context.Context) error {
	var err error
	if l.exists, err = databaseExists(ctx, l.maint, l.target); err != nil {
		return fmt.Errorf("database %q: %w", l.target, err)
	}
	if !l.exists {
		return nil
	}
	what, err := contents(ctx, l.cfg, l.target)
	if err != nil {
		return fmt.Errorf("database %q: checking it is empty: %w", l.target, err)
	}
	l.empty = what == ""
	if what != "" && !l.opt.Force {
		return fmt.Errorf("database %q is not empty (%s); pass --force to replace it", l.target, what)
	}
	if what != "" {
		l.log.Warn(fmt.Sprintf("database %s holds %s: it is replaced once the load succeeded (--force); until then it stays as it is", l.target, what),
			"database", l.target)
	}
	return nil
}

// props reads what the dump says about its database: from a plain dump's
// first statements, or, for custom and tar dumps, from pg_restore after
// spooling the dump.
func (l *load) props(ctx context.Context) (Props, error) {
	if l.res.Format == dumpcheck.FormatPlain {
		head, err := peek(ctx, l.dump, propsScanLimit)
		return ScanProps(head), err
	}
	var err error
	if l.spool, err = newSpool(ctx, l.opt.TempDir, l.dump, l.log); err != nil {
		return Props{}, err
	}
	return restoreProps(ctx, l.bin, l.spool.path, l.env)
}

// create makes the database to load into, like the dump's where the dump
// says: its encoding and locale, and its owner where that role exists.
// A locale this system lacks falls back to the cluster's default, logged.
func (l *load) create(ctx context.Context, db string, p Props) error {
	owner := ""
	if p.Owner != "" && !l.opt.SkipRoles {
		ok, err := roleExists(ctx, l.maint, p.Owner)
		switch {
		case err != nil:
			return fmt.Errorf("looking up role %q: %w", p.Owner, err)
		case ok:
			owner = p.Owner
		default:
			l.log.Warn(fmt.Sprintf("the dump's database was owned by role %s, which does not exist here: database %s belongs to the user loading it", p.Owner, l.target),
				"database", l.target)
		}
	}
	err := createDatabase(ctx, l.maint, db, p.createOptions(owner))
	if err != nil && (p.Locale != "" || p.Collate != "" || p.Ctype != "" || p.ICULocale != "") {
		l.log.Warn(fmt.Sprintf("creating database %s with the dump's %s failed (%v); using encoding %s with locale C instead", l.target, p.Describe(), err, p.Encoding),
			"database", l.target)
		p = Props{Encoding: p.Encoding, Locale: "C"}
		err = createDatabase(ctx, l.maint, db, p.createOptions(owner))
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", db, err)
	}
	l.res.Props = p
	l.log.Info(fmt.Sprintf("created database %s with %s", db, p.Describe()), "database", l.target)
	return nil
}

// loadInto runs psql or pg_restore against db.
func (l *load) loadInto(ctx context.Context, db string) error {
	conn, err := withDatabase(l.conn, db)
	if err != nil {
		return err
	}
	if l.res.Format != dumpcheck.FormatPlain {
		return runPgRestore(ctx, l.bin, conn, l.spool.path, l.opt.Jobs, l.opt.SkipRoles, l.env)
	}
	rw := newRewriter(l.dump, l.opt.SourceDB, db)
	rw.skipRoles = l.opt.SkipRoles
	if pgbin.SupportsRestrict(l.bin) {
		rw.restrict = rand.Text()
	} else {
		l.log.Warn("this psql has no \\restrict (PostgreSQL 17.6, 16.10, 15.14 and later have it): meta-commands are refused by pgarchive alone", "psql", l.bin)
	}
	if err := loadStream(ctx, l.bin, conn, l.env, rw); err != nil {
		return err
	}
	if rw.created != "" && l.opt.SourceDB != "" && rw.created != l.opt.SourceDB {
		l.log.Warn("the dump is of another database than expected", "dump", rw.created, "expected", l.opt.SourceDB)
	}
	return nil
}

func (l *load) sanitize(ctx context.Context) error {
	if l.opt.Sanitize == "" {
		return nil
	}
	stderr := &headTail{max: 4096}
	cmd := toolCommand(ctx, psqlBin(l.bin, l.opt.PgBin), psqlArgs(l.conn, l.opt.Sanitize), l.env, stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sanitize script %s failed on database %q (%s); the restored data stays loaded and is NOT sanitized",
			l.opt.Sanitize, l.target, toolMessage(err, stderr))
	}
	l.log.Info("sanitize script applied", "database", l.target, "script", l.opt.Sanitize)
	return nil
}

// psqlBin finds psql for the sanitize script when the load used pg_restore.
func psqlBin(loader, dir string) string {
	if filepath.Base(loader) == "psql" {
		return loader
	}
	if p, err := pgbin.Find(dir, "psql"); err == nil {
		return p
	}
	return "psql"
}

// afterFailure drops the database the failed load created and says what
// state the target is in.
func (l *load) afterFailure(ctx context.Context, work string) string {
	if work == l.target && l.exists {
		return "; it is unchanged: the load ran in one transaction"
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := dropDatabase(cctx, l.maint, work); err != nil {
		l.log.Error("could not drop the database created for the failed load", "database", work, "err", err)
		return fmt.Sprintf("; database %s was created for this load, and dropping it again failed: %v", work, err)
	}
	if work != l.target {
		return fmt.Sprintf("; database %s is unchanged (the load went into a new database, %s, now dropped again)", l.target, work)
	}
	return "; the database was created for this load and has been dropped again"
}

// loadStream feeds the rewritten dump to psql. If the dump cannot be read
// to its end, psql is killed instead of seeing end of input, which it would
// take as the end of the script and COMMIT the half it got. When ctx is
// cancelled it returns at once; a dump Read in progress finishes later,
// unseen.
func loadStream(ctx context.Context, psql, conn string, env []string, rw *rewriter) error {
	stderr := &headTail{max: 4096}
	cmd := toolCommand(ctx, psql, psqlArgs(conn, "-"), env, stderr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start psql: %w", err)
	}
	// Copy in a goroutine: a dump Read that blocks (a stalled download)
	// must not keep Load from returning when ctx is cancelled.
	w := &errWriter{w: stdin}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, rw)
		copied <- err
	}()
	var readErr error
	select {
	case <-ctx.Done(): // CommandContext kills psql
		stdin.Close()
		_ = cmd.Wait()
		return ctx.Err()
	case err := <-copied:
		readErr = err
	}
	if w.err != nil {
		readErr = nil // psql stopped reading; its own message says why
	} else if readErr == nil && !rw.Complete() {
		readErr = errors.New("the dump ends early: pg_dump's final \"" + completeMarker + "\" line is missing")
	}
	if readErr != nil {
		_ = cmd.Process.Kill()
	}
	stdin.Close()
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case readErr != nil:
		return fmt.Errorf("reading the dump: %w", readErr)
	case waitErr != nil || w.err != nil:
		return fmt.Errorf("psql: %s", toolMessage(waitErr, stderr))
	}
	return nil
}

// toolCommand runs psql or pg_restore.
func toolCommand(ctx context.Context, bin string, args, env []string, stderr io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	// Its own process group: a Ctrl-C on the terminal reaches pgarchive,
	// which then cancels the load and cleans up, instead of the tool dying
	// first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// peek returns up to n bytes of r's beginning without consuming them. A
// read that blocks (a stalled download) does not keep it from returning
// when ctx ends; the read finishes later, unseen. A dump shorter than n is
// no error here: the load judges it.
func peek(ctx context.Context, r *bufio.Reader, n int) ([]byte, error) {
	type peeked struct {
		b   []byte
		err error
	}
	done := make(chan peeked, 1)
	go func() {
		b, err := r.Peek(n)
		done <- peeked{b, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case p := <-done:
		if p.err != nil && !errors.Is(p.err, io.EOF) && !errors.Is(p.err, bufio.ErrBufferFull) && len(p.b) < n {
			return p.b, fmt.Errorf("reading the dump: %w", p.err)
		}
		return p.b, nil
	}
}

// countingReader counts atomically: after a cancelled load, a Read may
// still be running while Load reports the count.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// errWriter remembers a failed write, to tell psql going away from the
// dump failing.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
