package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const auditColumns = `id, time_ns, run_id, group_name, rule, account_id, level, object_id, object_name,
	kind, field, before_num, before_text, after_num, after_text, result, capped_by, error,
	labels, vals, dry_run`

const insertAuditSQL = `INSERT INTO audit (time_ns, run_id, group_name, rule, account_id, level, object_id,
	object_name, kind, field, before_num, before_text, after_num, after_text, result, capped_by,
	error, labels, vals, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertAudit appends r through st (a prepared insertAuditSQL) and returns its id.
func insertAudit(ctx context.Context, st *sql.Stmt, r AuditRecord) (int64, error) {
	if r.Time.IsZero() {
		return 0, errRequired("time")
	}
	if r.Result == "" {
		return 0, errRequired("result")
	}
	labels, err := json.Marshal(nonNil(r.Labels))
	if err != nil {
		return 0, fmt.Errorf("labels: %w", err)
	}
	vals, err := json.Marshal(nonNil(r.Values))
	if err != nil {
		return 0, fmt.Errorf("values: %w", err)
	}
	bn, bt := r.Before.columns()
	an, at := r.After.columns()
	res, err := st.ExecContext(ctx, ns(r.Time), r.RunID, r.Group, r.Rule, r.AccountID, r.Level, r.ObjectID,
		r.ObjectName, r.Kind, r.Field, bn, bt, an, at, r.Result, r.CappedBy, r.Error,
		string(labels), string(vals), boolInt(r.DryRun))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// nonNil returns m, or an empty map for nil, so the column always holds a JSON object.
func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// AppendAudit implements AuditLog.
func (s *SQLite) AppendAudit(ctx context.Context, records ...AuditRecord) ([]int64, error) {
	if len(records) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(records))
	err := s.inTx(ctx, "append audit", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, insertAuditSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, r := range records {
			id, err := insertAudit(ctx, st, r)
			if err != nil {
				return fmt.Errorf("record %d (%s/%s %s): %w", i, r.Group, r.Rule, r.ObjectID, err)
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

// QueryAudit implements AuditLog.
func (s *SQLite) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	for _, f := range []struct{ col, val string }{
		{"group_name", q.Group}, {"rule", q.Rule}, {"object_id", q.ObjectID},
		{"account_id", q.AccountID}, {"result", q.Result},
	} {
		if f.val != "" {
			add(f.col+" = ?", f.val)
		}
	}
	if q.DryRun != nil {
		add("dry_run = ?", boolInt(*q.DryRun))
	}
	if !q.Since.IsZero() {
		add("time_ns >= ?", unixNano(q.Since))
	}
	if !q.Until.IsZero() {
		add("time_ns < ?", unixNano(q.Until))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	query := "SELECT " + auditColumns + " FROM audit"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY time_ns DESC, id DESC LIMIT ?"
	args = append(args, limit)
	out, err := s.queryAudit(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

func (s *SQLite) queryAudit(ctx context.Context, query string, args ...any) ([]AuditRecord, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAuditRecords(rows)
}

// GetAudit implements AuditLog.
func (s *SQLite) GetAudit(ctx context.Context, id int64) (AuditRecord, error) {
	r, err := scanAudit(s.r.QueryRowContext(ctx, "SELECT "+auditColumns+" FROM audit WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return AuditRecord{}, fmt.Errorf("get audit %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return AuditRecord{}, fmt.Errorf("get audit %d: %w", id, err)
	}
	return r, nil
}

// LastAudit implements AuditLog.
func (s *SQLite) LastAudit(ctx context.Context, key AuditKey, objectIDs []string) (map[string]AuditRecord, error) {
	out := make(map[string]AuditRecord)
	if len(objectIDs) == 0 {
		return out, nil
	}
	// ROW_NUMBER rather than MAX(id): ids follow insertion, not necessarily time.
	recs, err := s.queryAudit(ctx, `SELECT `+auditColumns+` FROM (
			SELECT *, ROW_NUMBER() OVER (PARTITION BY object_id ORDER BY time_ns DESC, id DESC) AS rn
			FROM audit WHERE group_name = ? AND rule = ? AND result = ? AND dry_run = ?
			AND object_id IN (SELECT value FROM json_each(?))
		) WHERE rn = 1`,
		key.Group, key.Rule, key.Result, boolInt(key.DryRun), jsonIDs(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("last audit %s/%s %s: %w", key.Group, key.Rule, key.Result, err)
	}
	for _, r := range recs {
		out[r.ObjectID] = r
	}
	return out, nil
}

// pruneBatch bounds the rows one retention statement deletes, so that the first prune
// of a large log holds the single writer for short moments rather than one long one.
const pruneBatch = 5000

// PruneAudit implements AuditLog. It deletes in batches of pruneBatch records.
func (s *SQLite) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.exec(ctx, "prune audit", `DELETE FROM audit WHERE id IN
			(SELECT id FROM audit WHERE time_ns < ? LIMIT ?)`, unixNano(cutoff), pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
