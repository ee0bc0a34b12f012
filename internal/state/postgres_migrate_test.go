package state

import (
	"context"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/state/pgtest"
)

// TestPostgresMigrationRollsBack checks that a failing migration leaves the database
// at the previous version, with nothing of the failed one applied.
func TestPostgresMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	pool := OpenRawPostgres(t, pgtest.Schema(t, pgtest.DSN(t)))
	ms := []migration{
		{1, "good", `CREATE TABLE a (x INTEGER)`},
		{2, "bad", `CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); THIS IS NOT SQL`},
	}
	err := migratePostgres(ctx, pool, ms)
	if err == nil || !strings.Contains(err.Error(), "migrate 0002_bad") {
		t.Fatalf("error = %v, want one naming 0002_bad", err)
	}
	if v, err := pgSchemaVersion(ctx, pool); err != nil || v != 1 {
		t.Fatalf("version %d, %v; want 1", v, err)
	}
	if _, err := pool.Exec(ctx, `SELECT 1 FROM b`); err == nil {
		t.Error("table b of the failed migration exists")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM a`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the failed migration: %d, %v", n, err)
	}
	// Fixed, it applies on the next open.
	ms[1].sql = `CREATE TABLE b (x INTEGER)`
	if err := migratePostgres(ctx, pool, ms); err != nil {
		t.Fatal(err)
	}
	if v, _ := pgSchemaVersion(ctx, pool); v != 2 {
		t.Errorf("version %d after the fix, want 2", v)
	}
}

// TestPostgresMigrationsMatchSQLite checks that both backends have the same schema
// versions, with the same names: a migration added to one must be added to the other.
func TestPostgresMigrationsMatchSQLite(t *testing.T) {
	pg, err := loadMigrations(postgresMigrations, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	lite, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) != len(lite) {
		t.Fatalf("%d PostgreSQL migrations, %d SQLite ones", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].name != lite[i].name {
			t.Errorf("version %d: PostgreSQL %q, SQLite %q", pg[i].version, pg[i].name, lite[i].name)
		}
	}
}
