package ruletest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// world is one test's ad account while it runs: the objects as they are now, the
// insights given so far, and the snapshots the engine last read. It is the engine's
// SnapshotReader and Executor.
type world struct {
	mu      sync.Mutex
	t       *Test
	cfg     *config.Config
	objects []*simObject
	byID    map[string]*simObject
	metrics map[rules.Window]map[string]*metricState
	// snaps holds each group's last snapshot, to show what a rule saw on an object
	// it did not act on.
	snaps map[string]*insights.Snapshot
}

type simObject struct {
	level                   rules.Level
	obj                     insights.Object
	campInline, adsetInline *insights.Object
	campaignBudget          *bool
}

// metricState is what Meta reports for one object in one window, as given so far.
type metricState struct {
	base         [len(metricKeys)]float64
	given        [len(metricKeys)]bool
	actions      map[string]float64
	actionValues map[string]float64
}

// metricKeys is the order of metricState.base.
var metricKeys = [...]rules.Metric{rules.Spend, rules.Impressions, rules.Reach, rules.Clicks, rules.LinkClicks,
	rules.Purchases, rules.PurchaseValue, rules.Leads, rules.Installs}

func newWorld(t *Test, cfg *config.Config) *world {
	w := &world{t: t, cfg: cfg, byID: map[string]*simObject{}, metrics: map[rules.Window]map[string]*metricState{},
		snaps: map[string]*insights.Snapshot{}}
	for _, d := range t.objects {
		o := &simObject{level: d.level, obj: d.obj, campaignBudget: d.campaignBudget}
		if d.campInline != nil {
			c := *d.campInline
			o.campInline = &c
		}
		if d.adsetInline != nil {
			a := *d.adsetInline
			o.adsetInline = &a
		}
		w.objects = append(w.objects, o)
		w.byID[o.obj.ID] = o
	}
	for _, o := range w.objects {
		if o.obj.EffectiveStatus == "" {
			w.deriveEffective(o)
		}
	}
	return w
}

// campaign and adset resolve an object's parents: the object of that id in the
// test's objects (whose state changes as rules act), else the parent written inline.
func (w *world) campaign(o *simObject) *insights.Object {
	switch o.level {
	case rules.LevelCampaign:
		return &o.obj
	}
	id := o.obj.CampaignID
	if id == "" {
		if as := w.adset(o); as != nil {
			id = as.CampaignID
		}
	}
	if p, ok := w.byID[id]; ok && p.level == rules.LevelCampaign {
		return &p.obj
	}
	if o.campInline != nil {
		return o.campInline
	}
	if o.level == rules.LevelAd {
		if p, ok := w.byID[o.obj.AdSetID]; ok && p.level == rules.LevelAdSet && p.campInline != nil {
			return p.campInline
		}
	}
	return nil
}

func (w *world) adset(o *simObject) *insights.Object {
	switch o.level {
	case rules.LevelCampaign:
		return nil
	case rules.LevelAdSet:
		return &o.obj
	}
	if p, ok := w.byID[o.obj.AdSetID]; ok && p.level == rules.LevelAdSet {
		return &p.obj
	}
	return o.adsetInline
}

// derivable are the effective statuses that follow from the statuses of an object
// and its parents; others (WITH_ISSUES, PENDING_REVIEW, ...) stay as written while
// the object is ACTIVE.
var derivable = map[string]bool{"": true, "ACTIVE": true, "PAUSED": true, "ARCHIVED": true, "DELETED": true,
	"CAMPAIGN_PAUSED": true, "ADSET_PAUSED": true}

func inactive(p *insights.Object) bool { return p != nil && p.Status != "" && p.Status != "ACTIVE" }

// deriveEffective sets an object's effective_status from its own and its parents'
// statuses, as the API does.
func (w *world) deriveEffective(o *simObject) {
	if !derivable[o.obj.EffectiveStatus] && o.obj.Status == "ACTIVE" {
		return
	}
	switch {
	case o.obj.Status != "ACTIVE":
		o.obj.EffectiveStatus = o.obj.Status
	case o.level == rules.LevelAd && inactive(w.adset(o)):
		o.obj.EffectiveStatus = "ADSET_PAUSED"
	case o.level != rules.LevelCampaign && inactive(w.campaign(o)):
		o.obj.EffectiveStatus = "CAMPAIGN_PAUSED"
	default:
		o.obj.EffectiveStatus = "ACTIVE"
	}
}

// statusChanged re-derives the effective status of an object (unless keepSelf) and
// of every object under it.
func (w *world) statusChanged(x *simObject, keepSelf bool) {
	if !keepSelf {
		w.deriveEffective(x)
	}
	for _, o := range w.objects {
		if o == x {
			continue
		}
		if c, a := w.campaign(o), w.adset(o); c == &x.obj || a == &x.obj {
			w.deriveEffective(o)
		}
	}
}

// apply makes a step's changes: a person's edits before the run.
func (w *world) apply(s *step) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.t.account.Currency
	minor := func(v *float64, dst *int64) {
		if v != nil {
			*dst = money.ToMinor(*v, cur, money.Nearest)
		}
	}
	for _, ch := range s.changes {
		o := w.byID[ch.id]
		c := ch.c
		if c.Name != nil {
			o.obj.Name = *c.Name
		}
		minor(c.DailyBudget, &o.obj.DailyBudget)
		minor(c.LifetimeBudget, &o.obj.LifetimeBudget)
		minor(c.BudgetRemaining, &o.obj.BudgetRemaining)
		minor(c.BidAmount, &o.obj.BidAmount)
		if c.EffectiveStatus != nil {
			o.obj.EffectiveStatus = *c.EffectiveStatus
		}
		if c.Status.Value != "" {
			o.obj.Status = c.Status.Value
			w.statusChanged(o, c.EffectiveStatus != nil)
		}
	}
	for _, wi := range s.insights {
		byObj := w.metrics[wi.window]
		if byObj == nil {
			byObj = map[string]*metricState{}
			w.metrics[wi.window] = byObj
		}
		for _, row := range wi.rows {
			ms := byObj[row.Key.Value]
			if ms == nil {
				ms = &metricState{actions: map[string]float64{}, actionValues: map[string]float64{}}
				byObj[row.Key.Value] = ms
			}
			m := &row.Value
			for i, v := range []*float64{m.Spend, m.Impressions, m.Reach, m.Clicks, m.LinkClicks, m.Purchases, m.PurchaseValue, m.Leads, m.Installs} {
				if v != nil {
					ms.base[i], ms.given[i] = *v, true
				}
			}
			for k, v := range m.Actions {
				ms.actions[k] = v
			}
			for k, v := range m.ActionValues {
				ms.actionValues[k] = v
			}
		}
	}
}

// Read implements engine.SnapshotReader: the objects at the rules' levels as they
// are now (DELETED and ARCHIVED left out, as the API read does), with the insights
// given so far; an object without insights in a window has 0 for every count.
func (w *world) Read(_ context.Context, acct config.Account, at time.Time, rs []*rules.Rule) (*insights.Snapshot, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("read %s: no rules", acct.ID)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lay := rs[0].Layout()
	var levels [3]bool
	for _, r := range rs {
		levels[r.Level] = true
	}
	info := w.t.account
	snap := &insights.Snapshot{Account: info, At: at, Tables: map[rules.Level]*insights.Table{}}
	for _, l := range rules.Levels {
		if !levels[l] {
			continue
		}
		var objs []insights.Object
		var src []*simObject
		for _, o := range w.objects {
			if o.level != l || o.obj.EffectiveStatus == "DELETED" || o.obj.EffectiveStatus == "ARCHIVED" {
				continue
			}
			obj := o.obj
			if camp := w.campaign(o); camp != nil && l != rules.LevelAd {
				obj.CampaignBudget = camp.DailyBudget > 0 || camp.LifetimeBudget > 0
			}
			if o.campaignBudget != nil && l != rules.LevelAd {
				obj.CampaignBudget = *o.campaignBudget
			}
			objs = append(objs, obj)
			src = append(src, o)
		}
		t := insights.NewTable(l, objs)
		t.Rows = lay.NewRows(len(objs))
		for i := range t.Objects {
			var camp, adset *insights.Object
			if c := w.campaign(src[i]); c != nil {
				cc := *c
				camp = &cc
			}
			if a := w.adset(src[i]); a != nil {
				aa := *a
				adset = &aa
			}
			if l == rules.LevelCampaign {
				camp = &t.Objects[i]
			}
			if l == rules.LevelAdSet {
				adset = &t.Objects[i]
			}
			insights.FillRow(lay, &t.Rows[i], &t.Objects[i], camp, adset, &info, &acct, at)
			w.fillMetrics(lay, &t.Rows[i], t.Objects[i].ID)
		}
		snap.Tables[l] = t
	}
	w.snaps[rs[0].Group.Name] = snap
	return snap, nil
}

// fillMetrics sets an object's insights in every window given so far. Purchases,
// leads and installs given by name are used as they are; otherwise they come from
// `actions` by the configured action types, the first present counting, as the
// insights reader does.
func (w *world) fillMetrics(lay *rules.Layout, row *rules.Row, id string) {
	for win, byObj := range w.metrics {
		ms := byObj[id]
		if ms == nil {
			continue
		}
		for i, m := range metricKeys {
			switch m {
			case rules.Purchases, rules.PurchaseValue, rules.Leads, rules.Installs:
				continue
			}
			lay.SetMetric(row, win, m, ms.base[i])
		}
		conv := func(kind string, countIdx, valueIdx int) {
			count, value := ms.base[countIdx], 0.0
			if valueIdx >= 0 {
				value = ms.base[valueIdx]
			}
			typ := ""
			for _, t := range w.cfg.Metrics.ActionTypes[kind] {
				if _, ok := ms.actions[t]; ok {
					typ = t
					break
				}
			}
			if !ms.given[countIdx] && typ != "" {
				count = ms.actions[typ]
			}
			lay.SetMetric(row, win, metricKeys[countIdx], count)
			if valueIdx >= 0 {
				if !ms.given[valueIdx] && typ != "" {
					value = ms.actionValues[typ]
				}
				lay.SetMetric(row, win, metricKeys[valueIdx], value)
			}
		}
		conv("purchase", 5, 6)
		conv("lead", 7, -1)
		conv("install", 8, -1)
		for t, v := range ms.actions {
			if slot, ok := lay.Num(rules.Key{Kind: rules.KeyAction, Window: win, ActionType: t}); ok {
				row.Num[slot] = v
			}
		}
		for t, v := range ms.actionValues {
			if slot, ok := lay.Num(rules.Key{Kind: rules.KeyActionValue, Window: win, ActionType: t}); ok {
				row.Num[slot] = v
			}
		}
	}
}

// Apply implements engine.Executor: every write succeeds and changes the test's
// object, so later steps see it.
func (w *world) Apply(_ context.Context, writes []actions.Write) []actions.Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]actions.Result, len(writes))
	for i, wr := range writes {
		out[i].Write = wr
		o, ok := w.byID[wr.ObjectID]
		if !ok {
			out[i].Reason, out[i].Permanent = "no object "+wr.ObjectID+" in the test", true
			continue
		}
		if s, ok := wr.Target.Status(); ok && wr.Field == actions.FieldStatus {
			o.obj.Status = s
			w.statusChanged(o, false)
		} else if m, ok := wr.Target.Amount(); ok {
			switch wr.Field {
			case actions.FieldDailyBudget:
				o.obj.DailyBudget = m
			case actions.FieldLifetimeBudget:
				o.obj.LifetimeBudget = m
			case actions.FieldBidAmount:
				o.obj.BidAmount = m
			default:
				out[i].Reason, out[i].Permanent = "unknown field "+wr.Field, true
				continue
			}
		}
		out[i].Applied, out[i].Observed = true, actions.FieldValue(&o.obj, wr.Field)
	}
	return out
}

// Reconcile implements engine.Executor. Apply never leaves an intent unfinished, so
// this only settles what a read of the object shows.
func (w *world) Reconcile(_ context.Context, intents []state.Intent, _ time.Duration, _ time.Time) []actions.Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]actions.Result, len(intents))
	for i, in := range intents {
		out[i].Write = actions.Write{IntentID: in.ID, AccountID: in.AccountID, ObjectID: in.ObjectID, Field: in.Field, Before: in.Before, Target: in.Target}
		o, ok := w.byID[in.ObjectID]
		if !ok {
			out[i].Reason, out[i].Permanent = "no object "+in.ObjectID+" in the test", true
			continue
		}
		v := actions.FieldValue(&o.obj, in.Field)
		out[i].Observed = v
		if v == in.Target {
			out[i].Applied = true
		} else {
			out[i].Superseded, out[i].Permanent, out[i].Reason = true, true, "superseded: the object holds "+v.String()
		}
	}
	return out
}
