package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Check is one query whose first column of the first row must meet Expect.
type Check struct {
	Query  string `json:"query"`
	Expect string `json:"expect"`
}

// AllDatabases is the key of checks that apply to every database.
const AllDatabases = "*"

// maxFileSize bounds what LoadFile reads: a checks file is hand-written.
const maxFileSize = 4 << 20

// LoadFile reads {"db1": [{"query": "...", "expect": ">= 1000"}], "*": [...]}.
// It is strict (unknown fields, duplicate databases, trailing data and
// unparsable expectations are errors) so a mistake fails before a drill
// spends an hour restoring, not after.
func LoadFile(path string) (map[string][]Check, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checks file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("checks file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("checks file %s: larger than %d bytes", path, maxFileSize)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("checks file %s: %w", path, err)
	}
	return m, nil
}

func parse(data []byte) (map[string][]Check, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New(`want a JSON object {"<database>": [{"query": ..., "expect": ...}], "*": [...]}`)
	}
	m := map[string][]Check{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		db := tok.(string) // object keys are always strings
		if _, dup := m[db]; dup {
			return nil, fmt.Errorf("database %q appears twice", db)
		}
		if db == "" {
			return nil, errors.New(`empty database name (use "*" for every database)`)
		}
		var cs []Check
		if err := dec.Decode(&cs); err != nil {
			return nil, fmt.Errorf("database %q: %w", db, err)
		}
		for i, c := range cs {
			if strings.TrimSpace(c.Query) == "" {
				return nil, fmt.Errorf("database %q: check %d has no query", db, i+1)
			}
			if _, err := ParseExpect(c.Expect); err != nil {
				return nil, fmt.Errorf("database %q: check %d: %w", db, i+1, err)
			}
		}
		m[db] = cs
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return m, nil
}

// For returns the checks for db: those under "*" first, then db's own.
func For(m map[string][]Check, db string) []Check {
	var out []Check
	out = append(out, m[AllDatabases]...)
	if db != AllDatabases {
		out = append(out, m[db]...)
	}
	return out
}

// Result is the outcome of one check; Err is nil when it passed.
type Result struct {
	Check
	Got string
	Err error
}

// Run runs every check on the database connString names, each in its own
// read-only transaction that is rolled back: a check must not change what
// it inspects, and one failing query must not abort the others.
func Run(ctx context.Context, connString string, cs []Check) []Result {
	res := make([]Result, len(cs))
	for i, c := range cs {
		res[i].Check = c
	}
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		for i := range res {
			res[i].Err = fmt.Errorf("connect: %w", err)
		}
		return res
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for i := range res {
		res[i].Got, res[i].Err = runOne(ctx, conn, res[i].Check)
	}
	return res
}

func runOne(ctx context.Context, conn *pgx.Conn, c Check) (string, error) {
	e, err := ParseExpect(c.Expect)
	if err != nil {
		return "", err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	got, err := firstValue(ctx, tx, c.Query)
	if err != nil {
		return "", err
	}
	return got, e.Check(got)
}

// firstValue renders the first column of the first row the way psql shows
// it: QueryExecModeExec asks the server for text, which is also what a
// user writing the expectation sees (t/f for booleans, no float rounding).
func firstValue(ctx context.Context, tx pgx.Tx, query string) (string, error) {
	rows, err := tx.Query(ctx, query, pgx.QueryExecModeExec)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", err
		}
		return "", errors.New("query returned no rows")
	}
	vals := rows.RawValues()
	if len(vals) == 0 {
		return "", errors.New("query returned no columns")
	}
	got := "NULL"
	if vals[0] != nil {
		got = string(vals[0])
	}
	rows.Close()
	return got, rows.Err()
}
