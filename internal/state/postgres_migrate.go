package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrationLock is the key of the transaction-level advisory lock that serialises
// migrations: "rulesd" in ASCII. It is database-wide, so two rulesd schemas in one
// database migrate one after the other, which is harmless.
const pgMigrationLock int64 = 0x72756c657364

// migratePostgres brings the database up to the last of ms, each migration in its own
// transaction together with its row in schema_migrations, so that a failing migration
// leaves the database at the previous version. Every transaction first takes
// pg_advisory_xact_lock(pgMigrationLock) and only then reads the version, so replicas
// starting at once apply each migration exactly once: the others wait for the lock,
// then find the migration applied. The lock is transaction-scoped and released by
// commit or rollback, so taking it through the pool is safe (a session-level lock
// would not be: it would stay with whatever connection the pool handed out).
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, ms []migration) error {
	for {
		done, err := applyNextPostgres(ctx, pool, ms)
		if err != nil || done {
			return err
		}
	}
}

// applyNextPostgres applies the first migration of ms the database lacks, and
// reports done when there is none.
func applyNextPostgres(ctx context.Context, pool *pgxpool.Pool, ms []migration) (done bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
		return false, fmt.Errorf("migrate: lock: %w", err)
	}
	// Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can both fail
	// on PostgreSQL's catalog unique indexes.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_ns BIGINT  NOT NULL)`); err != nil {
		return false, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	current, err := pgSchemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	latest := len(ms)
	if current > latest {
		return false, fmt.Errorf("migrate: database schema version %d is newer than this rulesd (%d): refusing to run an older binary on it", current, latest)
	}
	if current < latest {
		m := ms[current] // versions run 1, 2, 3, … (loadMigrations)
		// No arguments: pgx sends it with the simple protocol, which allows a file of
		// several statements; they run inside tx.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return false, fmt.Errorf("migrate %04d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return false, fmt.Errorf("migrate %04d_%s: record version: %w", m.version, m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrate: commit: %w", err)
	}
	return current >= latest, nil
}

// pgQuerier is what a pool, a connection and a transaction share for reads.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgSchemaVersion returns the highest applied migration, 0 for a new database.
func pgSchemaVersion(ctx context.Context, q pgQuerier) (int, error) {
	var v *int
	if err := q.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// errPgNoRows reports whether err is pgx's "no rows in result set".
func errPgNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
