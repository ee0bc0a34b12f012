package state_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/state/pgtest"
	"github.com/rulesd/rulesd/internal/state/statetest"
)

// The PostgreSQL tests run against the database of $RULESD_TEST_POSTGRES_DSN (the
// role needs CREATE on it), each in a schema of its own that is dropped afterwards.
// Without the variable they skip, unless RULESD_REQUIRE_POSTGRES=1 (CI, see
// .ci/postgres.sh), which turns the skip into a failure.

func openPostgres(t testing.TB, dsn string) *state.Postgres {
	t.Helper()
	s, err := state.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	statetest.Run(t, func(t *testing.T) state.Store {
		return openPostgres(t, pgtest.Schema(t, dsn))
	})
}

// TestPostgresReplicas opens one database twice, as two replicas would.
func TestPostgresReplicas(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	statetest.RunShared(t, a, b)
}

// TestPostgresLeaseRace has two replicas (two stores, each with its own pool) and
// several workers in each race for the same ticks of several (group, account) pairs:
// every tick must have exactly one winner, so the ticks the workers won are disjoint
// and together cover every tick.
func TestPostgresLeaseRace(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const workersPerReplica, ticks = 4, 60
	accounts := []string{"act_1", "act_2", "act_3"}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	type key struct {
		account string
		tick    int
	}
	won := map[string][]key{} // owner -> what it won
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for r, s := range []state.Store{a, b} {
		for w := range workersPerReplica {
			owner := fmt.Sprintf("replica-%d/worker-%d", r, w)
			wg.Go(func() {
				<-start
				for i := range ticks {
					for _, acct := range accounts {
						ok, err := s.TryAcquire(ctx, "g", acct, t0.Add(time.Duration(i)*time.Minute), owner)
						if err != nil {
							t.Errorf("%s: %v", owner, err)
							return
						}
						if ok {
							mu.Lock()
							won[owner] = append(won[owner], key{acct, i})
							mu.Unlock()
						}
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()

	winners := map[key][]string{}
	for owner, keys := range won {
		for _, k := range keys {
			winners[k] = append(winners[k], owner)
		}
	}
	for _, acct := range accounts {
		for i := range ticks {
			if w := winners[key{acct, i}]; len(w) != 1 {
				t.Errorf("%s tick %d won by %v, want exactly one owner", acct, i, w)
			}
		}
	}
	if len(won) < 2 {
		t.Logf("only %d owner(s) won ticks; the race was not contended", len(won))
	}
	// The winner of the last tick holds it; anyone else is refused it.
	last := t0.Add((ticks - 1) * time.Minute)
	holder := winners[key{"act_1", ticks - 1}]
	if len(holder) == 1 {
		if ok, err := b.TryAcquire(ctx, "g", "act_1", last, holder[0]); err != nil || !ok {
			t.Errorf("the holder asking again: %v, %v", ok, err)
		}
		if ok, err := a.TryAcquire(ctx, "g", "act_1", last, "someone-else"); err != nil || ok {
			t.Errorf("another owner on a held tick: %v, %v", ok, err)
		}
	}
}

func TestPostgresMigrations(t *testing.T) {
	ctx := context.Background()
	base := pgtest.DSN(t)
	latest := state.PostgresLatestVersion(t)
	if latest < 2 {
		t.Fatalf("latest version %d: this test needs an older version to upgrade from", latest)
	}

	t.Run("concurrent opens", func(t *testing.T) {
		dsn := pgtest.Schema(t, base)
		const replicas = 6
		stores := make([]*state.Postgres, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range replicas {
			wg.Go(func() {
				<-start
				stores[i], errs[i] = state.OpenPostgres(ctx, dsn)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				continue
			}
			defer stores[i].Close()
			if v, err := stores[i].SchemaVersion(ctx); err != nil || v != latest {
				t.Errorf("replica %d: version %d, %v; want %d", i, v, err, latest)
			}
		}
		if t.Failed() {
			return
		}
		rows := pgMigrationRows(t, stores[0])
		var want strings.Builder
		for v := 1; v <= latest; v++ {
			fmt.Fprintf(&want, "%d\n", v)
		}
		if got := versionsOnly(rows); got != want.String() {
			t.Errorf("schema_migrations after concurrent opens:\n%s\nwant each version once:\n%s", rows, want.String())
		}
	})

	t.Run("reopen is a no-op", func(t *testing.T) {
		dsn := pgtest.Schema(t, base)
		s := openPostgres(t, dsn)
		before := pgMigrationRows(t, s)
		s.Close()
		s = openPostgres(t, dsn)
		defer s.Close()
		after := pgMigrationRows(t, s)
		if before != after || strings.Count(after, "\n") != latest {
			t.Errorf("schema_migrations changed on reopen:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("upgrade from an old version", func(t *testing.T) {
		dsn := pgtest.Schema(t, base)
		pool := state.OpenRawPostgres(t, dsn)
		state.MigratePostgresTo(t, pool, 1)
		if _, err := pool.Exec(ctx, `INSERT INTO audit (time_ns, group_name, rule, account_id, object_id, result)
			VALUES ($1, 'g', 'r', 'act_1', 'o1', 'applied')`, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `SELECT 1 FROM leases`); err == nil {
			t.Fatal("version 1 already has the leases table")
		}
		s := openPostgres(t, dsn)
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

	t.Run("newer database refused", func(t *testing.T) {
		dsn := pgtest.Schema(t, base)
		openPostgres(t, dsn).Close()
		pool := state.OpenRawPostgres(t, dsn)
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, 'future', 0)`, latest+1); err != nil {
			t.Fatal(err)
		}
		_, err := state.OpenPostgres(ctx, dsn)
		if err == nil || !strings.Contains(err.Error(), "newer than this rulesd") {
			t.Errorf("opening a newer database: %v", err)
		}
	})
}

func TestOpenPostgres(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	s, err := state.Open(context.Background(), "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*state.Postgres); !ok {
		t.Errorf("Open(postgres) = %T, want *state.Postgres", s)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestOpenPostgresErrors needs no database: errors must not carry the password of
// the DSN (a state.dsn from the configuration is a secret).
func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://rulesd:s3cret-pw@localhost:notaport/rulesd",            // does not parse
		"postgres://rulesd:s3cret-pw@127.0.0.1:1/rulesd?connect_timeout=5", // nothing listens on port 1
		"host=127.0.0.1 port=1 user=rulesd password=s3cret-pw dbname=rulesd connect_timeout=5",
	} {
		_, err := state.Open(ctx, "postgres", dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if errors.Is(err, state.ErrNotImplemented) {
			t.Errorf("Open(postgres) = %v, want it implemented", err)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error carries the password: %v", err)
		}
	}
	if _, err := state.OpenPostgres(ctx, ""); err == nil {
		t.Error(`OpenPostgres("") succeeded`)
	}
}

// pgMigrationRows renders schema_migrations, applied times included.
func pgMigrationRows(t *testing.T, s *state.Postgres) string {
	t.Helper()
	rows, err := state.PostgresPool(s).Query(context.Background(),
		`SELECT version, name, applied_ns FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var v int
		var at int64
		var name string
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d %s %d\n", v, name, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// versionsOnly keeps the first column of pgMigrationRows.
func versionsOnly(rows string) string {
	var b strings.Builder
	for line := range strings.Lines(rows) {
		v, _, _ := strings.Cut(line, " ")
		b.WriteString(v + "\n")
	}
	return b.String()
}

// TestPostgresLockAccount: an account's lock is held by one replica at a time, across
// handles (replicas), and other accounts are not blocked.
func TestPostgresLockAccount(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	unlock, err := a.LockAccount(ctx, "act_1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.LockAccount(ctx, "act_2")
	if err != nil {
		t.Fatal(err)
	}
	other()
	got := make(chan struct{})
	go func() {
		u, err := b.LockAccount(ctx, "act_1")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		close(got)
		u()
	}()
	select {
	case <-got:
		t.Fatal("a second replica took an account lock that is held")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the lock was not handed over after unlock")
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	u, err := a.LockAccount(ctx, "act_3")
	if err != nil {
		t.Fatal(err)
	}
	defer u()
	if _, err := b.LockAccount(cctx, "act_3"); err == nil {
		t.Error("a cancelled wait for a held lock succeeded")
	}
}
