package state

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// Postgres is the Store for several replicas sharing one PostgreSQL database (SPEC
// 10). Every replica opens its own pool on the same database; the per-tick leases
// (TryAcquire) make sure exactly one of them runs each (group, account) per tick,
// and everything else — pending state, cooldowns, history, intents, audit, the kill
// switch — is shared through the tables.
//
// Times are stored as unix nanoseconds and values as the same two columns as in
// SQLite, so both backends keep exactly the same promises (package statetest).
// Statements run through a pgxpool connection pool; nothing relies on session state
// (no session advisory lock, no temporary table), so any pooled connection will do.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the PostgreSQL database named by dsn — a URL
// (postgres://user:password@host:5432/rulesd?sslmode=verify-full) or a keyword/value
// string (host=… dbname=…), with any pgx or pgxpool setting such as pool_max_conns
// or search_path — and brings its schema up to date. Several replicas may open the
// same database at once: migrations are serialised by an advisory lock.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	if dsn == "" {
		return nil, errors.New("open postgres: empty dsn")
	}
	ms, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors redact the password of the DSN they quote.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "rulesd"
	}
	where := pgWhere(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	if err := migratePostgres(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	return &Postgres{pool: pool}, nil
}

// pgWhere names the database of cfg for errors, without its password.
func pgWhere(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Ping reports whether the database answers a query.
func (s *Postgres) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes the pool. pgxpool waits for acquired connections to be released.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// SchemaVersion returns the schema version of the database, for logs and tests.
func (s *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	return pgSchemaVersion(ctx, s.pool)
}

// inTx runs fn in a transaction (READ COMMITTED, PostgreSQL's default) and commits it
// when fn returns nil. what names the operation in errors. A transaction that
// PostgreSQL aborts to break a deadlock (two replicas updating the same rows in
// different orders) has changed nothing, so it is run again, up to pgTxAttempts
// times: fn must be safe to run more than once.
func (s *Postgres) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx(ctx, fn)
		if err == nil {
			return nil
		}
		if attempt == pgTxAttempts || !pgRetryable(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		// A short random pause lets the transaction that won go first, rather than
		// racing it for the same rows again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		}
	}
}

// pgTxAttempts bounds the runs of one transaction that PostgreSQL keeps aborting.
const pgTxAttempts = 3

func (s *Postgres) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// pgRetryable reports whether err is PostgreSQL aborting a transaction that may
// succeed when run again: deadlock_detected or serialization_failure.
func pgRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// exec runs one write statement outside an explicit transaction and returns the rows
// it affected.
func (s *Postgres) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}

// sendBatch queues one statement per item through tx as a pipeline (one round trip
// for the whole list rather than one per item) and checks every result in order.
// stmt returns the statement and arguments of item i, or an error that aborts the
// batch before anything is sent; scan reads the result of item i.
func sendBatch(ctx context.Context, tx pgx.Tx, n int, stmt func(i int) (string, []any, error), scan func(i int, br pgx.BatchResults) error) error {
	b := &pgx.Batch{}
	for i := range n {
		q, args, err := stmt(i)
		if err != nil {
			return err
		}
		b.Queue(q, args...)
	}
	br := tx.SendBatch(ctx, b)
	for i := range n {
		if err := scan(i, br); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}
