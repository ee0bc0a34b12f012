package state

import (
	"context"
	"database/sql"
	"testing"
)

// Test hooks for package state_test.

// SQLiteDBs returns the writer and reader pools of s.
func SQLiteDBs(s *SQLite) (w, r *sql.DB) { return s.w, s.r }

// SQLiteLatestVersion returns the version of the last embedded migration.
func SQLiteLatestVersion(t *testing.T) int {
	t.Helper()
	ms, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// OpenRawSQLite opens path as the writer pool would, without migrating it.
func OpenRawSQLite(t *testing.T, path string) *sql.DB { return OpenRawSQLiteForTest(t, path) }

// OpenRawSQLiteForTest is OpenRawSQLite for the tests inside the package.
func OpenRawSQLiteForTest(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// MigrateSQLiteTo applies the embedded migrations up to version, to build a database
// as an older rulesd left it.
func MigrateSQLiteTo(t *testing.T, db *sql.DB, version int) {
	t.Helper()
	ms, err := loadMigrations(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateSQLite(context.Background(), db, ms[:version]); err != nil {
		t.Fatal(err)
	}
}
