package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// GetPending implements PendingStore.
func (s *SQLite) GetPending(ctx context.Context, scope RuleScope, objectIDs []string) (map[string]Pending, error) {
	out := make(map[string]Pending, len(objectIDs))
	if len(objectIDs) == 0 {
		return out, nil
	}
	err := s.queryPending(ctx, out, nil, `SELECT object_id, since_ns, last_eval_ns FROM pending
		WHERE group_name = ? AND rule = ? AND account_id = ?
		AND object_id IN (SELECT value FROM json_each(?))`,
		scope.Group, scope.Rule, scope.AccountID, jsonIDs(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("get pending %s/%s/%s: %w", scope.Group, scope.Rule, scope.AccountID, err)
	}
	return out, nil
}

// ListPending implements PendingStore.
func (s *SQLite) ListPending(ctx context.Context, scope RuleScope) ([]Pending, error) {
	var out []Pending
	err := s.queryPending(ctx, nil, &out, `SELECT object_id, since_ns, last_eval_ns FROM pending
		WHERE group_name = ? AND rule = ? AND account_id = ? ORDER BY object_id`,
		scope.Group, scope.Rule, scope.AccountID)
	if err != nil {
		return nil, fmt.Errorf("list pending %s/%s/%s: %w", scope.Group, scope.Rule, scope.AccountID, err)
	}
	return out, nil
}

// queryPending runs a pending query into a map or a slice.
func (s *SQLite) queryPending(ctx context.Context, m map[string]Pending, list *[]Pending, query string, args ...any) error {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return scanPending(rows, m, list)
}

// PutPending implements PendingStore.
func (s *SQLite) PutPending(ctx context.Context, scope RuleScope, states []Pending) error {
	if len(states) == 0 {
		return nil
	}
	return s.inTx(ctx, "put pending", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO pending
			(group_name, rule, account_id, object_id, since_ns, last_eval_ns) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (group_name, rule, account_id, object_id)
			DO UPDATE SET since_ns = excluded.since_ns, last_eval_ns = excluded.last_eval_ns`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, p := range states {
			if p.ObjectID == "" || p.Since.IsZero() || p.LastEval.IsZero() {
				return fmt.Errorf("object %q: object id, since and last evaluation are required", p.ObjectID)
			}
			if _, err := st.ExecContext(ctx, scope.Group, scope.Rule, scope.AccountID, p.ObjectID, ns(p.Since), ns(p.LastEval)); err != nil {
				return fmt.Errorf("object %s: %w", p.ObjectID, err)
			}
		}
		return nil
	})
}

// DeletePending implements PendingStore.
func (s *SQLite) DeletePending(ctx context.Context, scope RuleScope, objectIDs []string) error {
	if len(objectIDs) == 0 {
		return nil
	}
	_, err := s.exec(ctx, "delete pending", `DELETE FROM pending
		WHERE group_name = ? AND rule = ? AND account_id = ?
		AND object_id IN (SELECT value FROM json_each(?))`,
		scope.Group, scope.Rule, scope.AccountID, jsonIDs(objectIDs))
	return err
}

// ResetPending implements PendingStore.
func (s *SQLite) ResetPending(ctx context.Context, group, rule string) error {
	_, err := s.exec(ctx, "reset pending", `DELETE FROM pending WHERE group_name = ? AND rule = ?`, group, rule)
	return err
}

// LapsePending implements PendingStore.
func (s *SQLite) LapsePending(ctx context.Context, scope RuleScope, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "lapse pending", `DELETE FROM pending
		WHERE group_name = ? AND rule = ? AND account_id = ? AND last_eval_ns < ?`,
		scope.Group, scope.Rule, scope.AccountID, unixNano(cutoff))
}

// PrunePending implements PendingStore.
func (s *SQLite) PrunePending(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune pending", `DELETE FROM pending WHERE last_eval_ns < ?`, unixNano(cutoff))
}
