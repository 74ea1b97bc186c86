package pgload

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

func createDatabase(ctx context.Context, conn *pgx.Conn, db string) error {
	// template0: template1 may hold local additions that would clash with
	// the dump's objects.
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" TEMPLATE template0")
	return err
}

// dropDatabase also ends other sessions (WITH FORCE, PostgreSQL 13+): after
// a failed load psql's backend may not have noticed yet that psql is gone.
func dropDatabase(ctx context.Context, conn *pgx.Conn, db string) error {
	_, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}
