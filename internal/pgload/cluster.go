package pgload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgarchive/pgarchive/internal/pgbin"
)

// A pg_dumpall dump is the cluster's global objects (roles, their
// settings and memberships, tablespaces), then one section per database,
// each begun by pg_dumpall's header comment and holding that database's
// pg_dump: with CREATE DATABASE for every database but template1 and
// postgres, which it \connects to instead.

// Section is one database's part of a pg_dumpall dump.
type Section struct {
	Database string
	Offset   int64 // of the section's first byte in the dump
	Length   int64
}

// ClusterLayout is where the parts of a pg_dumpall dump are.
type ClusterLayout struct {
	Globals  int64 // length of the global part, from the start
	Sections []Section
}

var sectionHeader = regexp.MustCompile(`^-- Database "(.*)" dump$`)

// ScanCluster finds the sections of a pg_dumpall dump. A header counts
// only outside COPY data, and only as pg_dumpall writes it: a "--" line,
// `-- Database "NAME" dump`, a "--" line.
func ScanCluster(r io.Reader) (ClusterLayout, error) {
	type seen struct {
		text string
		off  int64
		data bool // inside COPY data
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var (
		lay          ClusterLayout
		off          int64
		inCopy       bool
		prev1, prev2 seen
	)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			l := strings.TrimRight(line, "\r\n")
			cur := seen{text: l, off: off, data: inCopy}
			switch {
			case inCopy:
				inCopy = l != `\.`
			case strings.HasPrefix(l, "COPY ") && strings.HasSuffix(l, "FROM stdin;"):
				inCopy = true
			case l == "--" && !prev1.data && !prev2.data && prev2.text == "--" && sectionHeader.MatchString(prev1.text):
				if n := len(lay.Sections); n > 0 {
					lay.Sections[n-1].Length = prev2.off - lay.Sections[n-1].Offset
				} else {
					lay.Globals = prev2.off
				}
				lay.Sections = append(lay.Sections, Section{Database: sectionHeader.FindStringSubmatch(prev1.text)[1], Offset: prev2.off})
			}
			prev2, prev1 = prev1, cur
			off += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return lay, err
		}
	}
	if len(lay.Sections) == 0 {
		return lay, errors.New("no database sections found: not a pg_dumpall dump")
	}
	last := &lay.Sections[len(lay.Sections)-1]
	last.Length = off - last.Offset
	return lay, nil
}

// ClusterOptions tune LoadCluster.
type ClusterOptions struct {
	// Force replaces databases that exist and are not empty; without it
	// the load is refused before anything changed.
	Force   bool
	PgBin   string
	TempDir string
	Log     *slog.Logger
	Archive string
	// Only, if set, loads just this database's section, into the database
	// the connection string names (see LoadOne).
	Only string
}

// ClusterResult says what LoadCluster did.
type ClusterResult struct {
	Databases    []string // loaded
	Skipped      []string // sections not loaded, with why
	RolesCreated []string
	RolesKept    []string // existed already: not touched
}

// LoadCluster restores a pg_dumpall dump into the server that connString
// (its maintenance database) points at: roles that do not exist yet, then
// every database but template1 (template0 is never dumped), each as Load
// loads one. It refuses, before changing anything, when a database it
// would load exists and is not empty, unless Force. The dump is spooled
// privately first, to find its databases before loading any.
func LoadCluster(ctx context.Context, connString string, dump io.Reader, opt ClusterOptions) (ClusterResult, error) {
	var res ClusterResult
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	what := opt.Archive
	if what == "" {
		what = "the dump"
	}
	sp, err := newSpool(ctx, opt.TempDir, dump, log)
	if err != nil {
		return res, err
	}
	defer sp.remove()
	f, err := os.Open(sp.path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	lay, err := ScanCluster(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return res, fmt.Errorf("target connection string: %w", err)
	}
	conn, password, err := stripPassword(connString)
	if err != nil {
		return res, fmt.Errorf("target connection string: %w", err)
	}
	maint, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("connect to %s: %w", cfg.Database, err)
	}
	defer maint.Close(context.WithoutCancel(ctx))

	load, skipped, err := planCluster(ctx, maint, cfg, lay.Sections, opt.Force, what)
	res.Skipped = skipped
	if err != nil {
		return res, err
	}
	created, kept, err := loadGlobals(ctx, maint, conn, password, io.NewSectionReader(f, 0, lay.Globals), opt.PgBin)
	res.RolesCreated, res.RolesKept = created, kept
	if err != nil {
		return res, fmt.Errorf("%s: loading roles: %w", what, err)
	}
	if len(kept) > 0 {
		log.Info(fmt.Sprintf("roles that exist already were kept as they are: %s", strings.Join(kept, ", ")))
	}
	for _, s := range load {
		dbConn, err := withDatabase(conn, s.Database)
		if err != nil {
			return res, err
		}
		if password != "" {
			dbConn += " password=" + quoteConnValue(password)
		}
		_, err = Load(ctx, dbConn, io.NewSectionReader(f, s.Offset, s.Length), Options{
			SourceDB: s.Database, Force: opt.Force, PgBin: opt.PgBin, TempDir: opt.TempDir, Log: log,
			Archive: fmt.Sprintf("%s (database %s)", what, s.Database)})
		if err != nil {
			return res, fmt.Errorf("%w; loaded before it: %s", err, listOrNone(res.Databases))
		}
		res.Databases = append(res.Databases, s.Database)
	}
	return res, nil
}

// planCluster picks the sections to load (every database but template1)
// and refuses, before anything changes, when one of them exists and is
// not empty, unless force.
func planCluster(ctx context.Context, maint *pgx.Conn, cfg *pgx.ConnConfig, sections []Section, force bool, what string) (load []Section, skipped []string, err error) {
	var busy []string
	for _, s := range sections {
		if s.Database == "template1" {
			skipped = append(skipped, "template1 (new databases are copied from it; restore it by hand if it held anything)")
			continue
		}
		load = append(load, s)
		exists, err := databaseExists(ctx, maint, s.Database)
		if err != nil {
			return nil, skipped, err
		}
		if !exists {
			continue
		}
		has, err := contents(ctx, cfg, s.Database)
		if err != nil {
			return nil, skipped, fmt.Errorf("database %q: checking it is empty: %w", s.Database, err)
		}
		if has != "" {
			busy = append(busy, fmt.Sprintf("%s (%s)", s.Database, has))
		}
	}
	if len(busy) > 0 && !force {
		return nil, skipped, fmt.Errorf("%s would replace databases that are not empty: %s; pass --force to replace them (each only once its new data loaded)", what, strings.Join(busy, ", "))
	}
	return load, skipped, nil
}

// LoadOne loads one database's section of a pg_dumpall dump into the
// database connString names, as Load loads a pg_dump. Roles are not
// created: ownership needs them to exist (else SkipRoles).
func LoadOne(ctx context.Context, connString string, dump io.Reader, only string, opt Options) (Result, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sp, err := newSpool(ctx, opt.TempDir, dump, log)
	if err != nil {
		return Result{}, err
	}
	defer sp.remove()
	f, err := os.Open(sp.path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	lay, err := ScanCluster(f)
	if err != nil {
		return Result{}, err
	}
	var names []string
	for _, s := range lay.Sections {
		if s.Database == only {
			opt.SourceDB = only
			return Load(ctx, connString, io.NewSectionReader(f, s.Offset, s.Length), opt)
		}
		names = append(names, s.Database)
	}
	sort.Strings(names)
	return Result{}, fmt.Errorf("the pg_dumpall dump has no database %q (it has %s)", only, strings.Join(names, ", "))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

var (
	createRoleRe = regexp.MustCompile(`^CREATE ROLE ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$`)
	alterRoleRe  = regexp.MustCompile(`^ALTER ROLE ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (WITH|SET|IN DATABASE) `)
)

// loadGlobals runs the global part of the dump with psql in one
// transaction, leaving out the CREATE ROLE and ALTER ROLE statements of
// roles that exist: they are kept as they are. Of psql meta-commands only
// pg_dumpall's own \restrict and \unrestrict pass; others are refused.
func loadGlobals(ctx context.Context, maint *pgx.Conn, conn, password string, globals io.Reader, pgBin string) (created, kept []string, err error) {
	psql, err := pgbin.Find(pgBin, "psql")
	if err != nil {
		return nil, nil, err
	}
	exists := map[string]bool{}
	rows, err := maint.Query(ctx, "SELECT rolname FROM pg_roles")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		exists[n] = true
	}
	rows.Close()
	var b strings.Builder
	sc := bufio.NewScanner(globals)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, `\`) {
			if !strings.HasPrefix(line, `\restrict `) && !strings.HasPrefix(line, `\unrestrict `) {
				return created, kept, fmt.Errorf("refused: line %d: psql meta-command %q (pg_dumpall writes no such command): %w", n, strings.Fields(line)[0], ErrMetaCommand)
			}
		}
		if m := createRoleRe.FindStringSubmatch(line); m != nil {
			role := unquoteIdent(m[1])
			if exists[role] {
				kept = append(kept, role)
				seen[role] = true
				continue
			}
			created = append(created, role)
		}
		if m := alterRoleRe.FindStringSubmatch(line); m != nil && seen[unquoteIdent(m[1])] {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return created, kept, err
	}
	stderr := &headTail{max: 4096}
	cmd := toolCommand(ctx, psql, psqlArgs(conn, "-"), psqlEnv(password), stderr)
	cmd.Stdin = strings.NewReader(b.String())
	if err := cmd.Run(); err != nil {
		return nil, kept, fmt.Errorf("psql: %s", toolMessage(err, stderr))
	}
	return created, kept, nil
}
