package state

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go driver "sqlite": no cgo, so the binary stays static
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// SQLite is the embedded Store: one database file, one writing process (SPEC 10; the
// Kubernetes Deployment uses the Recreate strategy).
//
// It holds two connection pools on the file. All writes go through the writer pool,
// limited to one connection: SQLite allows one writer at a time anyway, and queueing
// writers in Go rather than in SQLite's busy handler keeps them in order and never
// fails a write with SQLITE_BUSY inside the process. Its transactions begin
// IMMEDIATE, taking the write lock up front, so a transaction that reads then writes
// cannot deadlock with another process on the same file. Reads go through a
// read-only pool of several connections, which WAL mode lets run beside the writer,
// so a long audit query from the status page never delays a write batch.
type SQLite struct {
	w *sql.DB // writes; one connection
	r *sql.DB // reads; query_only; the same pool as w for an in-memory database
}

var _ Store = (*SQLite)(nil)

// sqliteDefaults are the connection settings rulesd relies on; a DSN may override any
// of them. synchronous=FULL because an intent must be on disk before its write is
// sent, even if the machine loses power right after.
var sqliteDefaults = [][2]string{
	{"_busy_timeout", "10000"}, // ms: another process (a second replica, a backup) may hold the lock briefly
	{"_journal_mode", "WAL"},
	{"_synchronous", "FULL"},
	{"_foreign_keys", "1"},
}

// OpenSQLite opens (creating it if needed) the SQLite database at dsn — a file path,
// or a "file:" URI, optionally with modernc.org/sqlite query parameters — and brings
// its schema up to date. ":memory:" gives a private in-memory database (tests).
func OpenSQLite(ctx context.Context, dsn string) (*SQLite, error) {
	if dsn == "" {
		return nil, errors.New("open sqlite: empty dsn")
	}
	ms, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	memory := dsn == ":memory:" || strings.Contains(dsn, "mode=memory")

	w, err := sql.Open("sqlite", sqliteDSN(dsn, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0) // an in-memory database lives as long as its one connection
	s := &SQLite{w: w, r: w}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	if err := migrateSQLite(ctx, w, ms); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	if !memory {
		r, err := sql.Open("sqlite", sqliteDSN(dsn, true))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		s.r = r
	}
	return s, nil
}

// sqliteDSN adds rulesd's settings to dsn, without overriding any the DSN gives.
func sqliteDSN(dsn string, readOnly bool) string {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		// Leave a malformed query to the driver, which reports it on open.
		return dsn
	}
	for _, kv := range sqliteDefaults {
		if !q.Has(kv[0]) {
			q.Set(kv[0], kv[1])
		}
	}
	if readOnly {
		q.Set("_query_only", "1")
		q.Del("_journal_mode") // already set by the writer; changing it needs a write
	} else if !q.Has("_txlock") {
		q.Set("_txlock", "immediate")
	}
	return base + "?" + q.Encode()
}

// Ping reports whether both pools answer a query.
func (s *SQLite) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.r, s.w} {
		var one int
		if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			return fmt.Errorf("ping sqlite: %w", err)
		}
	}
	return nil
}

// Close closes both pools.
func (s *SQLite) Close() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// SchemaVersion returns the schema version of the database, for logs and tests.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.r)
}

// inTx runs fn in a write transaction and commits it when fn returns nil. what names
// the operation in errors.
func (s *SQLite) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// exec runs one write statement outside an explicit transaction and returns the rows
// it affected.
func (s *SQLite) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// ns encodes t as unix nanoseconds, and the zero time as NULL.
func ns(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return unixNano(t)
}

// Bounds of the times unix nanoseconds can hold (years 1678 to 2262).
var (
	minNS = time.Unix(0, math.MinInt64)
	maxNS = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano clamped to the range it can represent, so a cutoff of the
// zero time or an "until" far in the future still compares correctly.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minNS):
		return math.MinInt64
	case t.After(maxNS):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// jsonIDs encodes ids as a JSON array, to pass a whole list as one parameter to
// json_each: one statement for any number of objects, with no limit on host
// parameters and no SQL built from strings.
func jsonIDs(ids []string) string {
	b, _ := json.Marshal(ids) // a []string always marshals
	return string(b)
}

// boolInt stores a flag as SQLite's integer boolean.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errRequired reports a missing required field of a record.
func errRequired(field string) error {
	return fmt.Errorf("%s is required", field)
}
