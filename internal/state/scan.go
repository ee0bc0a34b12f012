package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// The functions here turn query rows into records for both stores: the SQL differs
// by dialect, the columns it returns do not. Nullable columns are scanned into
// pointers, which database/sql and pgx both set to nil for NULL.

// rowScanner is what *sql.Rows and pgx.Rows have in common.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// fromNS decodes what ns encoded, a nullable nanosecond column scanned into a pointer.
func fromNS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.Unix(0, *v).UTC()
}

// deref returns *p, or 0 for nil (a NULL id).
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// valueCols scans a Value from its two columns.
type valueCols struct {
	num  *int64
	text *string
}

func (c *valueCols) value() Value { return valueFromColumns(c.num, c.text) }

// scanKillSwitches reads rows of group_name, account_id, reason, engaged_by, engaged_ns.
func scanKillSwitches(rows rowScanner) ([]KillSwitch, error) {
	var out []KillSwitch
	for rows.Next() {
		var k KillSwitch
		var t *int64
		if err := rows.Scan(&k.Scope.Group, &k.Scope.AccountID, &k.Reason, &k.By, &t); err != nil {
			return nil, err
		}
		k.EngagedAt = fromNS(t)
		out = append(out, k)
	}
	return out, rows.Err()
}

// scanRunRecords reads rows of group_name, account_id, run_id, scheduled_ns,
// started_ns, ended_ns, result, error, counts.
func scanRunRecords(rows rowScanner) ([]RunRecord, error) {
	var out []RunRecord
	for rows.Next() {
		var r RunRecord
		var sched, start, end *int64
		var counts string
		if err := rows.Scan(&r.Group, &r.AccountID, &r.RunID, &sched, &start, &end, &r.Result, &r.Error, &counts); err != nil {
			return nil, err
		}
		r.Scheduled, r.Started, r.Ended = fromNS(sched), fromNS(start), fromNS(end)
		if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
			return nil, fmt.Errorf("%s/%s counts: %w", r.Group, r.AccountID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanAudit reads one row of auditColumns.
func scanAudit(row interface{ Scan(dest ...any) error }) (AuditRecord, error) {
	var r AuditRecord
	var t *int64
	var before, after valueCols
	var labels, vals string
	if err := row.Scan(&r.ID, &t, &r.RunID, &r.Group, &r.Rule, &r.AccountID, &r.Level, &r.ObjectID,
		&r.ObjectName, &r.Kind, &r.Field, &before.num, &before.text, &after.num, &after.text,
		&r.Result, &r.CappedBy, &r.Error, &labels, &vals, &r.DryRun); err != nil {
		return r, err
	}
	r.Time, r.Before, r.After = fromNS(t), before.value(), after.value()
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return r, fmt.Errorf("record %d: labels: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(vals), &r.Values); err != nil {
		return r, fmt.Errorf("record %d: values: %w", r.ID, err)
	}
	return r, nil
}

// scanAuditRecords reads rows of auditColumns.
func scanAuditRecords(rows rowScanner) ([]AuditRecord, error) {
	var out []AuditRecord
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scanCooldowns reads rows of object_id, until_ns into out.
func scanCooldowns(rows rowScanner, out map[string]time.Time) error {
	for rows.Next() {
		var id string
		var until *int64
		if err := rows.Scan(&id, &until); err != nil {
			return err
		}
		out[id] = fromNS(until)
	}
	return rows.Err()
}

// scanChanges reads rows of id, time_ns, dry_run, run_id, group_name, rule,
// account_id, object_id, field, before_num, before_text, after_num, after_text, audit_id.
func scanChanges(rows rowScanner) ([]Change, error) {
	var out []Change
	for rows.Next() {
		var c Change
		var t, auditID *int64
		var before, after valueCols
		if err := rows.Scan(&c.ID, &t, &c.DryRun, &c.RunID, &c.Group, &c.Rule, &c.AccountID,
			&c.ObjectID, &c.Field, &before.num, &before.text, &after.num, &after.text, &auditID); err != nil {
			return nil, err
		}
		c.Time, c.Before, c.After, c.AuditID = fromNS(t), before.value(), after.value(), deref(auditID)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanLastWrites reads rows of object_id, field, dry_run, account_id, value_num,
// value_text, time_ns, group_name, rule, audit_id.
func scanLastWrites(rows rowScanner) ([]LastWrite, error) {
	var out []LastWrite
	for rows.Next() {
		var w LastWrite
		var v valueCols
		var t, auditID *int64
		if err := rows.Scan(&w.ObjectID, &w.Field, &w.DryRun, &w.AccountID, &v.num, &v.text,
			&t, &w.Group, &w.Rule, &auditID); err != nil {
			return nil, err
		}
		w.Value, w.Time, w.AuditID = v.value(), fromNS(t), deref(auditID)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanHolds reads rows of object_id, field, reason, dry_run, until_ns.
func scanHolds(rows rowScanner) ([]Hold, error) {
	var out []Hold
	for rows.Next() {
		var h Hold
		var until *int64
		if err := rows.Scan(&h.ObjectID, &h.Field, &h.Reason, &h.DryRun, &until); err != nil {
			return nil, err
		}
		h.Until = fromNS(until)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanIntents reads rows of id, created_ns, run_id, group_name, rule, account_id,
// level, object_id, object_name, kind, field, before_num, before_text, target_num,
// target_text.
func scanIntents(rows rowScanner) ([]Intent, error) {
	var out []Intent
	for rows.Next() {
		var in Intent
		var created *int64
		var before, target valueCols
		if err := rows.Scan(&in.ID, &created, &in.RunID, &in.Group, &in.Rule, &in.AccountID, &in.Level,
			&in.ObjectID, &in.ObjectName, &in.Kind, &in.Field, &before.num, &before.text,
			&target.num, &target.text); err != nil {
			return nil, err
		}
		in.Created, in.Before, in.Target = fromNS(created), before.value(), target.value()
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanPending reads rows of object_id, since_ns, last_eval_ns into m, or, when m is
// nil, onto *list.
func scanPending(rows rowScanner, m map[string]Pending, list *[]Pending) error {
	for rows.Next() {
		var p Pending
		var since, last *int64
		if err := rows.Scan(&p.ObjectID, &since, &last); err != nil {
			return err
		}
		p.Since, p.LastEval = fromNS(since), fromNS(last)
		if m != nil {
			m[p.ObjectID] = p
		} else {
			*list = append(*list, p)
		}
	}
	return rows.Err()
}
