package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const pgInsertAuditSQL = `INSERT INTO audit (time_ns, run_id, group_name, rule, account_id, level, object_id,
	object_name, kind, field, before_num, before_text, after_num, after_text, result, capped_by,
	error, labels, vals, dry_run)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
	RETURNING id`

// pgAuditArgs checks r and returns the arguments of pgInsertAuditSQL.
func pgAuditArgs(r AuditRecord) ([]any, error) {
	if r.Time.IsZero() {
		return nil, errRequired("time")
	}
	if r.Result == "" {
		return nil, errRequired("result")
	}
	labels, err := json.Marshal(nonNil(r.Labels))
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	vals, err := json.Marshal(nonNil(r.Values))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	bn, bt := r.Before.columns()
	an, at := r.After.columns()
	// JSON as a string: pgx sends it to the jsonb column as it is.
	return []any{ns(r.Time), r.RunID, r.Group, r.Rule, r.AccountID, r.Level, r.ObjectID,
		r.ObjectName, r.Kind, r.Field, bn, bt, an, at, r.Result, r.CappedBy, r.Error,
		string(labels), string(vals), r.DryRun}, nil
}

// AppendAudit implements AuditLog.
func (s *Postgres) AppendAudit(ctx context.Context, records ...AuditRecord) ([]int64, error) {
	if len(records) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(records))
	err := s.inTx(ctx, "append audit", func(tx pgx.Tx) error {
		return sendBatch(ctx, tx, len(records), func(i int) (string, []any, error) {
			r := records[i]
			args, err := pgAuditArgs(r)
			if err != nil {
				return "", nil, fmt.Errorf("record %d (%s/%s %s): %w", i, r.Group, r.Rule, r.ObjectID, err)
			}
			return pgInsertAuditSQL, args, nil
		}, func(i int, br pgx.BatchResults) error {
			if err := br.QueryRow().Scan(&ids[i]); err != nil {
				r := records[i]
				return fmt.Errorf("record %d (%s/%s %s): %w", i, r.Group, r.Rule, r.ObjectID, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// QueryAudit implements AuditLog.
func (s *Postgres) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	for _, f := range []struct{ col, val string }{
		{"group_name", q.Group}, {"rule", q.Rule}, {"object_id", q.ObjectID},
		{"account_id", q.AccountID}, {"result", q.Result},
	} {
		if f.val != "" {
			add(f.col+" =", f.val)
		}
	}
	if q.DryRun != nil {
		add("dry_run =", *q.DryRun)
	}
	if !q.Since.IsZero() {
		add("time_ns >=", unixNano(q.Since))
	}
	if !q.Until.IsZero() {
		add("time_ns <", unixNano(q.Until))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	query := "SELECT " + auditColumns + " FROM audit"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	query += " ORDER BY time_ns DESC, id DESC LIMIT $" + strconv.Itoa(len(args))
	out, err := s.queryAudit(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

func (s *Postgres) queryAudit(ctx context.Context, query string, args ...any) ([]AuditRecord, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAuditRecords(rows)
}

// GetAudit implements AuditLog.
func (s *Postgres) GetAudit(ctx context.Context, id int64) (AuditRecord, error) {
	r, err := scanAudit(s.pool.QueryRow(ctx, "SELECT "+auditColumns+" FROM audit WHERE id = $1", id))
	if errPgNoRows(err) {
		return AuditRecord{}, fmt.Errorf("get audit %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return AuditRecord{}, fmt.Errorf("get audit %d: %w", id, err)
	}
	return r, nil
}

// LastAudit implements AuditLog.
func (s *Postgres) LastAudit(ctx context.Context, key AuditKey, objectIDs []string) (map[string]AuditRecord, error) {
	out := make(map[string]AuditRecord)
	if len(objectIDs) == 0 {
		return out, nil
	}
	// DISTINCT ON keeps the first row of each object in the ORDER BY: the newest by
	// time, then id (ids follow insertion, not necessarily time).
	recs, err := s.queryAudit(ctx, `SELECT DISTINCT ON (object_id) `+auditColumns+` FROM audit
		WHERE group_name = $1 AND rule = $2 AND result = $3 AND dry_run = $4 AND object_id = ANY($5::text[])
		ORDER BY object_id, time_ns DESC, id DESC`,
		key.Group, key.Rule, key.Result, key.DryRun, objectIDs)
	if err != nil {
		return nil, fmt.Errorf("last audit %s/%s %s: %w", key.Group, key.Rule, key.Result, err)
	}
	for _, r := range recs {
		out[r.ObjectID] = r
	}
	return out, nil
}

// PruneAudit implements AuditLog. It deletes in batches of pruneBatch records, each
// its own statement, so that no transaction holds many row locks for long.
func (s *Postgres) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.exec(ctx, "prune audit", `DELETE FROM audit WHERE id IN
			(SELECT id FROM audit WHERE time_ns < $1 LIMIT $2)`, unixNano(cutoff), pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
