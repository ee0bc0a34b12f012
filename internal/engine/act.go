package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// decideAndAct plans a run for one account, then records and executes it:
// intents before writes, outcomes after, in the store; metrics, logs and
// notifications for every decision.
func (e *Engine) decideAndAct(ctx context.Context, l *loaded, g *rules.Group, acct config.Account, snap *insights.Snapshot, out *AccountRun) error {
	at := snap.At
	p, err := e.plan(ctx, g, acct, snap, e.opts.DryRun)
	if err != nil {
		return err
	}
	decisions := p.decisions
	out.Decisions, out.Stats = decisions, p.stats
	if err := e.savePending(ctx, g, acct.ID, snap, decisions, p.pendings); err != nil {
		return err
	}
	// The kill switch is checked again right before the write batch.
	kill, err := e.opts.Store.KillSwitchesFor(ctx, g.Name, acct.ID)
	if err != nil {
		return fmt.Errorf("read kill switches: %w", err)
	}
	var writes []actions.Write
	var writing []*Decision
	var intents []state.Intent
	for _, d := range decisions {
		if d.Result != resultToApply {
			continue
		}
		if !d.IsWrite() {
			d.Result = state.ResultApplied // a notification: sent with the run's digest
			continue
		}
		if len(kill) > 0 {
			d.Result, d.Error = state.ResultBlockedGuard, "kill switch engaged: "+kill[0].Reason
			continue
		}
		if e.authBadFor(acct) {
			d.Result, d.Error = state.ResultFailed, "not sent: the access token failed authentication; writes are stopped until a read succeeds"
			continue
		}
		writing = append(writing, d)
		intents = append(intents, state.Intent{
			Created: at, RunID: out.RunID, Group: g.Name, Rule: d.Rule.Name, AccountID: acct.ID,
			Level: d.Rule.Level.String(), ObjectID: d.Object.ID, ObjectName: d.Object.Name,
			Kind: d.Kind().String(), Field: d.field(), Before: d.before(), Target: d.after(),
		})
	}
	var results []actions.Result
	if len(intents) > 0 {
		// Checked before the intents are stored: an intent never sent nor reconciled
		// would hold its field back for ever.
		if e.opts.Executor == nil {
			return fmt.Errorf("no executor to send %d writes", len(intents))
		}
		ids, err := e.opts.Store.RecordIntents(ctx, intents)
		if err != nil {
			return fmt.Errorf("record intents: %w", err)
		}
		for i, d := range writing {
			writes = append(writes, actions.Write{IntentID: ids[i], AccountID: acct.ID, ObjectID: d.Object.ID, Field: d.field(),
				Before: d.before(), Target: d.after(), Priority: d.Kind() == rules.Pause})
		}
		// Writes in flight finish even when the run is cancelled (SIGTERM): the
		// intents must match what reached the API.
		results = e.opts.Executor.Apply(context.WithoutCancel(ctx), writes)
	}
	return e.record(ctx, g, acct, snap, out, decisions, writing, results, at, p.state.newHolds)
}

// savePending stores for: state: matches still waiting are kept, acted or
// non-matching objects reset.
func (e *Engine) savePending(ctx context.Context, g *rules.Group, acct string, snap *insights.Snapshot, ds []*Decision, pendings map[*rules.Rule]map[string]state.Pending) error {
	for r, pend := range pendings {
		scope := state.RuleScope{Group: g.Name, Rule: r.Name, AccountID: acct}
		var keep []state.Pending
		reset := map[string]bool{}
		if t := snap.Tables[r.Level]; t != nil {
			for i := range t.Objects {
				if _, matched := pend[t.Objects[i].ID]; !matched {
					reset[t.Objects[i].ID] = true
				}
			}
		}
		for _, d := range ds {
			if d.Rule != r {
				continue
			}
			switch d.Result {
			case resultToApply, state.ResultApplied, state.ResultDryRun, state.ResultFailed:
				reset[d.Object.ID] = true // the rule acts: pending starts over (SPEC 4.1)
			default:
				// Still waiting, or held back by a guard (cooldown, pacing, a person,
				// the kill switch...): the condition still holds and the rule has not
				// acted, so its for: clock keeps running.
				if p, ok := pend[d.Object.ID]; ok {
					keep = append(keep, p)
				}
			}
		}
		if len(keep) > 0 {
			if err := e.opts.Store.PutPending(ctx, scope, keep); err != nil {
				return fmt.Errorf("store pending: %w", err)
			}
		}
		if len(reset) > 0 {
			ids := make([]string, 0, len(reset))
			for id := range reset {
				ids = append(ids, id)
			}
			if err := e.opts.Store.DeletePending(ctx, scope, ids); err != nil {
				return fmt.Errorf("reset pending: %w", err)
			}
		}
	}
	return nil
}

// record turns decisions and write results into outcomes, cooldowns and holds, and
// reports them.
func (e *Engine) record(ctx context.Context, g *rules.Group, acct config.Account, snap *insights.Snapshot, out *AccountRun, ds []*Decision, writing []*Decision, results []actions.Result, at time.Time, holds []state.Hold) error {
	byDecision := map[*Decision]actions.Result{}
	for i, d := range writing {
		if i < len(results) {
			byDecision[d] = results[i]
		}
	}
	// Repeated skips are recorded once per cooldown period (SPEC 4).
	recent := map[state.AuditKey]map[string]state.AuditRecord{}
	skipSeen := func(d *Decision) bool {
		if !strings.HasPrefix(d.Result, "skipped_") {
			return false
		}
		key := state.AuditKey{Group: g.Name, Rule: d.Rule.Name, Result: d.Result, DryRun: d.Dry}
		m, ok := recent[key]
		if !ok {
			var ids []string
			for _, x := range ds {
				if x.Rule == d.Rule {
					ids = append(ids, x.Object.ID)
				}
			}
			var err error
			if m, err = e.opts.Store.LastAudit(ctx, key, ids); err != nil {
				m = nil
			}
			recent[key] = m
		}
		rec, ok := m[d.Object.ID]
		return ok && at.Sub(rec.Time) < d.Rule.Cooldown
	}
	var outcomes []state.Outcome
	var recorded []*Decision
	var cooldowns []state.Cooldown
	authAlert := ""
	for _, d := range ds {
		if d.Result == ResultPending {
			continue
		}
		o := state.Outcome{}
		if res, ok := byDecision[d]; ok {
			// An unknown outcome leaves the intent unfinished: reconciliation settles it
			// (and records the change) once the object can be read.
			if !res.Unknown {
				o.IntentID = res.IntentID
			}
			if res.Applied {
				d.Result = state.ResultApplied
			} else {
				d.Result, d.Error, d.Permanent = state.ResultFailed, res.Reason, res.Permanent
			}
			if res.Locked {
				holds = append(holds, state.Hold{ObjectID: d.Object.ID, Field: d.field(), Reason: state.HoldLocked, Until: at.Add(time.Hour)})
			}
			if res.Auth && e.setAuth(acct, false) {
				authAlert = d.Error
			}
		}
		if d.hold != nil {
			holds = append(holds, *d.hold)
		}
		e.opts.Metrics.Actions.WithLabelValues(g.Name, d.Rule.Name, acct.ID, d.Kind().String(), d.Result).Inc()
		if d.Result == state.ResultBlockedGuard && strings.HasPrefix(d.Error, "blast-radius") {
			out.GuardTripped = true
		}
		acted := d.Result == state.ResultApplied || d.Result == state.ResultDryRun || (d.Result == state.ResultFailed && d.Permanent)
		if acted {
			cooldowns = append(cooldowns, state.Cooldown{Group: g.Name, Rule: d.Rule.Name, ObjectID: d.Object.ID, DryRun: d.Dry, Until: at.Add(d.Rule.Cooldown)})
		}
		if skipSeen(d) {
			continue
		}
		o.Audit = d.audit(out.RunID, at)
		if d.IsWrite() && (d.Result == state.ResultApplied || d.Result == state.ResultDryRun) {
			o.Change = &state.Change{Time: at, DryRun: d.Dry, RunID: out.RunID, Group: g.Name, Rule: d.Rule.Name,
				AccountID: acct.ID, ObjectID: d.Object.ID, Field: d.field(), Before: d.before(), After: d.after()}
		}
		outcomes = append(outcomes, o)
		recorded = append(recorded, d)
	}
	// The store is written even if the run was cancelled meanwhile: these writes
	// happened.
	sctx := context.WithoutCancel(ctx)
	// Cooldowns first: should storing them fail (or the process die) after the
	// outcomes, the completed intents would leave nothing to stop the next run from
	// applying a relative change again. Stored first, a failure leaves the intents
	// unfinished, and reconciliation records them and starts the cooldowns.
	if len(cooldowns) > 0 {
		if err := e.opts.Store.SetCooldowns(sctx, cooldowns); err != nil {
			return fmt.Errorf("store cooldowns: %w", err)
		}
	}
	if len(outcomes) > 0 {
		ids, err := e.opts.Store.RecordOutcomes(sctx, outcomes)
		if err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		for i, d := range recorded {
			d.AuditID = ids[i]
		}
	}
	if len(holds) > 0 {
		if err := e.opts.Store.SetHolds(sctx, holds); err != nil {
			return fmt.Errorf("store holds: %w", err)
		}
	}
	e.report(g, acct, snap, out, ds)
	if authAlert != "" {
		e.authFailed(acct, snap.At, authAlert)
	}
	return nil
}

// authFailed logs and notifies that Meta refused an account's token: writes with it
// stop until a read with it succeeds (SPEC 4.13).
func (e *Engine) authFailed(acct config.Account, at time.Time, why string) {
	e.opts.Logger.Error("access token refused; writes with it stop until a read with it succeeds",
		zap.String("account", acct.ID), zap.String("error", why))
	if e.opts.Notify == nil {
		return
	}
	for _, n := range e.loaded.Load().cfg.NotifierNames() {
		e.opts.Notify.Send(n, notify.Digest{Kind: notify.KindAuthFailure, Time: at, Accounts: []notify.Account{{ID: acct.ID, Name: acct.Name}},
			Reason: why + "; writes with this token are stopped until a read with it succeeds"})
	}
}

// report logs each action (never sampled: action lines go through at info) and
// sends one digest per notifier.
func (e *Engine) report(g *rules.Group, acct config.Account, snap *insights.Snapshot, out *AccountRun, ds []*Decision) {
	cur := snap.Account.Currency
	var run *notify.Run
	if e.opts.Notify != nil {
		run = e.opts.Notify.StartRun(notify.RunInfo{ID: out.RunID, Group: g.Name, Accounts: []notify.Account{{ID: acct.ID, Name: snap.Account.Name}}})
	}
	guardRules := map[*rules.Rule]string{}
	var flaps []*Decision
	for _, d := range ds {
		if d.Result == ResultPending {
			continue
		}
		fields := []zap.Field{
			zap.String("run_id", out.RunID), zap.String("group", g.Name), zap.String("rule", d.Rule.Name),
			zap.String("account", acct.ID), zap.String("level", d.Rule.Level.String()), zap.String("object_id", d.Object.ID),
			zap.String("object_name", d.Object.Name), zap.String("kind", d.Kind().String()), zap.String("result", d.Result),
		}
		if d.IsWrite() {
			fields = append(fields, zap.String("field", d.field()), zap.Any("before", Major(d.before(), cur)), zap.Any("after", Major(d.after(), cur)))
		}
		if d.Change.CappedBy != "" {
			fields = append(fields, zap.String("capped_by", d.Change.CappedBy))
		}
		if d.Error != "" {
			fields = append(fields, zap.String("error", d.Error))
		}
		if len(d.Rule.Labels) > 0 {
			fields = append(fields, zap.Any("labels", d.Rule.Labels))
		}
		if d.Result == state.ResultFailed {
			e.opts.Logger.Warn("action", fields...)
		} else {
			e.opts.Logger.Info("action", fields...)
		}
		if d.Result == state.ResultBlockedGuard && strings.HasPrefix(d.Error, "blast-radius") {
			guardRules[d.Rule] = d.Error
		}
		if d.Result == state.ResultBlockedFlapping && d.hold != nil {
			flaps = append(flaps, d) // the block starts now: alert once (SPEC 4.9)
		}
		if run != nil && len(d.Rule.Notify) > 0 && notifiable(d.Result) {
			ev := notify.Event{Time: snap.At, RunID: out.RunID, Group: g.Name, Rule: d.Rule.Name, AccountID: acct.ID,
				AccountName: snap.Account.Name, Level: d.Rule.Level.String(), ObjectID: d.Object.ID, ObjectName: d.Object.Name,
				Kind: d.Kind().String(), Field: d.field(), Before: Major(d.before(), cur), After: Major(d.after(), cur),
				Result: d.Result, CappedBy: d.Change.CappedBy, Error: d.Error, Labels: d.Rule.Labels, Values: scalarsToAny(d.Values)}
			if d.Rule.Action.Kind == rules.Notify {
				ev.Message = e.message(d)
			}
			run.Add(ev, d.Rule.Notify...)
		}
	}
	run.Finish()
	for r, why := range guardRules {
		names := r.Notify
		if len(names) == 0 {
			names = e.loaded.Load().cfg.NotifierNames()
		}
		for _, n := range names {
			e.opts.Notify.Send(n, notify.Digest{Kind: notify.KindGuardTripped, Time: snap.At, RunID: out.RunID, Group: g.Name,
				Rule: r.Name, Accounts: []notify.Account{{ID: acct.ID, Name: snap.Account.Name}}, Reason: why})
		}
	}
	for _, d := range flaps {
		e.opts.Logger.Error("flapping: unpauses and increases blocked for 24h", zap.String("group", g.Name), zap.String("rule", d.Rule.Name),
			zap.String("account", acct.ID), zap.String("object_id", d.Object.ID), zap.String("field", d.field()))
		names := d.Rule.Notify
		if len(names) == 0 {
			names = e.loaded.Load().cfg.NotifierNames()
		}
		for _, n := range names {
			e.opts.Notify.Send(n, notify.Digest{Kind: notify.KindFlappingBlocked, Time: snap.At, RunID: out.RunID, Group: g.Name,
				Rule: d.Rule.Name, Accounts: []notify.Account{{ID: acct.ID, Name: snap.Account.Name}},
				Reason: d.Object.Name + " (" + d.Object.ID + "): " + d.Error})
		}
	}
}

func notifiable(result string) bool {
	switch result {
	case state.ResultApplied, state.ResultDryRun, state.ResultFailed, state.ResultBlockedGuard, state.ResultBlockedFlapping:
		return true
	}
	return false
}

// scalarAny returns a float64, a string or nil.
func scalarAny(s state.Scalar) any {
	if f, ok := s.Number(); ok {
		return f
	}
	if t, ok := s.Text(); ok {
		return t
	}
	return nil
}

func scalarsToAny(m map[string]state.Scalar) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = scalarAny(v)
	}
	return out
}

// message renders a notify action's template over the names the rule read.
func (e *Engine) message(d *Decision) string {
	if d.Rule.Action.Message == nil {
		return fmt.Sprintf("%s matched %s", d.Rule.Name, d.Object.Name)
	}
	data := map[string]any{"id": d.Object.ID, "name": d.Object.Name, "status": d.Object.Status, "level": d.Rule.Level.String()}
	for k, v := range d.Values {
		setPath(data, valuePath(k), scalarAny(v))
	}
	text, err := notify.RenderMessage(d.Rule.Action.Message, data)
	if err != nil {
		return fmt.Sprintf("%s matched %s (message template failed: %v)", d.Rule.Name, d.Object.Name, err)
	}
	return text
}

// valuePath splits a value's name into template keys: last_7d.cpa is
// {{.last_7d.cpa}}, and actions["link_click"] is {{.actions.link_click}}.
func valuePath(name string) []string {
	var path []string
	for name != "" {
		if rest, ok := strings.CutPrefix(name, `["`); ok { // an action type may hold dots
			typ, after, _ := strings.Cut(rest, `"]`)
			path = append(path, typ)
			name = strings.TrimPrefix(after, ".")
			continue
		}
		i := strings.IndexAny(name, ".[")
		if i < 0 {
			return append(path, name)
		}
		path = append(path, name[:i])
		name = strings.TrimPrefix(name[i:], ".")
	}
	return path
}

func setPath(m map[string]any, path []string, v any) {
	for len(path) > 1 {
		next, ok := m[path[0]].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[path[0]] = next
		}
		m, path = next, path[1:]
	}
	m[path[0]] = v
}

// reconcile settles the account's unfinished intents before a run (SPEC 4.6): a
// crash between recording an intent and completing it leaves it here.
func (e *Engine) reconcile(ctx context.Context, acct string) error {
	intents, err := e.opts.Store.UnfinishedIntents(ctx, acct)
	if err != nil || len(intents) == 0 || e.opts.Executor == nil {
		return err
	}
	// Reconciling may re-send a write: only where writes may go now.
	var ok []state.Intent
	why := map[[2]string]string{}
	for _, in := range intents {
		k := [2]string{in.Group, in.Rule}
		reason, seen := why[k]
		if !seen {
			if reason, err = e.mayNotWrite(ctx, in); err != nil {
				return err
			}
			why[k] = reason
		}
		if reason != "" {
			e.opts.Logger.Warn("intent left unfinished: no writes now", zap.Int64("intent", in.ID), zap.String("account", in.AccountID),
				zap.String("object_id", in.ObjectID), zap.String("field", in.Field), zap.String("reason", reason))
			continue
		}
		ok = append(ok, in)
	}
	if len(ok) == 0 {
		return nil
	}
	return e.settle(ctx, ok)
}

// mayNotWrite says why the write of an unfinished intent may not be sent now (a dry
// run, the kill switch, a refused token), or "" when it may.
func (e *Engine) mayNotWrite(ctx context.Context, in state.Intent) (string, error) {
	cfg := e.loaded.Load().cfg
	if e.opts.DryRun || cfg.DryRun {
		return "dry run", nil
	}
	if r := e.findRule(in.Group, in.Rule); r != nil && (r.DryRun || r.Group.DryRun) {
		return "the rule is a dry run now", nil
	}
	if e.authBadFor(e.account(in.AccountID)) {
		return "the access token failed authentication", nil
	}
	kill, err := e.opts.Store.KillSwitchesFor(ctx, in.Group, in.AccountID)
	if err != nil {
		return "", fmt.Errorf("read kill switches: %w", err)
	}
	if len(kill) > 0 {
		return "kill switch engaged: " + kill[0].Reason, nil
	}
	return "", nil
}

// Reconcile settles every unfinished intent, at start-up: account by account, under
// the account's lock when replicas share the store, so that an intent another
// replica still has in flight is never taken for a crashed one.
func (e *Engine) Reconcile(ctx context.Context) error {
	intents, err := e.opts.Store.UnfinishedIntents(ctx, "")
	if err != nil || len(intents) == 0 || e.opts.Executor == nil {
		return err
	}
	accounts := map[string]bool{}
	for _, in := range intents {
		accounts[in.AccountID] = true
	}
	for acct := range accounts {
		unlock := func() {}
		if l, ok := e.opts.Store.(accountLocker); ok {
			if unlock, err = l.LockAccount(ctx, acct); err != nil {
				return err
			}
		}
		err := e.reconcile(ctx, acct)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) settle(ctx context.Context, intents []state.Intent) error {
	now := e.opts.Now()
	// An intent younger than one interval may be re-sent; use the shortest interval of
	// the groups, which is the conservative choice when a group was removed.
	maxAge := 24 * time.Hour
	for _, g := range e.loaded.Load().set.Groups {
		maxAge = min(maxAge, groupInterval(g))
	}
	results := e.opts.Executor.Reconcile(ctx, intents, maxAge, now)
	var outcomes []state.Outcome
	var cooldowns []state.Cooldown
	var holds []state.Hold
	for i, res := range results {
		in := intents[i]
		if res.Unknown {
			e.opts.Logger.Warn("intent stays unfinished", zap.Int64("intent", in.ID), zap.String("object_id", in.ObjectID), zap.String("reason", res.Reason))
			continue
		}
		rec := state.AuditRecord{Time: now, RunID: in.RunID, Group: in.Group, Rule: in.Rule, AccountID: in.AccountID,
			Level: in.Level, ObjectID: in.ObjectID, ObjectName: in.ObjectName, Kind: in.Kind, Field: in.Field,
			Before: in.Before, After: in.Target, Result: state.ResultApplied}
		o := state.Outcome{IntentID: in.ID, Audit: rec}
		if res.Applied {
			o.Change = &state.Change{Time: now, RunID: in.RunID, Group: in.Group, Rule: in.Rule, AccountID: in.AccountID,
				ObjectID: in.ObjectID, Field: in.Field, Before: in.Before, After: in.Target}
		} else {
			o.Audit.Result = state.ResultFailed
			o.Audit.Error = res.Reason
		}
		// A settled intent was the rule's action: it starts the rule's cooldown from
		// the run that decided it, as it would have had the run completed (SPEC 4.2).
		if r := e.findRule(in.Group, in.Rule); r != nil && (res.Applied || res.Permanent) {
			cooldowns = append(cooldowns, state.Cooldown{Group: in.Group, Rule: in.Rule, ObjectID: in.ObjectID, Until: in.Created.Add(r.Cooldown)})
		}
		if res.Locked {
			holds = append(holds, state.Hold{ObjectID: in.ObjectID, Field: in.Field, Reason: state.HoldLocked, Until: now.Add(time.Hour)})
		}
		if res.Auth && e.setAuth(e.account(in.AccountID), false) {
			e.authFailed(e.account(in.AccountID), now, res.Reason)
		}
		e.opts.Logger.Info("reconciled intent", zap.Int64("intent", in.ID), zap.String("object_id", in.ObjectID),
			zap.String("field", in.Field), zap.String("result", o.Audit.Result), zap.Bool("resent", res.Resent), zap.String("error", o.Audit.Error))
		outcomes = append(outcomes, o)
	}
	if len(outcomes) == 0 {
		return nil
	}
	sctx := context.WithoutCancel(ctx)
	// Cooldowns before the outcomes, as in record.
	if err := e.opts.Store.SetCooldowns(sctx, cooldowns); err != nil {
		return fmt.Errorf("store cooldowns of reconciled intents: %w", err)
	}
	if _, err := e.opts.Store.RecordOutcomes(sctx, outcomes); err != nil {
		return fmt.Errorf("record reconciled intents: %w", err)
	}
	if err := e.opts.Store.SetHolds(sctx, holds); err != nil {
		return fmt.Errorf("store holds of reconciled intents: %w", err)
	}
	return nil
}

// findRule returns the rule of the loaded set, or nil when a reload removed it.
func (e *Engine) findRule(group, rule string) *rules.Rule {
	for _, g := range e.loaded.Load().set.Groups {
		if g.Name != group {
			continue
		}
		for _, r := range g.Rules {
			if r.Name == rule {
				return r
			}
		}
	}
	return nil
}
