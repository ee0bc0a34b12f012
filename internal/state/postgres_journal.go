package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecordIntents implements Journal.
func (s *Postgres) RecordIntents(ctx context.Context, intents []Intent) ([]int64, error) {
	if len(intents) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(intents))
	err := s.inTx(ctx, "record intents", func(tx pgx.Tx) error {
		return sendBatch(ctx, tx, len(intents), func(i int) (string, []any, error) {
			in := intents[i]
			switch {
			case in.Created.IsZero() || in.ObjectID == "" || in.Field == "":
				return "", nil, fmt.Errorf("intent %q %q: created, object id and field are required", in.ObjectID, in.Field)
			case in.Target.IsAbsent():
				// A relative or empty target could not be re-sent safely (SPEC 4.6).
				return "", nil, fmt.Errorf("intent %s %s: the target must be an absolute value", in.ObjectID, in.Field)
			}
			bn, bt := in.Before.columns()
			tn, tt := in.Target.columns()
			return `INSERT INTO intents (created_ns, run_id, group_name, rule, account_id, level, object_id,
					object_name, kind, field, before_num, before_text, target_num, target_text)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
				[]any{ns(in.Created), in.RunID, in.Group, in.Rule, in.AccountID, in.Level, in.ObjectID,
					in.ObjectName, in.Kind, in.Field, bn, bt, tn, tt}, nil
		}, func(i int, br pgx.BatchResults) error {
			if err := br.QueryRow().Scan(&ids[i]); err != nil {
				return fmt.Errorf("intent %s %s: %w", intents[i].ObjectID, intents[i].Field, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// UnfinishedIntents implements Journal.
func (s *Postgres) UnfinishedIntents(ctx context.Context, accountID string) ([]Intent, error) {
	query := `SELECT id, created_ns, run_id, group_name, rule, account_id, level, object_id, object_name,
		kind, field, before_num, before_text, target_num, target_text
		FROM intents WHERE completed_ns IS NULL`
	var args []any
	if accountID != "" {
		query += ` AND account_id = $1`
		args = append(args, accountID)
	}
	query += ` ORDER BY id`
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("unfinished intents: %w", err)
	}
	defer rows.Close()
	out, err := scanIntents(rows)
	if err != nil {
		return nil, fmt.Errorf("unfinished intents: %w", err)
	}
	return out, nil
}

// pgOp is one statement of a batch and what to do with its result.
type pgOp struct {
	sql    string
	args   []any
	result func(br pgx.BatchResults) error
}

// RecordOutcomes implements Journal. It takes two round trips in one transaction: the
// audit records first (their ids are needed next), then the completion of the
// intents and the changes. Completing an intent is an UPDATE … WHERE completed_ns IS
// NULL: a replica completing the same intent at the same time waits for the row lock
// and then finds it completed, so an intent is completed exactly once.
func (s *Postgres) RecordOutcomes(ctx context.Context, outcomes []Outcome) ([]int64, error) {
	if len(outcomes) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(outcomes))
	err := s.inTx(ctx, "record outcomes", func(tx pgx.Tx) error {
		err := sendBatch(ctx, tx, len(outcomes), func(i int) (string, []any, error) {
			o := outcomes[i]
			args, err := pgAuditArgs(o.Audit)
			if err != nil {
				return "", nil, fmt.Errorf("outcome %d (%s/%s %s): %w", i, o.Audit.Group, o.Audit.Rule, o.Audit.ObjectID, err)
			}
			return pgInsertAuditSQL, args, nil
		}, func(i int, br pgx.BatchResults) error {
			if err := br.QueryRow().Scan(&ids[i]); err != nil {
				o := outcomes[i]
				return fmt.Errorf("outcome %d (%s/%s %s): %w", i, o.Audit.Group, o.Audit.Rule, o.Audit.ObjectID, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var ops []pgOp
		for i, o := range outcomes {
			if o.IntentID != 0 {
				intentID := o.IntentID
				ops = append(ops, pgOp{
					sql: `UPDATE intents SET completed_ns = $1, result = $2, error = $3, audit_id = $4
						WHERE id = $5 AND completed_ns IS NULL`,
					args: []any{ns(o.Audit.Time), o.Audit.Result, o.Audit.Error, ids[i], intentID},
					result: func(br pgx.BatchResults) error {
						tag, err := br.Exec()
						if err != nil {
							return fmt.Errorf("complete intent %d: %w", intentID, err)
						}
						if tag.RowsAffected() != 1 {
							return fmt.Errorf("complete intent %d: %w", intentID, ErrIntentCompleted)
						}
						return nil
					},
				})
			}
			if o.Change != nil {
				c := *o.Change
				c.AuditID = ids[i]
				stmts, args, err := pgChangeStatements(c)
				if err != nil {
					return err
				}
				for k, what := range []string{"change", "last write"} {
					ops = append(ops, pgOp{sql: stmts[k], args: args[k], result: func(br pgx.BatchResults) error {
						if _, err := br.Exec(); err != nil {
							return fmt.Errorf("%s %s %s: %w", what, c.ObjectID, c.Field, err)
						}
						return nil
					}})
				}
			}
		}
		return sendBatch(ctx, tx, len(ops), func(i int) (string, []any, error) {
			return ops[i].sql, ops[i].args, nil
		}, func(i int, br pgx.BatchResults) error {
			return ops[i].result(br)
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// PruneIntents implements Journal.
func (s *Postgres) PruneIntents(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune intents", `DELETE FROM intents WHERE completed_ns IS NOT NULL AND completed_ns < $1`, unixNano(cutoff))
}
