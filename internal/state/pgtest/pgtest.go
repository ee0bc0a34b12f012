// Package pgtest gives tests a PostgreSQL database of their own: the DSN of
// $RULESD_TEST_POSTGRES_DSN, skipping without it (failing in CI, where
// RULESD_REQUIRE_POSTGRES=1), and a fresh schema per test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SkipMessage is what the PostgreSQL tests say when they skip.
const SkipMessage = "set RULESD_TEST_POSTGRES_DSN to run the PostgreSQL store tests"

// DSN returns $RULESD_TEST_POSTGRES_DSN. Without it the test skips, or
// fails when RULESD_REQUIRE_POSTGRES=1 (CI), so that CI cannot pass by skipping.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("RULESD_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("RULESD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("RULESD_REQUIRE_POSTGRES=1 but RULESD_TEST_POSTGRES_DSN is not set: " + SkipMessage)
		}
		t.Skip(SkipMessage)
	}
	return dsn
}

// Schema creates a new, empty schema in the database of dsn, drops it
// (with everything in it) when t ends, and returns dsn with search_path set to it:
// every test gets a database of its own, and runs never see each other's tables.
func Schema(t testing.TB, dsn string) string {
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
