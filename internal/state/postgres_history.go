package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SetCooldowns implements CooldownStore.
func (s *Postgres) SetCooldowns(ctx context.Context, cooldowns []Cooldown) error {
	if len(cooldowns) == 0 {
		return nil
	}
	return s.inTx(ctx, "set cooldowns", func(tx pgx.Tx) error {
		return sendBatch(ctx, tx, len(cooldowns), func(i int) (string, []any, error) {
			c := cooldowns[i]
			if c.ObjectID == "" || c.Until.IsZero() {
				return "", nil, fmt.Errorf("cooldown %s/%s %q: object id and until are required", c.Group, c.Rule, c.ObjectID)
			}
			return `INSERT INTO cooldowns (group_name, rule, dry_run, object_id, until_ns) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (group_name, rule, dry_run, object_id) DO UPDATE SET until_ns = excluded.until_ns`,
				[]any{c.Group, c.Rule, c.DryRun, c.ObjectID, ns(c.Until)}, nil
		}, func(i int, br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("object %s: %w", cooldowns[i].ObjectID, err)
			}
			return nil
		})
	})
}

// ActiveCooldowns implements CooldownStore.
func (s *Postgres) ActiveCooldowns(ctx context.Context, group, rule string, dryRun bool, objectIDs []string, at time.Time) (map[string]time.Time, error) {
	out := make(map[string]time.Time)
	if len(objectIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT object_id, until_ns FROM cooldowns
		WHERE group_name = $1 AND rule = $2 AND dry_run = $3 AND until_ns > $4 AND object_id = ANY($5::text[])`,
		group, rule, dryRun, unixNano(at), objectIDs)
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
func (s *Postgres) PruneCooldowns(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.exec(ctx, "prune cooldowns", `DELETE FROM cooldowns WHERE until_ns < $1`, unixNano(cutoff))
}

// RecentChanges implements HistoryStore.
func (s *Postgres) RecentChanges(ctx context.Context, dryRun bool, accountID string, since time.Time) ([]Change, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, time_ns, dry_run, run_id, group_name, rule, account_id,
			object_id, field, before_num, before_text, after_num, after_text, audit_id
		FROM changes WHERE dry_run = $1 AND account_id = $2 AND time_ns >= $3
		ORDER BY time_ns, id`, dryRun, accountID, unixNano(since))
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

// pgChangeStatements returns the two statements that add c to the history and make
// it its field's last write, unless a later write is already recorded (a reconciled
// intent may complete after a newer change).
func pgChangeStatements(c Change) ([2]string, [2][]any, error) {
	if c.ObjectID == "" || c.Field == "" || c.Time.IsZero() {
		return [2]string{}, [2][]any{}, fmt.Errorf("change %q %q: object id, field and time are required", c.ObjectID, c.Field)
	}
	bn, bt := c.Before.columns()
	an, at := c.After.columns()
	var auditID any
	if c.AuditID != 0 {
		auditID = c.AuditID
	}
	return [2]string{
			`INSERT INTO changes (time_ns, dry_run, run_id, group_name, rule, account_id,
				object_id, field, before_num, before_text, after_num, after_text, audit_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			`INSERT INTO last_writes (dry_run, object_id, field, account_id,
				value_num, value_text, time_ns, group_name, rule, audit_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT (dry_run, object_id, field) DO UPDATE SET
					account_id = excluded.account_id, value_num = excluded.value_num,
					value_text = excluded.value_text, time_ns = excluded.time_ns,
					group_name = excluded.group_name, rule = excluded.rule, audit_id = excluded.audit_id
				WHERE excluded.time_ns >= last_writes.time_ns`,
		}, [2][]any{
			{ns(c.Time), c.DryRun, c.RunID, c.Group, c.Rule, c.AccountID, c.ObjectID, c.Field, bn, bt, an, at, auditID},
			{c.DryRun, c.ObjectID, c.Field, c.AccountID, an, at, ns(c.Time), c.Group, c.Rule, auditID},
		}, nil
}

// LastWrites implements HistoryStore.
func (s *Postgres) LastWrites(ctx context.Context, dryRun bool, objectIDs []string) ([]LastWrite, error) {
	if len(objectIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT object_id, field, dry_run, account_id, value_num, value_text,
			time_ns, group_name, rule, audit_id
		FROM last_writes WHERE dry_run = $1 AND object_id = ANY($2::text[])
		ORDER BY object_id, field`, dryRun, objectIDs)
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
func (s *Postgres) SetHolds(ctx context.Context, holds []Hold) error {
	if len(holds) == 0 {
		return nil
	}
	return s.inTx(ctx, "set holds", func(tx pgx.Tx) error {
		return sendBatch(ctx, tx, len(holds), func(i int) (string, []any, error) {
			h := holds[i]
			if h.ObjectID == "" || h.Field == "" || h.Reason == "" || h.Until.IsZero() {
				return "", nil, fmt.Errorf("hold %q %q: object id, field, reason and until are required", h.ObjectID, h.Field)
			}
			return `INSERT INTO holds (dry_run, object_id, field, reason, until_ns) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (dry_run, object_id, field, reason) DO UPDATE SET until_ns = excluded.until_ns`,
				[]any{h.DryRun, h.ObjectID, h.Field, h.Reason, ns(h.Until)}, nil
		}, func(i int, br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("hold %s %s: %w", holds[i].ObjectID, holds[i].Field, err)
			}
			return nil
		})
	})
}

// ActiveHolds implements HistoryStore.
func (s *Postgres) ActiveHolds(ctx context.Context, dryRun bool, objectIDs []string, at time.Time) ([]Hold, error) {
	if len(objectIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT object_id, field, reason, dry_run, until_ns FROM holds
		WHERE dry_run = $1 AND until_ns > $2 AND object_id = ANY($3::text[])
		ORDER BY object_id, field, reason`, dryRun, unixNano(at), objectIDs)
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
func (s *Postgres) PruneHistory(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, "prune history", func(tx pgx.Tx) error {
		n = 0
		for _, q := range []string{
			`DELETE FROM changes WHERE time_ns < $1`,
			`DELETE FROM holds WHERE until_ns < $1`,
		} {
			tag, err := tx.Exec(ctx, q, unixNano(cutoff))
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	return n, err
}
