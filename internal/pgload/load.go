// Package pgload loads a plain-SQL pg_dump stream into a database of the
// caller's choosing, with psql, in one transaction: the dump's own
// CREATE DATABASE and \connect lines are taken out and its database-level
// statements pointed at the target (see NewRewriter).
package pgload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgarchive/pgarchive/internal/pgbin"
)

// Options tune Load.
type Options struct {
	SourceDB string // database the dump was taken of (the dump's CREATE DATABASE wins)
	Force    bool   // drop and recreate a target that is not empty
	Sanitize string // SQL file run on the target after the load, "" for none
	// SkipRoles leaves out what names roles (ALTER ... OWNER TO, GRANT,
	// REVOKE, ALTER DEFAULT PRIVILEGES, ALTER ROLE ... IN DATABASE, SET
	// SESSION AUTHORIZATION), like pg_restore --no-owner --no-privileges:
	// for a cluster without the dump's roles, such as a drill's scratch
	// cluster. Everything then belongs to the user Load connects as.
	SkipRoles bool
	PgBin     string       // directory of psql, "" to search (see pgbin.Find)
	Log       *slog.Logger // nil: silent
	// Archive names the archive being loaded, for error messages.
	Archive string
}

// Result describes a successful load.
type Result struct {
	Database string // the target
	Created  bool   // the target did not exist before
	Bytes    int64  // plain SQL read from the dump
}

// Load streams dump into the database connString names (a libpq URL or
// keyword/value string), creating it if needed. A target that holds
// anything is only replaced with Force. When the load fails nothing of it
// stays: it runs in one transaction, and a database Load created is dropped
// again. A database "all" (pg_dumpall) is the caller's to refuse.
func Load(ctx context.Context, connString string, dump io.Reader, opt Options) (Result, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return Result{}, fmt.Errorf("target connection string: %w", err)
	}
	target := cfg.Database
	res := Result{Database: target}
	switch target {
	case "":
		return res, errors.New("the target connection string names no database (dbname=...)")
	case "template0", "template1":
		return res, fmt.Errorf("refusing to load a dump into %s: new databases are copied from it", target)
	}
	psql, err := pgbin.Find(opt.PgBin, "psql")
	if err != nil {
		return res, err
	}
	if opt.Sanitize != "" {
		if err := readable(opt.Sanitize); err != nil {
			return res, fmt.Errorf("sanitize script: %w", err)
		}
	}
	psqlConn, password, err := stripPassword(connString)
	if err != nil {
		return res, fmt.Errorf("target connection string: %w", err)
	}
	env := psqlEnv(password)

	maint, err := connectMaintenance(ctx, cfg, target)
	if err != nil {
		return res, err
	}
	defer maint.Close(context.WithoutCancel(ctx))
	if err := prepareTarget(ctx, log, cfg, maint, target, opt.Force, &res); err != nil {
		return res, err
	}

	start := time.Now()
	log.Info("loading dump", "database", target, "source", opt.SourceDB, "created", res.Created)
	counted := &countingReader{r: dump}
	rw := newRewriter(counted, opt.SourceDB, target)
	rw.skipRoles = opt.SkipRoles
	if pgbin.SupportsRestrict(psql) {
		rw.restrict = rand.Text()
	} else {
		log.Warn("this psql has no \\restrict (PostgreSQL 17.6, 16.10, 15.14 and later have it): meta-commands are refused by pgarchive alone", "psql", psql)
	}
	err = loadStream(ctx, psql, psqlConn, env, rw)
	res.Bytes = counted.n.Load()
	if err != nil {
		what := "the dump"
		if opt.Archive != "" {
			what = opt.Archive
		}
		return res, fmt.Errorf("loading %s into database %q: %w%s", what, target, err,
			afterFailure(ctx, log, maint, target, res.Created, opt.Force))
	}
	if rw.created != "" && opt.SourceDB != "" && rw.created != opt.SourceDB {
		log.Warn("the dump is of another database than expected", "dump", rw.created, "expected", opt.SourceDB)
	}
	log.Info("dump loaded", "database", target, "bytes", res.Bytes, "seconds", time.Since(start).Seconds())

	if opt.Sanitize != "" {
		var stderr tail
		stderr.max = 4096
		cmd := psqlCommand(ctx, psql, psqlArgs(psqlConn, opt.Sanitize), env, &stderr)
		if err := cmd.Run(); err != nil {
			return res, fmt.Errorf("sanitize script %s failed on database %q (%s); the restored data stays loaded and is NOT sanitized",
				opt.Sanitize, target, psqlMessage(err, &stderr))
		}
		log.Info("sanitize script applied", "database", target, "script", opt.Sanitize)
	}
	return res, nil
}

// prepareTarget makes sure the target exists and is empty.
func prepareTarget(ctx context.Context, log *slog.Logger, cfg *pgx.ConnConfig, maint *pgx.Conn, target string, force bool, res *Result) error {
	exists, err := databaseExists(ctx, maint, target)
	if err != nil {
		return fmt.Errorf("database %q: %w", target, err)
	}
	if exists {
		what, err := contents(ctx, cfg, target)
		if err != nil {
			return fmt.Errorf("database %q: checking it is empty: %w", target, err)
		}
		if what == "" {
			return nil
		}
		if !force {
			return fmt.Errorf("database %q is not empty (%s); pass --force to drop and recreate it", target, what)
		}
		log.Warn("dropping and recreating the target database (--force)", "database", target, "had", what)
		if err := dropDatabase(ctx, maint, target); err != nil {
			return fmt.Errorf("--force: drop database %q: %w", target, err)
		}
	}
	if err := createDatabase(ctx, maint, target); err != nil {
		return fmt.Errorf("create database %q: %w", target, err)
	}
	res.Created = !exists
	return nil
}

// afterFailure cleans up after a failed load and says what state the
// target is in now.
func afterFailure(ctx context.Context, log *slog.Logger, maint *pgx.Conn, target string, created, force bool) string {
	switch {
	case created:
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := dropDatabase(cctx, maint, target); err != nil {
			log.Error("could not drop the database created for the failed load", "database", target, "err", err)
			return fmt.Sprintf("; it was created for this load, and dropping it again failed: %v", err)
		}
		return "; the database was created for this load and has been dropped again"
	case force:
		return "; it had been dropped and recreated (--force) and is now empty: the load ran in one transaction"
	default:
		return "; it is unchanged: the load ran in one transaction"
	}
}

// loadStream feeds the rewritten dump to psql. If the dump cannot be read
// to its end, psql is killed instead of seeing end of input, which it would
// take as the end of the script and COMMIT the half it got. When ctx is
// cancelled it returns at once; a dump Read in progress finishes later,
// unseen.
func loadStream(ctx context.Context, psql, conn string, env []string, rw *rewriter) error {
	stderr := &tail{max: 4096}
	cmd := psqlCommand(ctx, psql, psqlArgs(conn, "-"), env, stderr)
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
		return fmt.Errorf("psql: %s", psqlMessage(waitErr, stderr))
	}
	return nil
}

func psqlCommand(ctx context.Context, psql string, args, env []string, stderr io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, psql, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	// Its own process group: a Ctrl-C on the terminal reaches pgarchive,
	// which then cancels the load and cleans up, instead of psql dying first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func psqlMessage(err error, stderr *tail) string {
	if s := stderr.String(); s != "" {
		return s
	}
	if err == nil {
		return "psql stopped reading its input"
	}
	return err.Error()
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
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
