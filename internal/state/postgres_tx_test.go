package state

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rulesd/rulesd/internal/state/pgtest"
)

// TestPostgresDeadlockRetried makes two transactions deadlock, as two replicas
// recording outcomes for the same objects in different orders could: PostgreSQL
// aborts one, and inTx runs it again instead of failing the write.
func TestPostgresDeadlockRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := OpenPostgres(ctx, pgtest.Schema(t, pgtest.DSN(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE dl (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
		INSERT INTO dl VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	locked := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	run := func(me int) error {
		first, second := me+1, 2-me // 1 then 2, or 2 then 1
		var tries int
		return s.inTx(ctx, "deadlock", func(tx pgx.Tx) error {
			tries++
			attempts.Add(1)
			if _, err := tx.Exec(ctx, `UPDATE dl SET n = n + 1 WHERE id = $1`, first); err != nil {
				return err
			}
			if tries == 1 { // hold my row until the other holds its own
				close(locked[me])
				<-locked[1-me]
			}
			_, err := tx.Exec(ctx, `UPDATE dl SET n = n + 1 WHERE id = $1`, second)
			return err
		})
	}
	var wg sync.WaitGroup
	var errs [2]error
	for me := range 2 {
		wg.Go(func() { errs[me] = run(me) })
	}
	wg.Wait()
	for me, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", me, err)
		}
	}
	if n := attempts.Load(); n < 3 {
		t.Errorf("%d attempts, want at least 3 (a deadlock victim run again)", n)
	}
	var a, b int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT n FROM dl WHERE id = 1), (SELECT n FROM dl WHERE id = 2)`).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	if a != 2 || b != 2 {
		t.Errorf("rows = %d, %d; want 2, 2 (both transactions committed once)", a, b)
	}
}
