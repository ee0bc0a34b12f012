package state

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"
)

// LockAccount serialises the runs of one ad account across every replica sharing the
// database (SPEC 4.3: runs for one account are serialised, across groups). It takes a
// session advisory lock on a connection of its own, held until unlock is called: an
// advisory lock belongs to its session, so it must never go back to the pool while
// held, or another goroutine's work would own it.
func (p *Postgres) LockAccount(ctx context.Context, accountID string) (unlock func(), err error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	key := accountLockKey(accountID)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	return func() {
		// A fresh context: the run's may be cancelled, and the lock must go.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			// The session may be broken; closing it releases the lock.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// accountLockKey maps an account id to an advisory lock key, in a namespace of its
// own (the top bits) so that it cannot collide with the migration lock.
func accountLockKey(accountID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("rulesd account lock\x00" + accountID))
	return int64(h.Sum64() &^ (1 << 63))
}
