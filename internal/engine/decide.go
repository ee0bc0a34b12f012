package engine

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// accountState is what the store knows about one account's objects, loaded once per
// run (a handful of queries, never one per object).
type accountState struct {
	lastLive  map[objField]state.LastWrite // real writes: paused_by_rulesd, manual detection
	changes   map[string][]state.Change    // by object, last 24h, of the run's mode (live or dry)
	holds     map[objField][]state.Hold    // active and ended ones (see manualSeen)
	at        time.Time
	kill      []state.KillSwitch
	dry       bool
	manualTTL time.Duration
	// newHolds are the manual holds this run started, to store; manualWhy says for
	// each what the person changed.
	newHolds  []state.Hold
	manualWhy map[objField]string
	// unfinished are the fields with a write intent not yet completed: its outcome is
	// unknown until reconciliation settles it.
	unfinished map[objField]bool
}

type objField struct{ obj, field string }

func (e *Engine) loadState(ctx context.Context, acct string, ids []string, at time.Time, dry bool) (*accountState, error) {
	st := e.opts.Store
	s := &accountState{lastLive: map[objField]state.LastWrite{}, holds: map[objField][]state.Hold{}, dry: dry, at: at}
	lws, err := st.LastWrites(ctx, false, ids)
	if err != nil {
		return nil, err
	}
	for _, w := range lws {
		s.lastLive[objField{w.ObjectID, w.Field}] = w
	}
	changes, err := st.RecentChanges(ctx, dry, acct, at.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	s.changes = state.ChangesByObject(changes)
	// Ended holds too: a manual hold that ended still says that the person's value
	// was seen (manualSeen), so it is not taken for a new change by hand.
	holds, err := st.ActiveHolds(ctx, dry, ids, time.Time{})
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		k := objField{h.ObjectID, h.Field}
		s.holds[k] = append(s.holds[k], h)
	}
	intents, err := st.UnfinishedIntents(ctx, acct)
	if err != nil {
		return nil, err
	}
	s.unfinished = map[objField]bool{}
	for _, in := range intents {
		s.unfinished[objField{in.ObjectID, in.Field}] = true
	}
	return s, nil
}

// inFlight reports whether a write to the field (or, for a budget, to either budget
// field) has an unfinished intent: the field may hold the target already, so a change
// planned from the value read now could apply a relative change twice.
func (s *accountState) inFlight(obj, field string) bool {
	for _, f := range budgetFields(field) {
		if s.unfinished[objField{obj, f}] {
			return true
		}
	}
	return false
}

// inFlightReason is the skip reason of a change to a field with an unfinished intent.
func inFlightReason(field string) string {
	what := fieldKind(field)
	if field == actions.FieldStatus {
		what = "status"
	}
	return "an earlier write to this " + what + " has an unknown outcome (its answer was lost) and is not reconciled yet; rulesd changes it again only once it is"
}

// flapping reports whether unpauses and increases of the field are blocked because
// rules reversed it more than 3 times in 24h (SPEC 4.9), and the hold to store when
// this decision starts the block.
func (s *accountState) flapping(obj, field string, dry bool, at time.Time) (bool, *state.Hold) {
	if s.hold(obj, field, state.HoldFlapping) {
		return true, nil
	}
	if state.Reversals(s.changes[obj], at.Add(-24*time.Hour), budgetFields(field)...) > 3 {
		return true, &state.Hold{ObjectID: obj, Field: field, Reason: state.HoldFlapping, DryRun: dry, Until: at.Add(24 * time.Hour)}
	}
	return false, nil
}

func flappingReason(field string) string {
	return "the object's " + field + " was reversed more than 3 times in 24h; increases and unpauses are blocked for 24h"
}

// hold reports whether a hold for reason is active on the field.
func (s *accountState) hold(obj, field, reason string) bool {
	for _, h := range s.holds[objField{obj, field}] {
		if h.Reason == reason && h.Until.After(s.at) {
			return true
		}
	}
	return false
}

// manualSeen reports whether a manual hold was started after rulesd's last write to
// the field (at w.Time): the person's change was detected then, held for
// manual_hold, and is now the field's normal value, not a new change by hand.
func (s *accountState) manualSeen(obj, field string, w state.LastWrite) bool {
	for _, h := range s.holds[objField{obj, field}] {
		if h.Reason == state.HoldManual && h.Until.After(w.Time.Add(s.manualTTL)) {
			return true
		}
	}
	return false
}

// fillStateAttrs sets what only the store knows: whether rulesd paused the object,
// and how long ago it last changed it.
func fillStateAttrs(lay *rules.Layout, t *insights.Table, s *accountState, at time.Time) {
	for i := range t.Objects {
		o := &t.Objects[i]
		row := &t.Rows[i]
		var latest time.Time
		for _, f := range []string{actions.FieldStatus, actions.FieldDailyBudget, actions.FieldLifetimeBudget, actions.FieldBidAmount} {
			if w, ok := s.lastLive[objField{o.ID, f}]; ok && w.Time.After(latest) {
				latest = w.Time
			}
		}
		if !latest.IsZero() {
			lay.SetAttr(row, "hours_since_change", at.Sub(latest).Hours())
		}
		w, ok := s.lastLive[objField{o.ID, actions.FieldStatus}]
		lay.SetBool(row, "paused_by_rulesd", ok && o.Status == "PAUSED" && w.Value == state.Status("PAUSED") && !s.manualSeen(o.ID, actions.FieldStatus, w))
	}
}

// observeManual finds fields whose value differs from what rulesd last wrote: a
// person changed them (SPEC 4.11). Each gets a manual hold, once, whatever the rules
// decide this run, so that a later change back by hand is not mistaken for rulesd's.
func (s *accountState) observeManual(t *insights.Table, dry bool) {
	for i := range t.Objects {
		o := &t.Objects[i]
		for _, f := range []string{actions.FieldStatus, actions.FieldDailyBudget, actions.FieldLifetimeBudget, actions.FieldBidAmount} {
			k := objField{o.ID, f}
			w, ok := s.lastLive[k]
			if !ok || w.Value == actions.FieldValue(o, f) || s.manualSeen(o.ID, f, w) {
				continue
			}
			h := state.Hold{ObjectID: o.ID, Field: f, Reason: state.HoldManual, DryRun: dry, Until: s.at.Add(s.manualTTL)}
			s.holds[k] = append(s.holds[k], h)
			s.newHolds = append(s.newHolds, h)
			s.manualWhy[k] = fmt.Sprintf("someone changed %s from %s (rulesd's last write) to %s; held for %s", f, w.Value, actions.FieldValue(o, f), s.manualTTL)
		}
	}
}

func budgetFields(field string) []string {
	if field == actions.FieldBidAmount {
		return []string{actions.FieldBidAmount}
	}
	if field == actions.FieldStatus {
		return []string{actions.FieldStatus}
	}
	return []string{actions.FieldDailyBudget, actions.FieldLifetimeBudget}
}

// plan is what planning a run decided, and what recording it needs.
type plan struct {
	decisions []*Decision
	stats     map[string]*RuleStats
	state     *accountState
	// pendings is the for: state of each rule with for:, by object.
	pendings map[*rules.Rule]map[string]state.Pending
}

// plan evaluates a group's rules on a snapshot and applies every guard, without
// writing anything: the decisions of a run, or of a preview. It reads the store
// (pending, cooldowns, history) but changes nothing in it.
func (e *Engine) plan(ctx context.Context, g *rules.Group, acct config.Account, snap *insights.Snapshot, dry bool) (*plan, error) {
	l := e.loaded.Load()
	cfg := l.cfg
	at := snap.At
	var ids []string
	for _, t := range snap.Tables {
		for i := range t.Objects {
			ids = append(ids, t.Objects[i].ID)
		}
	}
	ast, err := e.loadState(ctx, acct.ID, ids, at, dry)
	if err != nil {
		return nil, fmt.Errorf("load state for %s: %w", acct.ID, err)
	}
	ast.manualTTL = acct.Safety.ManualHold.Std()
	if ast.manualTTL == 0 {
		ast.manualTTL = cfg.Safety.ManualHold.Std()
	}
	if ast.kill, err = e.opts.Store.KillSwitchesFor(ctx, g.Name, acct.ID); err != nil {
		return nil, fmt.Errorf("read kill switches: %w", err)
	}
	ast.manualWhy = map[objField]string{}
	for _, t := range snap.Tables {
		ast.observeManual(t, dry)
		// The rows are laid out for g's rule set, which a reload during the run may
		// have replaced in l: fill them by g's layout.
		if len(g.Rules) > 0 {
			fillStateAttrs(g.Rules[0].Layout(), t, ast, at)
		}
	}
	stats := map[string]*RuleStats{}
	pendings := map[*rules.Rule]map[string]state.Pending{}
	var decisions []*Decision
	interval := groupInterval(g)
	for _, r := range g.Rules {
		t := snap.Tables[r.Level]
		st := &RuleStats{}
		stats[r.Name] = st
		if t == nil {
			continue
		}
		ruleDry := dry || r.DryRun || g.DryRun || cfg.DryRun
		var matched []int
		for i := range t.Objects {
			st.Evaluated++
			in, m := r.Match(&t.Rows[i])
			if in {
				st.InScope++
			}
			if m {
				st.Matches++
				matched = append(matched, i)
			}
		}
		e.opts.Metrics.RuleEvaluations.WithLabelValues(g.Name, r.Name).Add(float64(st.Evaluated))
		ready := matched
		var pend map[string]state.Pending
		if r.For > 0 {
			ready, pend, err = e.pending(ctx, g, r, acct.ID, t, matched, at, interval)
			if err != nil {
				return nil, err
			}
			pendings[r] = pend
		}
		var cooldowns map[string]time.Time
		if len(ready) > 0 {
			var objIDs []string
			for _, i := range ready {
				objIDs = append(objIDs, t.Objects[i].ID)
			}
			cooldowns, err = e.opts.Store.ActiveCooldowns(ctx, g.Name, r.Name, ruleDry, objIDs, at)
			if err != nil {
				return nil, fmt.Errorf("read cooldowns: %w", err)
			}
		}
		readySet := map[int]bool{}
		for _, i := range ready {
			readySet[i] = true
		}
		for _, i := range matched {
			o := &t.Objects[i]
			if offByName(o) {
				continue
			}
			d := &Decision{Rule: r, Account: acct.ID, Object: o, Row: &t.Rows[i], Dry: ruleDry, Values: valuesOf(r, &t.Rows[i])}
			if p, ok := pend[o.ID]; ok {
				d.PendingSince = p.Since
			}
			if !readySet[i] {
				d.Result = ResultPending
				st.Pending++
				decisions = append(decisions, d)
				continue
			}
			e.guard(d, snap, acct, ast, cooldowns, at)
			decisions = append(decisions, d)
		}
	}
	for _, r := range g.Rules {
		decisions = append(decisions, e.restores(g, r, acct, snap, ast, dry || r.DryRun || g.DryRun || cfg.DryRun)...)
	}
	resolveConflicts(decisions)
	e.blastRadius(g, acct, decisions, stats)
	for _, d := range decisions {
		if d.Dry && (d.Result == resultToApply) {
			d.Result = state.ResultDryRun
		}
	}
	return &plan{decisions: decisions, stats: stats, state: ast, pendings: pendings}, nil
}

// groupInterval estimates the time between a group's runs, for pending lapse and
// reconciliation age.
func groupInterval(g *rules.Group) time.Duration {
	s, err := rules.ParseSchedule(g.Schedule)
	if err != nil {
		return 30 * time.Minute
	}
	t := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	n1 := s.Next(t)
	return s.Next(n1).Sub(n1)
}

// pending applies for: (SPEC 4.1): a match acts once it has held on every evaluation
// since pending_since for at least for; pending lapses after max(for, 2×interval)
// without a successful evaluation.
func (e *Engine) pending(ctx context.Context, g *rules.Group, r *rules.Rule, acct string, t *insights.Table, matched []int, at time.Time, interval time.Duration) ([]int, map[string]state.Pending, error) {
	scope := state.RuleScope{Group: g.Name, Rule: r.Name, AccountID: acct}
	lapse := max(r.For, 2*interval)
	var ids []string
	for _, i := range matched {
		ids = append(ids, t.Objects[i].ID)
	}
	cur, err := e.opts.Store.GetPending(ctx, scope, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read pending: %w", err)
	}
	var ready []int
	out := map[string]state.Pending{}
	for _, i := range matched {
		id := t.Objects[i].ID
		p, ok := cur[id]
		if !ok || at.Sub(p.LastEval) > lapse {
			p = state.Pending{ObjectID: id, Since: at}
		}
		p.LastEval = at
		out[id] = p
		if at.Sub(p.Since) >= r.For {
			ready = append(ready, i)
		}
	}
	return ready, out, nil
}

// guard applies the per-decision guards in order: cooldown, the plan itself
// (failed, no-op), kill switch, people win, flapping, pacing, conflicts across groups.
func (e *Engine) guard(d *Decision, snap *insights.Snapshot, acct config.Account, s *accountState, cooldowns map[string]time.Time, at time.Time) {
	r, o := d.Rule, d.Object
	if until, ok := cooldowns[o.ID]; ok {
		d.Result, d.Error = state.ResultSkippedCooldown, "in cooldown until "+until.UTC().Format(time.RFC3339)
		return
	}
	lim := actions.Limits{
		MaxDailyBudget:       acct.Safety.MaxDailyBudget,
		MaxLifetimeBudget:    acct.Safety.MaxLifetimeBudget,
		MaxIncreasePctPerDay: acct.Safety.MaxBudgetIncreasePctPerDay,
	}
	if lim.MaxIncreasePctPerDay == 0 {
		lim.MaxIncreasePctPerDay = e.loaded.Load().cfg.Safety.MaxBudgetIncreasePctPerDay
	}
	if r.Action.Kind == rules.SetBudget || r.Action.Kind == rules.ChangeBudget {
		if v, ok := state.EarliestBefore(s.changes[o.ID], at.Add(-24*time.Hour), actions.FieldDailyBudget, actions.FieldLifetimeBudget); ok {
			lim.DayBase, _ = v.Amount()
		}
	}
	d.Change = actions.Plan(r, o, d.Row, snap.Account.Currency, lim)
	switch d.Change.Result {
	case actions.ResultFailed:
		d.Result, d.Error, d.Permanent = state.ResultFailed, d.Change.Reason, d.Change.Permanent
		return
	case actions.ResultNoop:
		d.Result, d.Error = state.ResultSkippedNoop, d.Change.Reason
		return
	}
	if !d.IsWrite() {
		d.Result = resultToApply // a notification
		return
	}
	if len(s.kill) > 0 {
		d.Result, d.Error = state.ResultBlockedGuard, "kill switch engaged: "+s.kill[0].Reason
		return
	}
	field := d.field()
	if s.inFlight(o.ID, field) {
		d.Result, d.Error = state.ResultSkippedConflict, inFlightReason(field)
		return
	}
	// People win (SPEC 4.11): a value differing from rulesd's last write was set by
	// someone; leave the field alone for manual_hold.
	if s.hold(o.ID, field, state.HoldManual) {
		d.Result, d.Error = state.ResultSkippedManual, s.manualWhy[objField{o.ID, field}]
		if d.Error == "" {
			d.Error = "changed by a person recently; rulesd leaves it alone"
		}
		return
	}
	dir := d.direction()
	h := s.changes[o.ID]
	fields := budgetFields(field)
	if dir > 0 {
		if flapping, hold := s.flapping(o.ID, field, d.Dry, at); flapping {
			d.hold = hold
			d.Result, d.Error = state.ResultBlockedFlapping, flappingReason(field)
			return
		}
	}
	if field != actions.FieldStatus {
		if s.hold(o.ID, field, state.HoldLocked) {
			d.Result, d.Error = state.ResultSkippedPacing, "Meta locked this budget after too many changes; waiting an hour"
			return
		}
		if n := state.CountChanges(h, at.Add(-time.Hour), fields...); n >= 2 {
			d.Result, d.Error = state.ResultSkippedPacing, fmt.Sprintf("%d changes to this %s in the last hour; at most 2 (Meta locks after 4)", n, fieldKind(field))
			return
		}
	}
	if c, ok := state.Opposing(h, at.Add(-time.Hour), r.Group.Name, r.Name, field, dir); ok {
		d.Result, d.Error = state.ResultSkippedConflict, fmt.Sprintf("rule %s/%s changed %s the other way at %s", c.Group, c.Rule, field, c.Time.UTC().Format(time.RFC3339))
		return
	}
	d.Result = resultToApply
}

func fieldKind(f string) string {
	if f == actions.FieldBidAmount {
		return "bid"
	}
	return "budget"
}

// resolveConflicts lets one write per object through per run: the first rule in
// file order wins, except that a pause beats a budget or bid increase (SPEC 4.3).
// Notifications never claim.
func resolveConflicts(ds []*Decision) {
	winner := map[string]*Decision{}
	for _, d := range ds {
		if d.Result != resultToApply || !d.IsWrite() {
			continue
		}
		w, ok := winner[d.Object.ID]
		switch {
		case !ok:
			winner[d.Object.ID] = d
		case d.Kind() == rules.Pause && w.Change.IsMoney() && w.Change.Increase():
			w.Result, w.Error = state.ResultSkippedConflict, "rule "+d.Rule.Name+" pauses this object in the same run"
			winner[d.Object.ID] = d
		default:
			d.Result, d.Error = state.ResultSkippedConflict, "rule "+w.Rule.Name+" changes this object in the same run"
		}
	}
}

// blastRadius blocks a rule in an account when its would-be writes exceed
// max_actions_per_run or half of the objects in scope (when at least 5 would act):
// a broken feed must not pause a whole account (SPEC 4.5).
func (e *Engine) blastRadius(g *rules.Group, acct config.Account, ds []*Decision, stats map[string]*RuleStats) {
	limit := g.MaxActionsPerRun
	if limit == 0 {
		limit = acct.Safety.MaxActionsPerRun
	}
	if limit == 0 {
		limit = e.loaded.Load().cfg.Safety.MaxActionsPerRun
	}
	byRule := map[*rules.Rule][]*Decision{}
	for _, d := range ds {
		// Would-be writes: after cooldown, no-op and pacing; conflicts lost to other
		// rules still count, since the rule wanted them.
		if d.IsWrite() && !d.restore && (d.Result == resultToApply || d.Result == state.ResultSkippedConflict) {
			byRule[d.Rule] = append(byRule[d.Rule], d)
		}
	}
	for r, list := range byRule {
		n, inScope := len(list), stats[r.Name].InScope
		tooMany := n > limit
		tooBroad := n >= 5 && float64(n) > float64(inScope)/2
		if !tooMany && !tooBroad {
			continue
		}
		why := fmt.Sprintf("blast-radius guard: rule %s would change %d of %d objects in scope in %s (limit %d, or half of those in scope)", r.Name, n, inScope, acct.ID, limit)
		for _, d := range list {
			if d.Result == resultToApply {
				d.Result, d.Error = state.ResultBlockedGuard, why
			}
		}
		e.opts.Logger.Error("blast-radius guard tripped", zap.String("group", g.Name), zap.String("rule", r.Name),
			zap.String("account", acct.ID), zap.Int("would_change", n), zap.Int("in_scope", inScope), zap.Int("limit", limit))
	}
}

// Preview plans a group for one account and writes nothing: matches that would act
// get ResultWouldApply.
func (e *Engine) Preview(ctx context.Context, g *rules.Group, acct config.Account, snap *insights.Snapshot) ([]*Decision, error) {
	p, err := e.plan(ctx, g, acct, snap, false)
	if err != nil {
		return nil, err
	}
	ds := p.decisions
	for _, d := range ds {
		if d.Result == resultToApply {
			d.Result = ResultWouldApply
		}
	}
	return ds, err
}

// restores sets ACTIVE again the objects a pause rule with restore_after paused that
// long ago, if they are still paused by it (SPEC 3.3). A person who changed the
// status since has taken over: the object is no longer paused by rulesd.
func (e *Engine) restores(g *rules.Group, r *rules.Rule, acct config.Account, snap *insights.Snapshot, s *accountState, dry bool) []*Decision {
	if r.Action.Kind != rules.Pause || r.Action.RestoreAfter <= 0 {
		return nil
	}
	t := snap.Tables[r.Level]
	if t == nil {
		return nil
	}
	var out []*Decision
	for i := range t.Objects {
		o := &t.Objects[i]
		w, ok := s.lastLive[objField{o.ID, actions.FieldStatus}]
		if !ok || o.Status != "PAUSED" || w.Value != state.Status("PAUSED") || w.Group != g.Name || w.Rule != r.Name ||
			s.manualSeen(o.ID, actions.FieldStatus, w) {
			continue // not paused by this rule any more: a person took over
		}
		if snap.At.Sub(w.Time) < r.Action.RestoreAfter || offByName(o) {
			continue
		}
		d := &Decision{Rule: r, Account: acct.ID, Object: o, Row: &t.Rows[i], Dry: dry, Values: valuesOf(r, &t.Rows[i]), restore: true,
			Change: actions.Change{Kind: rules.Unpause, Field: actions.FieldStatus, BeforeStr: "PAUSED", AfterStr: "ACTIVE"}}
		flapping, hold := s.flapping(o.ID, actions.FieldStatus, dry, snap.At)
		switch {
		case len(s.kill) > 0:
			d.Result, d.Error = state.ResultBlockedGuard, "kill switch engaged: "+s.kill[0].Reason
		case s.inFlight(o.ID, actions.FieldStatus):
			d.Result, d.Error = state.ResultSkippedConflict, inFlightReason(actions.FieldStatus)
		case s.hold(o.ID, actions.FieldStatus, state.HoldManual):
			d.Result, d.Error = state.ResultSkippedManual, "changed by a person recently; rulesd leaves it alone"
		case flapping:
			// The restore is an unpause like any other (SPEC 4.9).
			d.hold = hold
			d.Result, d.Error = state.ResultBlockedFlapping, flappingReason(actions.FieldStatus)
		default:
			d.Result = resultToApply
		}
		out = append(out, d)
	}
	return out
}
