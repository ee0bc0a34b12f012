package engine

import (
	"math"
	"strings"
	"time"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// Results the engine gives beyond the audit log's: a match still waiting for its
// for: to elapse, and (for preview) a write that would be sent.
const (
	ResultPending    = "pending"
	ResultWouldApply = "would_apply"
	resultToApply    = "" // a write to send; the executor decides applied or failed
)

// Decision is what a run decided for one (rule, object) match.
type Decision struct {
	Rule    *rules.Rule
	Account string
	Object  *insights.Object
	Row     *rules.Row
	Change  actions.Change
	// Result is a state.Result* value, ResultPending, or "" for a write to send.
	Result string
	Error  string
	Dry    bool
	// Permanent failures start the cooldown.
	Permanent bool
	// AuditID is the audit record's id once recorded (0 when the record was a
	// repeated skip, counted but not written again).
	AuditID int64
	// Values are the names the rule read and their values for this object.
	Values map[string]state.Scalar
	// PendingSince is when the condition started holding (rules with for:).
	PendingSince time.Time
	// hold is a hold the decision starts (manual, flapping).
	hold *state.Hold
	// restore marks the unpause of an object the rule paused restore_after ago.
	restore bool
}

// Kind is what the decision does: the rule's action, or unpause for a restore.
func (d *Decision) Kind() rules.ActionKind {
	if d.restore {
		return rules.Unpause
	}
	return d.Rule.Action.Kind
}

// IsWrite reports whether the decision would change the object.
func (d *Decision) IsWrite() bool { return d.Change.Field != "" }

// field is the state field the change writes.
func (d *Decision) field() string { return d.Change.Field }

// before and after as state values.
func (d *Decision) before() state.Value {
	switch {
	case d.Change.Field == actions.FieldStatus:
		return state.Status(d.Change.BeforeStr)
	case d.Change.Field != "":
		return state.Amount(d.Change.Before)
	}
	return state.Value{}
}

func (d *Decision) after() state.Value {
	switch {
	case d.Change.Field == actions.FieldStatus:
		return state.Status(d.Change.AfterStr)
	case d.Change.Field != "" && d.Change.Result != actions.ResultFailed:
		return state.Amount(d.Change.After)
	}
	return state.Value{}
}

// direction is +1 for an unpause or increase, -1 for a pause or decrease.
func (d *Decision) direction() int {
	switch {
	case d.Change.Field == "":
		return 0
	case d.Change.Increase():
		return 1
	}
	return -1
}

// audit turns the decision into its audit record.
func (d *Decision) audit(runID string, at time.Time) state.AuditRecord {
	r := d.Rule
	result := d.Result
	return state.AuditRecord{
		Time: at, RunID: runID, Group: r.Group.Name, Rule: r.Name, AccountID: d.Account,
		Level: r.Level.String(), ObjectID: d.Object.ID, ObjectName: d.Object.Name,
		Kind: d.Kind().String(), Field: d.field(), Before: d.before(), After: d.after(),
		Result: result, CappedBy: d.Change.CappedBy, Error: d.Error, Labels: r.Labels,
		Values: d.Values, DryRun: d.Dry,
	}
}

// valuesOf collects what the rule saw for the audit log and preview.
func valuesOf(r *rules.Rule, row *rules.Row) map[string]state.Scalar {
	out := make(map[string]state.Scalar, len(r.Values))
	for _, v := range r.Values {
		switch x := v.Get(row).(type) {
		case float64:
			out[v.Name] = state.Number(x)
		case string:
			out[v.Name] = state.Text(x)
		case bool:
			if x {
				out[v.Name] = state.Number(1)
			} else {
				out[v.Name] = state.Number(0)
			}
		default:
			out[v.Name] = state.Null()
		}
	}
	return out
}

// Major renders a state value for people: a status, or money in major units.
func Major(v state.Value, currency string) any {
	if s, ok := v.Status(); ok {
		return s
	}
	if m, ok := v.Amount(); ok {
		return math.Round(money.ToMajor(m, currency)*1e6) / 1e6
	}
	return nil
}

// offByName reports objects their owners took out of rulesd's hands (SPEC 4.11).
func offByName(o *insights.Object) bool { return strings.Contains(o.Name, "[rulesd:off]") }

// Before is the decision's before value as stored.
func Before(d *Decision) state.Value { return d.before() }

// After is the decision's after value as stored.
func After(d *Decision) state.Value { return d.after() }

// ScalarAny returns a Scalar as a float64, a string or nil.
func ScalarAny(s state.Scalar) any { return scalarAny(s) }
