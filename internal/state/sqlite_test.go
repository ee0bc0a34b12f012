package state_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/state/statetest"
)

func openSQLite(t testing.TB, path string) *state.SQLite {
	t.Helper()
	s, err := state.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "rulesd.db"))
	})
}

func TestSQLiteMemory(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return openSQLite(t, ":memory:") })
}

// TestSQLiteReplicas opens one file twice, as two processes would.
func TestSQLiteReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rulesd.db")
	a, b := openSQLite(t, path), openSQLite(t, path)
	defer a.Close()
	defer b.Close()
	statetest.RunShared(t, a, b)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := state.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// postgres is implemented: see TestOpenPostgres and TestOpenPostgresErrors.
	if _, err := state.Open(ctx, "mysql", "x"); err == nil || !strings.Contains(err.Error(), `unknown driver "mysql"`) {
		t.Errorf("Open(mysql) error = %v", err)
	}
	if _, err := state.OpenSQLite(ctx, ""); err == nil {
		t.Error("OpenSQLite(\"\") succeeded")
	}
}

// TestSQLitePragmas checks the settings the store relies on, on both pools.
func TestSQLitePragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rulesd.db")
	s := openSQLite(t, path)
	defer s.Close()
	w, r := state.SQLiteDBs(s)
	for name, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "synchronous": "2"} {
		for pool, db := range map[string]*sql.DB{"writer": w, "reader": r} {
			var got string
			if err := db.QueryRow("PRAGMA " + name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", pool, name, got, want)
			}
		}
	}
	if w.Stats().MaxOpenConnections != 1 {
		t.Errorf("writer pool allows %d connections, want 1", w.Stats().MaxOpenConnections)
	}
	if _, err := r.Exec(`DELETE FROM audit`); err == nil {
		t.Error("the read pool can write")
	}
	// A DSN setting wins over the default.
	s2 := openSQLite(t, filepath.Join(t.TempDir(), "other.db")+"?_busy_timeout=50")
	defer s2.Close()
	w2, _ := state.SQLiteDBs(s2)
	var bt string
	if err := w2.QueryRow("PRAGMA busy_timeout").Scan(&bt); err != nil || bt != "50" {
		t.Errorf("busy_timeout from the DSN = %s, %v; want 50", bt, err)
	}
}

func TestSQLiteMigrations(t *testing.T) {
	ctx := context.Background()
	latest := state.SQLiteLatestVersion(t)
	if latest < 2 {
		t.Fatalf("latest version %d: this test needs an older version to upgrade from", latest)
	}

	t.Run("upgrade from an old version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		db := state.OpenRawSQLite(t, path)
		state.MigrateSQLiteTo(t, db, 1)
		if _, err := db.Exec(`INSERT INTO audit (time_ns, group_name, rule, account_id, object_id, result)
			VALUES (?, 'g', 'r', 'act_1', 'o1', 'applied')`, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`SELECT 1 FROM leases`); err == nil {
			t.Fatal("version 1 already has the leases table")
		}
		db.Close()

		s := openSQLite(t, path)
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("after open: version %d, %v; want %d", v, err, latest)
		}
		recs, err := s.QueryAudit(ctx, state.AuditQuery{})
		if err != nil || len(recs) != 1 || recs[0].ObjectID != "o1" {
			t.Fatalf("data written at version 1: %+v, %v", recs, err)
		}
		if ok, err := s.TryAcquire(ctx, "g", "act_1", time.Now(), "me"); err != nil || !ok {
			t.Fatalf("leases after upgrade: %v, %v", ok, err)
		}
	})

	t.Run("reopen is a no-op", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rulesd.db")
		s := openSQLite(t, path)
		before := migrationRows(t, s)
		s.Close()
		s = openSQLite(t, path)
		defer s.Close()
		after := migrationRows(t, s)
		if before != after || strings.Count(after, "\n") != latest {
			t.Errorf("schema_migrations changed on reopen:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("newer database refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.db")
		openSQLite(t, path).Close()
		db := state.OpenRawSQLite(t, path)
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, 'future', 0)`, latest+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err := state.OpenSQLite(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "newer than this rulesd") {
			t.Errorf("opening a newer database: %v", err)
		}
	})
}

// migrationRows renders schema_migrations, applied times included.
func migrationRows(t *testing.T, s *state.SQLite) string {
	t.Helper()
	_, r := state.SQLiteDBs(s)
	rows, err := r.Query(`SELECT version, name, applied_ns FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var v, at int64
		var name string
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d %s %d\n", v, name, at)
	}
	return b.String()
}

// BenchmarkAppendAudit appends 1,000 audit records in one batch (one transaction).
func BenchmarkAppendAudit(b *testing.B) {
	s := openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	recs := make([]state.AuditRecord, 1000)
	for i := range recs {
		recs[i] = state.AuditRecord{
			Time: t0, RunID: "run-1", Group: "stop-loss", Rule: "pause-spend-without-purchase",
			AccountID: "act_1234567890", Level: "ad", ObjectID: fmt.Sprintf("2384%08d", i), ObjectName: "UGC video",
			Kind: "pause", Field: state.FieldStatus, Before: state.Status("ACTIVE"), After: state.Status("PAUSED"),
			Result: state.ResultApplied, Labels: map[string]string{"owner": "growth"},
			Values: map[string]state.Scalar{
				"spend": state.Number(61.2), "purchases": state.Number(0), "impressions": state.Number(3120),
				"effective_status": state.Text("ACTIVE"), "campaign.objective": state.Text("OUTCOME_SALES"),
				"account.vars.target_cpa": state.Number(25), "cpa": state.Null(),
			},
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AppendAudit(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
}

// BenchmarkGetPending looks up the pending state of 2,000 objects in one query.
func BenchmarkGetPending(b *testing.B) {
	s := openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	scope := state.RuleScope{Group: "stop-loss", Rule: "pause-spend-without-purchase", AccountID: "act_1234567890"}
	const n = 2000
	ids := make([]string, n)
	states := make([]state.Pending, 0, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("2384%08d", i)
		if i%2 == 0 { // half the objects pending, as after a partial match
			states = append(states, state.Pending{ObjectID: ids[i], Since: t0, LastEval: t0})
		}
	}
	if err := s.PutPending(ctx, scope, states); err != nil {
		b.Fatal(err)
	}
	// Other rules' state in the same table, so the lookup is not a full-table read.
	other := scope
	for r := range 5 {
		other.Rule = fmt.Sprintf("rule-%d", r)
		if err := s.PutPending(ctx, other, states); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.GetPending(ctx, scope, ids)
		if err != nil || len(got) != n/2 {
			b.Fatalf("%d, %v", len(got), err)
		}
	}
}

// BenchmarkPutPending upserts the pending state of 2,000 objects in one transaction.
func BenchmarkPutPending(b *testing.B) {
	s := openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	scope := state.RuleScope{Group: "g", Rule: "r", AccountID: "act_1"}
	states := make([]state.Pending, 2000)
	for i := range states {
		states[i] = state.Pending{ObjectID: fmt.Sprintf("2384%08d", i), Since: t0, LastEval: t0}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.PutPending(ctx, scope, states); err != nil {
			b.Fatal(err)
		}
	}
}
