package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EngageKillSwitch implements KillSwitches.
func (s *SQLite) EngageKillSwitch(ctx context.Context, k KillSwitch) error {
	if k.EngagedAt.IsZero() {
		return fmt.Errorf("engage kill switch: %w", errRequired("engaged time"))
	}
	_, err := s.exec(ctx, "engage kill switch", `INSERT INTO kill_switches (group_name, account_id, reason, engaged_by, engaged_ns)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (group_name, account_id) DO UPDATE SET
			reason = excluded.reason, engaged_by = excluded.engaged_by, engaged_ns = excluded.engaged_ns`,
		k.Scope.Group, k.Scope.AccountID, k.Reason, k.By, ns(k.EngagedAt))
	return err
}

// ReleaseKillSwitch implements KillSwitches.
func (s *SQLite) ReleaseKillSwitch(ctx context.Context, scope KillScope) (bool, error) {
	n, err := s.exec(ctx, "release kill switch", `DELETE FROM kill_switches WHERE group_name = ? AND account_id = ?`,
		scope.Group, scope.AccountID)
	return n > 0, err
}

// ListKillSwitches implements KillSwitches.
func (s *SQLite) ListKillSwitches(ctx context.Context) ([]KillSwitch, error) {
	out, err := s.queryKillSwitches(ctx, `SELECT group_name, account_id, reason, engaged_by, engaged_ns
		FROM kill_switches ORDER BY group_name, account_id`)
	if err != nil {
		return nil, fmt.Errorf("list kill switches: %w", err)
	}
	return out, nil
}

// KillSwitchesFor implements KillSwitches.
func (s *SQLite) KillSwitchesFor(ctx context.Context, group, accountID string) ([]KillSwitch, error) {
	out, err := s.queryKillSwitches(ctx, `SELECT group_name, account_id, reason, engaged_by, engaged_ns
		FROM kill_switches
		WHERE (group_name = '' OR group_name = ?) AND (account_id = '' OR account_id = ?)
		ORDER BY group_name, account_id`, group, accountID)
	if err != nil {
		return nil, fmt.Errorf("kill switches for %s/%s: %w", group, accountID, err)
	}
	return out, nil
}

func (s *SQLite) queryKillSwitches(ctx context.Context, query string, args ...any) ([]KillSwitch, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanKillSwitches(rows)
}

// RecordRun implements RunLog.
func (s *SQLite) RecordRun(ctx context.Context, r RunRecord) error {
	if r.Group == "" || r.AccountID == "" {
		return fmt.Errorf("record run: %w", errRequired("group and account"))
	}
	counts, err := json.Marshal(nonNil(r.Counts))
	if err != nil {
		return fmt.Errorf("record run: counts: %w", err)
	}
	_, err = s.exec(ctx, "record run", `INSERT INTO runs (group_name, account_id, run_id, scheduled_ns, started_ns,
			ended_ns, result, error, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_name, account_id) DO UPDATE SET run_id = excluded.run_id,
			scheduled_ns = excluded.scheduled_ns, started_ns = excluded.started_ns, ended_ns = excluded.ended_ns,
			result = excluded.result, error = excluded.error, counts = excluded.counts`,
		r.Group, r.AccountID, r.RunID, ns(r.Scheduled), ns(r.Started), ns(r.Ended), r.Result, r.Error, string(counts))
	return err
}

// LastRuns implements RunLog.
func (s *SQLite) LastRuns(ctx context.Context) ([]RunRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT group_name, account_id, run_id, scheduled_ns, started_ns, ended_ns,
		result, error, counts FROM runs ORDER BY group_name, account_id`)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	defer rows.Close()
	out, err := scanRunRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	return out, nil
}

// TryAcquire implements Leaser. One statement decides: the upsert replaces the row
// only for a later tick (or re-grants the same tick to the same owner), and RETURNING
// yields a row only when it did. A single statement is atomic in SQLite and, in
// PostgreSQL, the row lock of ON CONFLICT DO UPDATE makes it so, so no replica can
// see the old row and both win.
func (s *SQLite) TryAcquire(ctx context.Context, group, accountID string, tick time.Time, owner string) (bool, error) {
	if owner == "" || tick.IsZero() {
		return false, fmt.Errorf("acquire lease %s/%s: %w", group, accountID, errRequired("owner and tick"))
	}
	var got string
	err := s.w.QueryRowContext(ctx, `INSERT INTO leases (group_name, account_id, tick_ns, owner, acquired_ns)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (group_name, account_id) DO UPDATE SET
			tick_ns = excluded.tick_ns, owner = excluded.owner, acquired_ns = excluded.acquired_ns
		WHERE excluded.tick_ns > leases.tick_ns
			OR (excluded.tick_ns = leases.tick_ns AND excluded.owner = leases.owner)
		RETURNING owner`,
		group, accountID, unixNano(tick), owner, time.Now().UnixNano()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("acquire lease %s/%s: %w", group, accountID, err)
	}
	return got == owner, nil
}
