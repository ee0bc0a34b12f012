package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SetCooldowns implements CooldownStore.
func (s *SQLite) SetCooldowns(ctx context.Context, cooldowns []Cooldown) error {
	if len(cooldowns) == 0 {
		return nil
	}
	return s.inTx(ctx, "set cooldowns", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO cooldowns (group_name, rule, dry_run, object_id, until_ns)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (group_name, rule, dry_run, object_id) DO UPDATE SET until_ns = excluded.until_ns`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range cooldowns {
			if c.ObjectID == "" || c.Until.IsZero() {
				return fmt.Errorf("cooldown %s/%s %q: object id and until are required", c.Group, c.Rule, c.ObjectID)
			}
			if _, err := st.ExecContext(ctx, c.Group, c.Rule, boolInt(c.DryRun), c.ObjectID, ns(c.Until)); err != nil {
				return fmt.Errorf("object %s: %w", c.ObjectID, err)
			}
		}
		return nil
	})
}

// ActiveCooldowns implements CooldownStore.
func (s *SQLite) ActiveCooldowns(ctx context.Context, group, rule string, dryRun bool, objectIDs []string, at time.Time) (map[string]time.Time, error) {
	out := make(map[string]time.Time)
	if len(objectIDs) == 0 {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT object_id, until_ns FROM cooldowns
		WHERE group_name = ? AND rule = ? AND dry_run = ? AND until_ns > ?
		AND object_id IN (SELECT value FROM json_each(?))`,
		group, rule, boolInt(dryRun), unixNano(at), jsonIDs(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("active cooldowns %s/%s: %w", group, rule, err)
	}
	defer rows.Close()
	if err := scanCooldowns(rows, out); err != nil {
		return nil, fmt.Errorf("active cooldowns %s/%s: %w", group, rule, err)
	}
	return out, nil
}

// PruneCooldowns implements CooldownStore.
func (s *SQLite) PruneCooldowns(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune cooldowns", `DELETE FROM cooldowns WHERE until_ns < ?`, unixNano(cutoff))
}

// RecentChanges implements HistoryStore.
func (s *SQLite) RecentChanges(ctx context.Context, dryRun bool, accountID string, since time.Time) ([]Change, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, time_ns, dry_run, run_id, group_name, rule, account_id,
			object_id, field, before_num, before_text, after_num, after_text, audit_id
		FROM changes WHERE dry_run = ? AND account_id = ? AND time_ns >= ?
		ORDER BY time_ns, id`, boolInt(dryRun), accountID, unixNano(since))
	if err != nil {
		return nil, fmt.Errorf("recent changes %s: %w", accountID, err)
	}
	defer rows.Close()
	out, err := scanChanges(rows)
	if err != nil {
		return nil, fmt.Errorf("recent changes %s: %w", accountID, err)
	}
	return out, nil
}

// insertChange adds c to the history and makes it its field's last write, unless a
// later write is already recorded (a reconciled intent may complete after a newer
// change).
func insertChange(ctx context.Context, tx *sql.Tx, c Change) error {
	if c.ObjectID == "" || c.Field == "" || c.Time.IsZero() {
		return fmt.Errorf("change %q %q: object id, field and time are required", c.ObjectID, c.Field)
	}
	bn, bt := c.Before.columns()
	an, at := c.After.columns()
	var auditID any
	if c.AuditID != 0 {
		auditID = c.AuditID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes (time_ns, dry_run, run_id, group_name, rule, account_id,
			object_id, field, before_num, before_text, after_num, after_text, audit_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ns(c.Time), boolInt(c.DryRun), c.RunID, c.Group, c.Rule, c.AccountID,
		c.ObjectID, c.Field, bn, bt, an, at, auditID); err != nil {
		return fmt.Errorf("change %s %s: %w", c.ObjectID, c.Field, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO last_writes (dry_run, object_id, field, account_id,
			value_num, value_text, time_ns, group_name, rule, audit_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dry_run, object_id, field) DO UPDATE SET
				account_id = excluded.account_id, value_num = excluded.value_num,
				value_text = excluded.value_text, time_ns = excluded.time_ns,
				group_name = excluded.group_name, rule = excluded.rule, audit_id = excluded.audit_id
			WHERE excluded.time_ns >= last_writes.time_ns`,
		boolInt(c.DryRun), c.ObjectID, c.Field, c.AccountID, an, at, ns(c.Time), c.Group, c.Rule, auditID); err != nil {
		return fmt.Errorf("last write %s %s: %w", c.ObjectID, c.Field, err)
	}
	return nil
}

// LastWrites implements HistoryStore.
func (s *SQLite) LastWrites(ctx context.Context, dryRun bool, objectIDs []string) ([]LastWrite, error) {
	if len(objectIDs) == 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT object_id, field, dry_run, account_id, value_num, value_text,
			time_ns, group_name, rule, audit_id
		FROM last_writes WHERE dry_run = ? AND object_id IN (SELECT value FROM json_each(?))
		ORDER BY object_id, field`, boolInt(dryRun), jsonIDs(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("last writes: %w", err)
	}
	defer rows.Close()
	out, err := scanLastWrites(rows)
	if err != nil {
		return nil, fmt.Errorf("last writes: %w", err)
	}
	return out, nil
}

// SetHolds implements HistoryStore.
func (s *SQLite) SetHolds(ctx context.Context, holds []Hold) error {
	if len(holds) == 0 {
		return nil
	}
	return s.inTx(ctx, "set holds", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO holds (dry_run, object_id, field, reason, until_ns)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (dry_run, object_id, field, reason) DO UPDATE SET until_ns = excluded.until_ns`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, h := range holds {
			if h.ObjectID == "" || h.Field == "" || h.Reason == "" || h.Until.IsZero() {
				return fmt.Errorf("hold %q %q: object id, field, reason and until are required", h.ObjectID, h.Field)
			}
			if _, err := st.ExecContext(ctx, boolInt(h.DryRun), h.ObjectID, h.Field, h.Reason, ns(h.Until)); err != nil {
				return fmt.Errorf("hold %s %s: %w", h.ObjectID, h.Field, err)
			}
		}
		return nil
	})
}

// ActiveHolds implements HistoryStore.
func (s *SQLite) ActiveHolds(ctx context.Context, dryRun bool, objectIDs []string, at time.Time) ([]Hold, error) {
	if len(objectIDs) == 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT object_id, field, reason, dry_run, until_ns FROM holds
		WHERE dry_run = ? AND until_ns > ? AND object_id IN (SELECT value FROM json_each(?))
		ORDER BY object_id, field, reason`, boolInt(dryRun), unixNano(at), jsonIDs(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("active holds: %w", err)
	}
	defer rows.Close()
	out, err := scanHolds(rows)
	if err != nil {
		return nil, fmt.Errorf("active holds: %w", err)
	}
	return out, nil
}

// PruneHistory implements HistoryStore.
func (s *SQLite) PruneHistory(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, "prune history", func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM changes WHERE time_ns < ?`,
			`DELETE FROM holds WHERE until_ns < ?`,
		} {
			res, err := tx.ExecContext(ctx, q, unixNano(cutoff))
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	return n, err
}
