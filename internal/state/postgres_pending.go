package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GetPending implements PendingStore.
func (s *Postgres) GetPending(ctx context.Context, scope RuleScope, objectIDs []string) (map[string]Pending, error) {
	out := make(map[string]Pending, len(objectIDs))
	if len(objectIDs) == 0 {
		return out, nil
	}
	err := s.queryPending(ctx, out, nil, `SELECT object_id, since_ns, last_eval_ns FROM pending
		WHERE group_name = $1 AND rule = $2 AND account_id = $3 AND object_id = ANY($4::text[])`,
		scope.Group, scope.Rule, scope.AccountID, objectIDs)
	if err != nil {
		return nil, fmt.Errorf("get pending %s/%s/%s: %w", scope.Group, scope.Rule, scope.AccountID, err)
	}
	return out, nil
}

// ListPending implements PendingStore.
func (s *Postgres) ListPending(ctx context.Context, scope RuleScope) ([]Pending, error) {
	var out []Pending
	err := s.queryPending(ctx, nil, &out, `SELECT object_id, since_ns, last_eval_ns FROM pending
		WHERE group_name = $1 AND rule = $2 AND account_id = $3 ORDER BY object_id`,
		scope.Group, scope.Rule, scope.AccountID)
	if err != nil {
		return nil, fmt.Errorf("list pending %s/%s/%s: %w", scope.Group, scope.Rule, scope.AccountID, err)
	}
	return out, nil
}

// queryPending runs a pending query into a map or a slice.
func (s *Postgres) queryPending(ctx context.Context, m map[string]Pending, list *[]Pending, query string, args ...any) error {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return scanPending(rows, m, list)
}

// PutPending implements PendingStore.
func (s *Postgres) PutPending(ctx context.Context, scope RuleScope, states []Pending) error {
	if len(states) == 0 {
		return nil
	}
	return s.inTx(ctx, "put pending", func(tx pgx.Tx) error {
		return sendBatch(ctx, tx, len(states), func(i int) (string, []any, error) {
			p := states[i]
			if p.ObjectID == "" || p.Since.IsZero() || p.LastEval.IsZero() {
				return "", nil, fmt.Errorf("object %q: object id, since and last evaluation are required", p.ObjectID)
			}
			return `INSERT INTO pending (group_name, rule, account_id, object_id, since_ns, last_eval_ns)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (group_name, rule, account_id, object_id)
				DO UPDATE SET since_ns = excluded.since_ns, last_eval_ns = excluded.last_eval_ns`,
				[]any{scope.Group, scope.Rule, scope.AccountID, p.ObjectID, ns(p.Since), ns(p.LastEval)}, nil
		}, func(i int, br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("object %s: %w", states[i].ObjectID, err)
			}
			return nil
		})
	})
}

// DeletePending implements PendingStore.
func (s *Postgres) DeletePending(ctx context.Context, scope RuleScope, objectIDs []string) error {
	if len(objectIDs) == 0 {
		return nil
	}
	_, err := s.exec(ctx, "delete pending", `DELETE FROM pending
		WHERE group_name = $1 AND rule = $2 AND account_id = $3 AND object_id = ANY($4::text[])`,
		scope.Group, scope.Rule, scope.AccountID, objectIDs)
	return err
}

// ResetPending implements PendingStore.
func (s *Postgres) ResetPending(ctx context.Context, group, rule string) error {
	_, err := s.exec(ctx, "reset pending", `DELETE FROM pending WHERE group_name = $1 AND rule = $2`, group, rule)
	return err
}

// LapsePending implements PendingStore.
func (s *Postgres) LapsePending(ctx context.Context, scope RuleScope, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "lapse pending", `DELETE FROM pending
		WHERE group_name = $1 AND rule = $2 AND account_id = $3 AND last_eval_ns < $4`,
		scope.Group, scope.Rule, scope.AccountID, unixNano(cutoff))
}

// PrunePending implements PendingStore.
func (s *Postgres) PrunePending(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune pending", `DELETE FROM pending WHERE last_eval_ns < $1`, unixNano(cutoff))
}
