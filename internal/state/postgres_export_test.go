package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Test hooks for the PostgreSQL store, shared by package state and state_test.

// PostgresSkipMessage is what the PostgreSQL tests say when they skip.
const PostgresSkipMessage = "set RULESD_TEST_POSTGRES_DSN to run the PostgreSQL store tests"

// PostgresTestDSN returns $RULESD_TEST_POSTGRES_DSN. Without it the test skips, or
// fails when RULESD_REQUIRE_POSTGRES=1 (CI), so that CI cannot pass by skipping.
func PostgresTestDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("RULESD_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("RULESD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("RULESD_REQUIRE_POSTGRES=1 but RULESD_TEST_POSTGRES_DSN is not set: " + PostgresSkipMessage)
		}
		t.Skip(PostgresSkipMessage)
	}
	return dsn
}

// PostgresTestSchema creates a new, empty schema in the database of dsn, drops it
// (with everything in it) when t ends, and returns dsn with search_path set to it:
// every test gets a database of its own, and runs never see each other's tables.
func PostgresTestSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "rulesd_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to RULESD_TEST_POSTGRES_DSN: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(dsn, schema)
}

// withSearchPath sets search_path in a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

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
