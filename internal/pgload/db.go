package pgload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connectMaintenance connects to a database other than the target, from
// which the target can be created and dropped: postgres, or template1 on
// clusters without one.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig, target string) (*pgx.Conn, error) {
	var errs []error
	for _, db := range []string{"postgres", "template1"} {
		if db == target {
			continue
		}
		c := cfg.Copy()
		c.Database = db
		conn, err := pgx.ConnectConfig(ctx, c)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // only "database does not exist" is worth another try
			break
		}
	}
	return nil, fmt.Errorf("connect to the maintenance database: %w", errors.Join(errs...))
}

func databaseExists(ctx context.Context, conn *pgx.Conn, db string) (bool, error) {
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n)
	return n > 0, err
}

// contentsQuery counts what a freshly created database does not have.
// System schemas all start with pg_ (user schemas cannot) or are
// information_schema; the row types of tables and the array types of
// other types come with them and are not counted twice.
const contentsQuery = `
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema')
SELECT
  (SELECT count(*) FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns)),
  (SELECT count(*) FROM pg_type t WHERE typnamespace IN (SELECT oid FROM ns) AND typrelid = 0
     AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)),
  (SELECT count(*) FROM pg_proc WHERE pronamespace IN (SELECT oid FROM ns)),
  (SELECT count(*) FROM pg_namespace WHERE oid IN (SELECT oid FROM ns) AND nspname <> 'public'),
  (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'),
  (SELECT count(*) FROM pg_largeobject_metadata)`

// contents describes what db holds, "" when it is as empty as a new database.
func contents(ctx context.Context, cfg *pgx.ConnConfig, db string) (string, error) {
	c := cfg.Copy()
	c.Database = db
	conn, err := pgx.ConnectConfig(ctx, c)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n [6]int64
	if err := conn.QueryRow(ctx, contentsQuery).Scan(&n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
		return "", err
	}
	var parts []string
	for i, what := range []string{"relation", "type", "function", "schema", "extension", "large object"} {
		switch {
		case n[i] == 1:
			parts = append(parts, "1 "+what)
		case n[i] > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n[i], what))
		}
	}
	return strings.Join(parts, ", "), nil
}

// createDatabase creates db with options (Props.createOptions: always
// template0, as template1 may hold local additions that would clash with
// the dump's objects).
func createDatabase(ctx context.Context, conn *pgx.Conn, db, options string) error {
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+options)
	return err
}

func roleExists(ctx context.Context, conn *pgx.Conn, role string) (bool, error) {
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n)
	return n > 0, err
}

// workName is a fresh database name beside target: the load goes there
// when target exists, and it takes target's name only once it succeeded.
// PostgreSQL names are at most 63 bytes.
func workName(target string) string {
	suffix := "_pgarchive_" + strings.ToLower(rand.Text()[:8])
	base := target
	for len(base)+len(suffix) > 63 {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + suffix
}

// swapInto gives work the name target, dropping the database that had it:
// connections to the old database are refused from then on and the open
// ones ended (a rename needs it alone), the old one is renamed aside, work
// renamed into place, and the old one dropped. If the rename of work fails,
// the old database gets its name (and connections) back.
func swapInto(ctx context.Context, log *slog.Logger, conn *pgx.Conn, work, target string) error {
	ctx = context.WithoutCancel(ctx) // half a swap is worse than a late signal
	old := workName(target)
	t, o, w := pgx.Identifier{target}.Sanitize(), pgx.Identifier{old}.Sanitize(), pgx.Identifier{work}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+t+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("replacing database %q: %w; it is unchanged, the new data is in database %q", target, err, work)
	}
	allow := func(name string) { conn.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true") }
	var err error
	for try := 0; try < 5; try++ {
		var ended int
		conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", target).Scan(&ended)
		if ended > 0 {
			log.Warn(fmt.Sprintf("ended %d connections to database %s to replace it (--force)", ended, target), "database", target)
		}
		if _, err = conn.Exec(ctx, "ALTER DATABASE "+t+" RENAME TO "+o); err == nil {
			break
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	if err != nil {
		allow(t)
		return fmt.Errorf("replacing database %q: %w; it is unchanged, the new data is in database %q", target, err, work)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+w+" RENAME TO "+t); err != nil {
		if _, rerr := conn.Exec(ctx, "ALTER DATABASE "+o+" RENAME TO "+t); rerr != nil {
			return fmt.Errorf("replacing database %q: %w; the old data is in database %q, the new in %q", target, err, old, work)
		}
		allow(t)
		return fmt.Errorf("replacing database %q: %w; it is unchanged, the new data is in database %q", target, err, work)
	}
	if err := dropDatabase(ctx, conn, old); err != nil {
		log.Error(fmt.Sprintf("database %s now holds the restored data, but dropping the old one, renamed %s, failed: %v", target, old, err), "database", target)
		return nil
	}
	log.Info(fmt.Sprintf("replaced database %s with the restored data; the old one was dropped", target), "database", target)
	return nil
}

// dropDatabase also ends other sessions (WITH FORCE, PostgreSQL 13+): after
// a failed load psql's backend may not have noticed yet that psql is gone.
func dropDatabase(ctx context.Context, conn *pgx.Conn, db string) error {
	_, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}
