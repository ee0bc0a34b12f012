package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/state"
)

// KindUndo is the action kind of the audit record `rulesd undo` leaves.
const KindUndo = "undo"

// LabelUndoOf is the label of an undo's audit record naming the action it undid.
const LabelUndoOf = "undo_of"

// ErrUndoRefused is wrapped by the error Undo returns when the action may not be
// undone (nothing was written): not an applied write, no longer the latest change to
// its field, or changed since by someone else.
var ErrUndoRefused = errors.New("refused")

// ErrUndoFailed is wrapped by the error Undo returns when the restoring write was sent
// and did not apply; the UndoResult describes it and its audit record.
var ErrUndoFailed = errors.New("failed")

// UndoOptions select the action to undo.
type UndoOptions struct {
	ConfigPath string
	ActionID   int64 // the audit record id (GET /api/v1/actions "id")
	// DryRun checks everything and writes nothing, to the API or the store.
	DryRun bool
	Logger *zap.Logger
	Now    func() time.Time
}

// UndoResult is what an undo did (or, dry, would do).
type UndoResult struct {
	// Action is the audit record undone.
	Action state.AuditRecord
	// ObjectName is the object's name now (the record's when the API gave none).
	ObjectName string
	// Currency of the account, for money fields ("" for status).
	Currency string
	// From is the value the field holds (the action's after); To the value restored
	// (the action's before). Both for people: a status, or money in major units
	// with the currency ("60.00 USD").
	From, To string
	// DryRun: nothing was written. DryRunReason says why ("--dry-run", or the config).
	DryRun       bool
	DryRunReason string
	// Applied: the object holds To now.
	Applied bool
	// Unknown: the write's answer was lost and the object could not be read back;
	// its intent is left for the daemon's reconciliation.
	Unknown bool
	// Reason the write did not apply.
	Reason string
	// UndoID is the id of the undo's own audit record (0 when dry).
	UndoID int64
	// HoldUntil: rules leave the field alone until then (the manual hold set, or
	// that would be set).
	HoldUntil time.Time
}

// Undo restores the before value of an applied action (SPEC 4, "rulesd undo") when it
// is still the latest change rulesd made to that object's field and the field still
// holds the value rulesd wrote. The write goes through the executor (batched, read
// back), is recorded as an audit record of kind "undo" (group and rule of the
// action, label undo_of) with its change, and starts a manual hold on the field so
// that the rules leave it alone for safety.manual_hold.
//
// A refusal returns an error wrapping ErrUndoRefused; a write that did not apply
// returns the result and an error wrapping ErrUndoFailed.
func Undo(ctx context.Context, opts UndoOptions) (*UndoResult, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cfg, diags := config.Load(opts.ConfigPath)
	if cfg == nil {
		return nil, diags.Err()
	}
	store, err := openForUndo(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()

	id := opts.ActionID
	rec, err := store.GetAudit(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, refuse("there is no action %d in the audit log (ids are those of GET /api/v1/actions; records older than state.retention are deleted)", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read action %d: %w", id, err)
	}
	if err := undoable(rec); err != nil {
		return nil, err
	}
	field := rec.Field
	what := describeTarget(rec)

	// The latest change to the field, and nothing left half-written.
	lws, err := store.LastWrites(ctx, false, []string{rec.ObjectID})
	if err != nil {
		return nil, fmt.Errorf("read rulesd's last writes: %w", err)
	}
	var last *state.LastWrite
	for i := range lws {
		if lws[i].Field == field {
			last = &lws[i]
		}
	}
	switch {
	case last == nil:
		return nil, refuse("action %d: the state store has no record of rulesd's last write to the %s", id, what)
	case last.AuditID != id:
		later := "a later change"
		if last.AuditID != 0 {
			later = fmt.Sprintf("a later change (action %d)", last.AuditID)
		}
		return nil, refuse("action %d: %s exists to the %s; only the latest change to a field can be undone", id, later, what)
	}
	unfinished, err := store.UnfinishedIntents(ctx, rec.AccountID)
	if err != nil {
		return nil, fmt.Errorf("read unfinished writes: %w", err)
	}
	for _, in := range unfinished {
		if in.ObjectID == rec.ObjectID && in.Field == field {
			return nil, refuse("action %d: a write to the %s (intent %d) is still unfinished; the daemon reconciles it first", id, what, in.ID)
		}
	}
	kill, err := store.KillSwitchesFor(ctx, rec.Group, rec.AccountID)
	if err != nil {
		return nil, fmt.Errorf("read kill switches: %w", err)
	}
	if len(kill) > 0 {
		return nil, refuse("action %d: the kill switch is engaged (%s): no writes until POST /api/v1/resume", id, killText(kill[0]))
	}

	// The object as it is now.
	g, err := newGraph(cfg, nil, log, graphOptions{})
	if err != nil {
		return nil, err
	}
	res := &UndoResult{Action: rec, ObjectName: rec.ObjectName}
	if field != state.FieldStatus {
		reader, err := insights.NewReader(insights.Options{Graph: g, Config: cfg, Logger: log})
		if err != nil {
			return nil, err
		}
		acct, err := reader.Account(ctx, rec.AccountID)
		if err != nil {
			return nil, fmt.Errorf("action %d: read account %s: %s", id, rec.AccountID, actions.DescribeError(err))
		}
		res.Currency = acct.Currency
	}
	res.From, res.To = formatValue(rec.After, res.Currency), formatValue(rec.Before, res.Currency)
	cur, err := actions.ReadField(ctx, g, rec.AccountID, rec.ObjectID, field)
	if err != nil {
		return nil, fmt.Errorf("action %d: read the %s: %s", id, what, actions.DescribeError(err))
	}
	if cur.Name != "" {
		res.ObjectName = cur.Name
	}
	if !actions.SameValue(field, cur.Value, rec.After) {
		return nil, refuse("action %d: the %s now holds %s, not the %s rulesd wrote: someone changed it",
			id, what, formatValue(cur.Value, res.Currency), res.From)
	}
	if strings.Contains(res.ObjectName, "[rulesd:off]") {
		return nil, refuse("action %d: %s %q is marked [rulesd:off]: rulesd never touches it", id, levelWord(rec.Level), res.ObjectName)
	}

	at := now().UTC()
	hold := manualHold(cfg, rec.AccountID)
	res.HoldUntil = at.Add(hold)
	switch {
	case opts.DryRun:
		res.DryRun, res.DryRunReason = true, "--dry-run"
	case cfg.DryRun:
		res.DryRun, res.DryRunReason = true, "dry_run: true in the config"
	}
	if res.DryRun {
		return res, nil
	}

	runID := "undo-" + at.Format("20060102T150405Z")
	intent := state.Intent{Created: at, RunID: runID, Group: rec.Group, Rule: rec.Rule, AccountID: rec.AccountID,
		Level: rec.Level, ObjectID: rec.ObjectID, ObjectName: res.ObjectName, Kind: KindUndo, Field: field,
		Before: rec.After, Target: rec.Before}
	ids, err := store.RecordIntents(ctx, []state.Intent{intent})
	if err != nil {
		return nil, fmt.Errorf("record the undo's intent: %w", err)
	}
	w := actions.Write{IntentID: ids[0], AccountID: rec.AccountID, ObjectID: rec.ObjectID, Field: field,
		Before: rec.After, Target: rec.Before}
	if s, ok := rec.Before.Status(); ok && s == "PAUSED" {
		w.Priority = true
	}
	// The write and its record finish even when the command is interrupted: the
	// intent must match what reached the API.
	wctx := context.WithoutCancel(ctx)
	out := actions.NewExecutor(g, log.Named("actions")).Apply(wctx, []actions.Write{w})[0]

	labels := map[string]string{}
	for k, v := range rec.Labels {
		labels[k] = v
	}
	labels[LabelUndoOf] = strconv.FormatInt(id, 10)
	audit := state.AuditRecord{Time: at, RunID: runID, Group: rec.Group, Rule: rec.Rule, AccountID: rec.AccountID,
		Level: rec.Level, ObjectID: rec.ObjectID, ObjectName: res.ObjectName, Kind: KindUndo, Field: field,
		Before: rec.After, After: rec.Before, Result: state.ResultApplied, Labels: labels}
	o := state.Outcome{Audit: audit}
	// An unknown outcome leaves the intent unfinished, for the daemon to reconcile,
	// as the engine does.
	if !out.Unknown {
		o.IntentID = out.IntentID
	}
	if out.Applied {
		o.Change = &state.Change{Time: at, RunID: runID, Group: rec.Group, Rule: rec.Rule, AccountID: rec.AccountID,
			ObjectID: rec.ObjectID, Field: field, Before: rec.After, After: rec.Before}
	} else {
		o.Audit.Result, o.Audit.Error = state.ResultFailed, out.Reason
	}
	recIDs, err := store.RecordOutcomes(wctx, []state.Outcome{o})
	if err != nil {
		return nil, fmt.Errorf("record the undo (the write %s): %w", appliedWord(out), err)
	}
	res.UndoID = recIDs[0]
	res.Applied, res.Unknown, res.Reason = out.Applied, out.Unknown, out.Reason

	var holds []state.Hold
	if out.Applied || out.Unknown {
		// The person's value wins (SPEC 4.11): rules leave the field alone.
		holds = append(holds, state.Hold{ObjectID: rec.ObjectID, Field: field, Reason: state.HoldManual, Until: res.HoldUntil})
	}
	if out.Locked {
		holds = append(holds, state.Hold{ObjectID: rec.ObjectID, Field: field, Reason: state.HoldLocked, Until: at.Add(time.Hour)})
	}
	if err := store.SetHolds(wctx, holds); err != nil {
		return res, fmt.Errorf("store the manual hold (the write %s): %w", appliedWord(out), err)
	}
	log.Info("undo", zap.Int64("action", id), zap.Int64("undo_action", res.UndoID), zap.String("account", rec.AccountID),
		zap.String("object_id", rec.ObjectID), zap.String("field", field), zap.String("from", res.From), zap.String("to", res.To),
		zap.Bool("applied", out.Applied), zap.String("error", out.Reason))
	if !out.Applied {
		return res, fmt.Errorf("%w: action %d: %s", ErrUndoFailed, id, out.Reason)
	}
	return res, nil
}

// undoable refuses records that changed nothing rulesd could restore.
func undoable(rec state.AuditRecord) error {
	id := rec.ID
	switch {
	case rec.DryRun || rec.Result == state.ResultDryRun:
		return refuse("action %d was a dry run: it changed nothing", id)
	case rec.Result != state.ResultApplied:
		return refuse("action %d was not applied (result %s): it changed nothing", id, rec.Result)
	}
	switch rec.Field {
	case state.FieldStatus, state.FieldDailyBudget, state.FieldLifetimeBudget, state.FieldBidAmount:
	case "":
		return refuse("action %d (%s) changed no field: there is nothing to restore", id, rec.Kind)
	default:
		return refuse("action %d changed %q, which rulesd does not write", id, rec.Field)
	}
	if !writable(rec.Field, rec.Before) {
		return refuse("action %d: the %s had no value before (%s): there is nothing to restore", id, rec.Field, rec.Before)
	}
	return nil
}

// writable reports whether v can be written to field: a status, or a positive amount.
func writable(field string, v state.Value) bool {
	if field == state.FieldStatus {
		s, ok := v.Status()
		return ok && s != ""
	}
	n, ok := v.Amount()
	return ok && n > 0
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUndoRefused, fmt.Sprintf(format, args...))
}

func appliedWord(r actions.Result) string {
	switch {
	case r.Applied:
		return "was applied"
	case r.Unknown:
		return "may have been applied"
	}
	return "was not applied"
}

// openForUndo opens the configured store. It never creates a SQLite database: without
// one there is no audit log, and so nothing to undo.
func openForUndo(ctx context.Context, cfg *config.Config) (state.Store, error) {
	dsn := cfg.State.DSN
	if cfg.State.Driver == "sqlite" || cfg.State.Driver == "" {
		dsn = cfg.Resolve(dsn)
		if dsn == ":memory:" || strings.Contains(dsn, "mode=memory") {
			return nil, fmt.Errorf("state.dsn is in memory: there is no audit log to undo from")
		}
		if _, err := os.Stat(dsn); err != nil {
			return nil, fmt.Errorf("open state store: %w (rulesd undo needs the daemon's database)", err)
		}
	}
	s, err := state.Open(ctx, cfg.State.Driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open state store: %w", err)
	}
	return s, nil
}

// manualHold is safety.manual_hold of the account (inheriting the global one).
func manualHold(cfg *config.Config, acct string) time.Duration {
	if a, ok := cfg.Account(acct); ok && a.Safety.ManualHold > 0 {
		return a.Safety.ManualHold.Std()
	}
	if d := cfg.Safety.ManualHold.Std(); d > 0 {
		return d
	}
	return config.DefaultManualHold
}

func killText(k state.KillSwitch) string {
	if k.Reason != "" {
		return k.Scope.String() + ": " + k.Reason
	}
	return k.Scope.String()
}

// formatValue renders a field value for people: a status, or money in major units
// with its currency; "unset" for an absent budget or bid.
func formatValue(v state.Value, currency string) string {
	if s, ok := v.Status(); ok {
		return s
	}
	n, ok := v.Amount()
	if !ok || n == 0 {
		return "unset"
	}
	if currency == "" {
		return strconv.FormatInt(n, 10) + " (minor units)"
	}
	if money.Offset(currency) == 1 {
		return strconv.FormatInt(n, 10) + " " + currency
	}
	return strconv.FormatFloat(money.ToMajor(n, currency), 'f', 2, 64) + " " + currency
}

// describeTarget names the field and object of a record: "daily_budget of ad set 'X'".
func describeTarget(rec state.AuditRecord) string {
	return fmt.Sprintf("%s of %s %s", rec.Field, levelWord(rec.Level), quoteName(rec.ObjectName, rec.ObjectID))
}

func quoteName(name, id string) string {
	if name == "" {
		return id
	}
	return "'" + name + "'"
}

// levelWord names a level for people.
func levelWord(level string) string {
	if level == "adset" {
		return "ad set"
	}
	if level == "" {
		return "object"
	}
	return level
}
