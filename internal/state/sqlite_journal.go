package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RecordIntents implements Journal.
func (s *SQLite) RecordIntents(ctx context.Context, intents []Intent) ([]int64, error) {
	if len(intents) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(intents))
	err := s.inTx(ctx, "record intents", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO intents (created_ns, run_id, group_name, rule, account_id,
			level, object_id, object_name, kind, field, before_num, before_text, target_num, target_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, in := range intents {
			switch {
			case in.Created.IsZero() || in.ObjectID == "" || in.Field == "":
				return fmt.Errorf("intent %q %q: created, object id and field are required", in.ObjectID, in.Field)
			case in.Target.IsAbsent():
				// A relative or empty target could not be re-sent safely (SPEC 4.6).
				return fmt.Errorf("intent %s %s: the target must be an absolute value", in.ObjectID, in.Field)
			}
			bn, bt := in.Before.columns()
			tn, tt := in.Target.columns()
			res, err := st.ExecContext(ctx, ns(in.Created), in.RunID, in.Group, in.Rule, in.AccountID,
				in.Level, in.ObjectID, in.ObjectName, in.Kind, in.Field, bn, bt, tn, tt)
			if err != nil {
				return fmt.Errorf("intent %s %s: %w", in.ObjectID, in.Field, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// UnfinishedIntents implements Journal.
func (s *SQLite) UnfinishedIntents(ctx context.Context, accountID string) ([]Intent, error) {
	query := `SELECT id, created_ns, run_id, group_name, rule, account_id, level, object_id, object_name,
		kind, field, before_num, before_text, target_num, target_text
		FROM intents WHERE completed_ns IS NULL`
	var args []any
	if accountID != "" {
		query += ` AND account_id = ?`
		args = append(args, accountID)
	}
	query += ` ORDER BY id`
	rows, err := s.r.QueryContext(ctx, query, args...)
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

// RecordOutcomes implements Journal.
func (s *SQLite) RecordOutcomes(ctx context.Context, outcomes []Outcome) ([]int64, error) {
	if len(outcomes) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(outcomes))
	err := s.inTx(ctx, "record outcomes", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, insertAuditSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, o := range outcomes {
			id, err := insertAudit(ctx, st, o.Audit)
			if err != nil {
				return fmt.Errorf("outcome %d (%s/%s %s): %w", i, o.Audit.Group, o.Audit.Rule, o.Audit.ObjectID, err)
			}
			ids = append(ids, id)
			if o.IntentID != 0 {
				res, err := tx.ExecContext(ctx, `UPDATE intents SET completed_ns = ?, result = ?, error = ?, audit_id = ?
					WHERE id = ? AND completed_ns IS NULL`,
					ns(o.Audit.Time), o.Audit.Result, o.Audit.Error, id, o.IntentID)
				if err != nil {
					return fmt.Errorf("complete intent %d: %w", o.IntentID, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("complete intent %d: %w", o.IntentID, err)
				}
				if n != 1 {
					return fmt.Errorf("complete intent %d: %w", o.IntentID, ErrIntentCompleted)
				}
			}
			if o.Change != nil {
				c := *o.Change
				c.AuditID = id
				if err := insertChange(ctx, tx, c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// PruneIntents implements Journal.
func (s *SQLite) PruneIntents(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune intents", `DELETE FROM intents WHERE completed_ns IS NOT NULL AND completed_ns < ?`, unixNano(cutoff))
}
