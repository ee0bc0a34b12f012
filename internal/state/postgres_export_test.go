package state

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Test hooks for the PostgreSQL store, shared by package state and state_test.

// PostgresPool returns the pool of s.
func PostgresPool(s *Postgres) *pgxpool.Pool { return s.pool }

// PostgresLatestVersion returns the version of the last embedded PostgreSQL migration.
func PostgresLatestVersion(t testing.TB) int {
	t.Helper()
	ms, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// OpenRawPostgres opens a pool on dsn without migrating, closed when t ends.
func OpenRawPostgres(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// MigratePostgresTo applies the embedded migrations up to version, to build a
// database as an older rulesd left it.
func MigratePostgresTo(t testing.TB, pool *pgxpool.Pool, version int) {
	t.Helper()
	ms, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	if err := migratePostgres(context.Background(), pool, ms[:version]); err != nil {
		t.Fatal(err)
	}
}
