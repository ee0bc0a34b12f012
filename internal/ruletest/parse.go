// Package ruletest runs rule unit tests (SPEC section 9, `rulesd test`): a test file
// names rule files, an ad account, its objects and a series of runs ("steps") with the
// insights Meta would report and the actions expected. Each step runs every group of
// the rule files through the daemon's own engine, with an in-memory snapshot reader,
// an in-memory executor that applies writes to the test's objects, and an in-memory
// SQLite state store, so pending `for`, cooldowns, conflicts, guards and manual holds
// behave exactly as in production.
package ruletest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// File is a loaded test file: its tests and the rules they test.
type File struct {
	Path  string
	Tests []*Test
	cfg   *config.Config
	set   *rules.Set
}

// Test is one test of a file.
type Test struct {
	Name    string
	Pos     diag.Pos
	account insights.Account
	cfgAcct config.Account
	objects []*objectDef
	steps   []*step
}

// objectDef is an object as the test declares it, before any step.
type objectDef struct {
	pos   diag.Pos
	level rules.Level
	obj   insights.Object
	// Inline parents: campaign: {...} and adset: {...} written under the object.
	campInline, adsetInline *insights.Object
	// campaignBudget overrides whether the budget is on the campaign.
	campaignBudget *bool
}

type step struct {
	pos      diag.Pos
	at       time.Time
	insights []windowInsights
	changes  []change
	expect   []expectation
}

type windowInsights struct {
	window rules.Window
	rows   []keyed[metricsSpec]
}

type change struct {
	id string
	c  objectChange
}

// expectation is one expected action of a step.
type expectation struct {
	pos    diag.Pos
	rule   *rules.Rule
	object string
	// result is the expected result; "" means an action that acts (applied or
	// dry_run).
	result string
	// after is the expected budget or bid in minor units, when given.
	after      *int64
	afterMajor float64
}

var (
	accountIDPattern = regexp.MustCompile(`^act_[0-9]+$`)
	currencyPattern  = regexp.MustCompile(`^[A-Z]{3}$`)
	statuses         = []string{"ACTIVE", "PAUSED", "ARCHIVED", "DELETED"}
	expectResults    = []string{
		state.ResultApplied, state.ResultDryRun, state.ResultFailed, state.ResultSkippedCooldown,
		state.ResultSkippedConflict, state.ResultSkippedNoop, state.ResultSkippedPacing, state.ResultSkippedManual,
		state.ResultBlockedGuard, state.ResultBlockedFlapping, "pending",
	}
)

// Load reads a test file and compiles the rule files it names. Every problem is
// returned as FILE:LINE:COL: message; the file is nil when any is an error.
func Load(path string) (*File, diag.List) {
	src, err := os.ReadFile(path)
	if err != nil {
		var l diag.List
		l.Errorf(diag.Pos{File: path}, "read test file: %v", err)
		return nil, l
	}
	return Parse(path, src)
}

// Parse is Load for a test file given as text; path names it in messages and rule
// files are relative to its directory.
func Parse(path string, src []byte) (*File, diag.List) {
	var l diag.List
	root := yamlx.Parse(path, src, &l)
	if root == nil {
		return nil, l
	}
	d := &yamlx.Decoder{File: path, Diags: &l, Src: src}
	var fs fileSpec
	d.Decode(root, &fs)
	if l.HasErrors() {
		l.Sort()
		return nil, l
	}
	f := &File{Path: path}
	f.cfg = parseConfig(path, fs.Config, &l)
	f.set = loadRules(path, fs.RuleFiles, f.cfg, &l)
	if len(fs.RuleFiles) == 0 {
		l.Errorf(fs.Pos, "rule_files must name at least one rule file")
	}
	if len(fs.Tests) == 0 {
		l.Errorf(fs.Pos, "tests must list at least one test")
	}
	if f.cfg == nil || f.set == nil {
		l.Sort()
		return nil, l
	}
	names := map[string]bool{}
	for i := range fs.Tests {
		ts := &fs.Tests[i]
		if names[ts.Name.Value] {
			d.Errorf(ts.Name.Node, "a test named %q is already in this file", ts.Name.Value)
		}
		names[ts.Name.Value] = true
		if t := f.test(d, ts); t != nil {
			f.Tests = append(f.Tests, t)
		}
	}
	l.Sort()
	if l.HasErrors() {
		return nil, l
	}
	return f, l
}

// parseConfig turns the config block into a Config through config.Parse (so every
// default and check is the daemon's), mapping the positions of its messages back to
// the test file.
func parseConfig(path string, n *yaml.Node, l *diag.List) *config.Config {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		c := config.Default()
		c.Path = path
		return c
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		l.Errorf(diag.Pos{File: path, Line: n.Line, Col: n.Column}, "config: %v", err)
		return nil
	}
	cfg, diags := config.Parse(path, out)
	if len(diags) == 0 {
		return cfg
	}
	// The marshalled text has the same tree as n: pair their nodes to map positions.
	var scratch diag.List
	positions := map[[2]int]diag.Pos{}
	if re := yamlx.Parse(path, out, &scratch); re != nil {
		pairNodes(re, n, func(a, b *yaml.Node) {
			positions[[2]int{a.Line, a.Column}] = diag.Pos{File: path, Line: b.Line, Col: b.Column}
		})
	}
	for _, dg := range diags {
		p, ok := positions[[2]int{dg.Pos.Line, dg.Pos.Col}]
		if !ok {
			p = diag.Pos{File: path, Line: n.Line, Col: n.Column}
		}
		dg.Pos = p
		*l = append(*l, dg)
	}
	return cfg
}

func pairNodes(a, b *yaml.Node, fn func(a, b *yaml.Node)) {
	for b.Kind == yaml.AliasNode && b.Alias != nil {
		b = b.Alias
	}
	fn(a, b)
	if len(a.Content) != len(b.Content) {
		return
	}
	for i := range a.Content {
		pairNodes(a.Content[i], b.Content[i], fn)
	}
}

// loadRules reads the rule files, relative to the test file, and compiles them with
// the test's config.
func loadRules(path string, files []yamlx.Scalar, cfg *config.Config, l *diag.List) *rules.Set {
	dir := filepath.Dir(path)
	var srcs []rules.Source
	ok := true
	for _, f := range files {
		p := f.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		p = filepath.Clean(p)
		paths := []string{p}
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil || len(m) == 0 {
				l.Errorf(f.Pos, "rule file pattern %q matches no file", f.Value)
				ok = false
				continue
			}
			paths = m
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				l.Errorf(f.Pos, "read rule file: %v", err)
				ok = false
				continue
			}
			srcs = append(srcs, rules.Source{Name: p, Data: data})
		}
	}
	if !ok || len(srcs) == 0 {
		return nil
	}
	// Without a valid config, the rules are still checked, without its names.
	set, diags := rules.Load(srcs, rules.Options{Config: cfg})
	// Warnings are rulesd check's business; the tests report only what stops them.
	*l = append(*l, diags.Errors()...)
	return set
}

func (f *File) test(d *yamlx.Decoder, ts *testSpec) *Test {
	before := len(d.Diags.Errors())
	t := &Test{Name: ts.Name.Value, Pos: ts.Pos}
	f.account(d, t, &ts.Account)
	objs := map[string]*objectDef{}
	for i := range ts.Objects {
		o := f.object(d, t, &ts.Objects[i])
		if o == nil {
			continue
		}
		if objs[o.obj.ID] != nil {
			d.Diags.Errorf(ts.Objects[i].ID.Pos, "object %q is already listed in this test (at line %d)", o.obj.ID, objs[o.obj.ID].pos.Line)
			continue
		}
		objs[o.obj.ID] = o
		t.objects = append(t.objects, o)
	}
	for _, o := range t.objects {
		if p := o.campInline; p != nil && objs[p.ID] != nil && objs[p.ID].level != rules.LevelCampaign {
			d.Diags.Errorf(o.pos, "object %q names %q as its campaign, but that object is a %s", o.obj.ID, p.ID, objs[p.ID].level)
		}
		if p := o.adsetInline; p != nil && objs[p.ID] != nil && objs[p.ID].level != rules.LevelAdSet {
			d.Diags.Errorf(o.pos, "object %q names %q as its ad set, but that object is a %s", o.obj.ID, p.ID, objs[p.ID].level)
		}
	}
	if len(ts.Steps) == 0 {
		d.Diags.Errorf(ts.Pos, "test %q has no steps", t.Name)
	}
	var last time.Time
	for i := range ts.Steps {
		s := f.step(d, t, objs, &ts.Steps[i])
		if s == nil {
			continue
		}
		if !last.IsZero() && !s.at.After(last) {
			d.Diags.Errorf(ts.Steps[i].At.Pos, "steps must be in time order: %s is not after the previous step's %s", s.at.Format(time.RFC3339), last.Format(time.RFC3339))
		}
		last = s.at
		t.steps = append(t.steps, s)
	}
	if len(d.Diags.Errors()) > before {
		return nil
	}
	return t
}

func (f *File) account(d *yamlx.Decoder, t *Test, as *accountSpec) {
	id := as.ID.Value
	if !accountIDPattern.MatchString(id) {
		d.Errorf(as.ID.Node, "account id %q must look like act_1234567890", id)
	}
	a := insights.Account{ID: id, Name: as.Name, Currency: "USD", Timezone: "UTC", Location: time.UTC}
	if as.Currency.Value != "" {
		a.Currency = as.Currency.Value
		if !currencyPattern.MatchString(a.Currency) {
			d.Errorf(as.Currency.Node, "currency %q must be an ISO 4217 code such as USD or EUR", a.Currency)
		}
	}
	if as.Timezone.Value != "" {
		loc, err := time.LoadLocation(as.Timezone.Value)
		if err != nil {
			d.Errorf(as.Timezone.Node, "unknown time zone %q (use an IANA name such as Europe/Berlin)", as.Timezone.Value)
		} else {
			a.Timezone, a.Location = as.Timezone.Value, loc
		}
	}
	// The account's vars, labels and safety come from the config; an account the
	// config does not list gets the config's defaults.
	if ca, ok := f.cfg.Account(id); ok {
		t.cfgAcct = *ca
	} else {
		t.cfgAcct = config.Account{ID: id, Pos: as.Pos, Safety: f.cfg.Safety}
	}
	if a.Name == "" {
		a.Name = t.cfgAcct.Name
	}
	if a.Name == "" {
		a.Name = id
	}
	t.account = a
}

func (f *File) money(d *yamlx.Decoder, t *Test, pos diag.Pos, key string, v *float64) int64 {
	if v == nil {
		return 0
	}
	if *v < 0 || math.IsNaN(*v) {
		d.Diags.Errorf(pos, "%s must not be negative", key)
		return 0
	}
	return money.ToMinor(*v, t.account.Currency, money.Nearest)
}

func checkStatus(d *yamlx.Decoder, s yamlx.Scalar) string {
	if !s.Set() || s.Value == "" {
		return ""
	}
	if !slices.Contains(statuses, s.Value) {
		d.Errorf(s.Node, "status %q must be one of %s%s", s.Value, strings.Join(statuses, ", "), diag.DidYouMean(s.Value, statuses))
		return ""
	}
	return s.Value
}

func (f *File) object(d *yamlx.Decoder, t *Test, spec *objectSpec) *objectDef {
	level, ok := rules.ParseLevel(spec.Level.Value)
	if !ok {
		d.Errorf(spec.Level.Node, "level %q must be campaign, adset or ad%s", spec.Level.Value, diag.DidYouMean(spec.Level.Value, []string{"campaign", "adset", "ad"}))
		return nil
	}
	o := &objectDef{pos: spec.Pos, level: level, campaignBudget: spec.CampaignBudget}
	ob := &o.obj
	ob.ID, ob.Name = spec.ID.Value, spec.Name
	ob.Status = checkStatus(d, spec.Status)
	if ob.Status == "" {
		ob.Status = "ACTIVE"
	}
	ob.EffectiveStatus = spec.EffectiveStatus
	ob.Objective, ob.OptimizationGoal, ob.BidStrategy = spec.Objective, spec.OptimizationGoal, spec.BidStrategy
	ob.DailyBudget = f.money(d, t, spec.Pos, "daily_budget", spec.DailyBudget)
	ob.LifetimeBudget = f.money(d, t, spec.Pos, "lifetime_budget", spec.LifetimeBudget)
	ob.BudgetRemaining = f.money(d, t, spec.Pos, "budget_remaining", spec.BudgetRemaining)
	ob.BidAmount = f.money(d, t, spec.Pos, "bid_amount", spec.BidAmount)
	if spec.CreatedTime.Value != "" {
		c, err := time.Parse(time.RFC3339, spec.CreatedTime.Value)
		if err != nil {
			d.Errorf(spec.CreatedTime.Node, "created_time %q must be an RFC 3339 time such as 2026-11-01T00:00:00Z", spec.CreatedTime.Value)
		}
		ob.Created = c
	}
	switch level {
	case rules.LevelCampaign:
		ob.CampaignID = ob.ID
		if spec.Campaign != nil {
			d.Diags.Errorf(spec.Campaign.Pos, "a campaign has no parent campaign: write its objective as objective: directly")
		}
		if spec.AdSet != nil {
			d.Diags.Errorf(spec.AdSet.Pos, "a campaign has no ad set")
		}
	case rules.LevelAdSet:
		ob.AdSetID = ob.ID
		if spec.AdSet != nil {
			d.Diags.Errorf(spec.AdSet.Pos, "an ad set has no parent ad set")
		}
	case rules.LevelAd:
		if spec.Objective != "" || spec.OptimizationGoal != "" || spec.BidStrategy != "" {
			d.Diags.Errorf(spec.Pos, "an ad has no objective, optimization_goal or bid_strategy: write them under campaign: and adset:")
		}
	}
	if spec.Campaign != nil {
		o.campInline = f.parent(d, t, spec.Campaign)
		ob.CampaignID = o.campInline.ID
	}
	if spec.AdSet != nil {
		o.adsetInline = f.parent(d, t, spec.AdSet)
		ob.AdSetID = o.adsetInline.ID
	}
	return o
}

func (f *File) parent(d *yamlx.Decoder, t *Test, ps *parentSpec) *insights.Object {
	p := &insights.Object{ID: ps.ID.Value, Name: ps.Name, EffectiveStatus: ps.EffectiveStatus,
		Objective: ps.Objective, OptimizationGoal: ps.OptimizationGoal, BidStrategy: ps.BidStrategy}
	p.Status = checkStatus(d, ps.Status)
	if p.Status == "" {
		p.Status = "ACTIVE"
	}
	if p.EffectiveStatus == "" {
		p.EffectiveStatus = p.Status
	}
	p.DailyBudget = f.money(d, t, ps.Pos, "daily_budget", ps.DailyBudget)
	p.LifetimeBudget = f.money(d, t, ps.Pos, "lifetime_budget", ps.LifetimeBudget)
	return p
}

func (f *File) step(d *yamlx.Decoder, t *Test, objs map[string]*objectDef, ss *stepSpec) *step {
	at, err := time.Parse(time.RFC3339, ss.At.Value)
	if err != nil {
		d.Errorf(ss.At.Node, "at %q must be an RFC 3339 time such as 2026-11-20T15:00:00Z", ss.At.Value)
		return nil
	}
	s := &step{pos: ss.Pos, at: at.UTC()}
	ids := make([]string, 0, len(objs))
	for _, o := range t.objects {
		ids = append(ids, o.obj.ID)
	}
	knownObject := func(k yamlx.Scalar) bool {
		if objs[k.Value] != nil {
			return true
		}
		d.Errorf(k.Node, "no object %q in this test's objects%s", k.Value, diag.DidYouMean(k.Value, ids))
		return false
	}
	windowNames := make([]string, len(rules.Windows))
	for i, w := range rules.Windows {
		windowNames[i] = w.String()
	}
	for _, wk := range ss.Insights.Windows {
		w, ok := rules.ParseWindow(wk.Key.Value)
		if !ok {
			d.Errorf(wk.Key.Node, "unknown window %q (one of %s)%s", wk.Key.Value, strings.Join(windowNames, ", "), diag.DidYouMean(wk.Key.Value, windowNames))
			continue
		}
		wi := windowInsights{window: w}
		for _, row := range wk.Value {
			if !knownObject(row.Key) {
				continue
			}
			checkMetrics(d, &row.Value)
			wi.rows = append(wi.rows, row)
		}
		s.insights = append(s.insights, wi)
	}
	for _, c := range ss.ObjectsSet.Objects {
		if !knownObject(c.Key) {
			continue
		}
		checkStatus(d, c.Value.Status)
		for _, v := range []*float64{c.Value.DailyBudget, c.Value.LifetimeBudget, c.Value.BudgetRemaining, c.Value.BidAmount} {
			if v != nil && *v < 0 {
				d.Diags.Errorf(c.Value.Pos, "budgets and bids must not be negative")
			}
		}
		s.changes = append(s.changes, change{id: c.Key.Value, c: c.Value})
	}
	for i := range ss.Expect {
		if e, ok := f.expectation(d, t, objs, ids, &ss.Expect[i]); ok {
			s.expect = append(s.expect, e)
		}
	}
	return s
}

func checkMetrics(d *yamlx.Decoder, m *metricsSpec) {
	bad := false
	for _, v := range []*float64{m.Spend, m.Impressions, m.Reach, m.Clicks, m.LinkClicks, m.Purchases, m.PurchaseValue, m.Leads, m.Installs} {
		bad = bad || (v != nil && *v < 0)
	}
	for _, v := range m.Actions {
		bad = bad || v < 0
	}
	for _, v := range m.ActionValues {
		bad = bad || v < 0
	}
	if bad {
		d.Diags.Errorf(m.Pos, "insights values must not be negative")
	}
}

// findRule resolves "rule" or "group/rule".
func (f *File) findRule(d *yamlx.Decoder, s yamlx.Scalar) *rules.Rule {
	group, name, qualified := strings.Cut(s.Value, "/")
	if !qualified {
		group, name = "", s.Value
	}
	var found []*rules.Rule
	var all []string
	for _, g := range f.set.Groups {
		for _, r := range g.Rules {
			all = append(all, r.Name)
			if r.Name == name && (group == "" || g.Name == group) {
				found = append(found, r)
			}
		}
	}
	switch len(found) {
	case 0:
		d.Errorf(s.Node, "no rule %q in the rule files under test%s", s.Value, diag.DidYouMean(name, all))
		return nil
	case 1:
		return found[0]
	}
	var gs []string
	for _, r := range found {
		gs = append(gs, r.Group.Name+"/"+r.Name)
	}
	d.Errorf(s.Node, "rule %q is in several groups: write one of %s", s.Value, strings.Join(gs, ", "))
	return nil
}

// actionMatches reports whether the action written in a test names the rule's kind:
// its name, or "budget" / "bid" for the set_ and change_ kinds.
func actionMatches(written string, k rules.ActionKind) bool {
	return written == k.String() || written == k.Field() && (written == "budget" || written == "bid")
}

func (f *File) expectation(d *yamlx.Decoder, t *Test, objs map[string]*objectDef, ids []string, es *expectSpec) (expectation, bool) {
	e := expectation{pos: es.Pos, object: es.Object.Value}
	r := f.findRule(d, es.Rule)
	o := objs[es.Object.Value]
	if o == nil {
		d.Errorf(es.Object.Node, "no object %q in this test's objects%s", es.Object.Value, diag.DidYouMean(es.Object.Value, ids))
	}
	if r == nil || o == nil {
		return e, false
	}
	e.rule = r
	ok := true
	if r.Level != o.level {
		d.Errorf(es.Object.Node, "rule %s works on %ss; object %q is a %s", r.Name, r.Level, o.obj.ID, o.level)
		ok = false
	}
	if !actionMatches(es.Action.Value, r.Action.Kind) {
		d.Errorf(es.Action.Node, "rule %s's action is %s, not %q", r.Name, r.Action.Kind, es.Action.Value)
		ok = false
	}
	if es.Result.Set() && es.Result.Value != "" {
		if !slices.Contains(expectResults, es.Result.Value) {
			d.Errorf(es.Result.Node, "result %q must be one of %s%s", es.Result.Value, strings.Join(expectResults, ", "), diag.DidYouMean(es.Result.Value, expectResults))
			ok = false
		}
		e.result = es.Result.Value
	}
	if es.After != nil {
		if f := r.Action.Kind.Field(); f != "budget" && f != "bid" {
			d.Diags.Errorf(es.After.Pos, "after: is the budget or bid after a budget or bid action; rule %s's action is %s", r.Name, r.Action.Kind)
			ok = false
		} else if es.After.Value < 0 {
			d.Diags.Errorf(es.After.Pos, "after must not be negative")
			ok = false
		}
		minor := money.ToMinor(es.After.Value, t.account.Currency, money.Nearest)
		e.after, e.afterMajor = &minor, es.After.Value
	}
	return e, ok
}

func (e expectation) String() string {
	s := fmt.Sprintf("%s/%s on %s: %s", e.rule.Group.Name, e.rule.Name, e.object, e.rule.Action.Kind)
	if e.after != nil {
		s += fmt.Sprintf(" to %s", formatNumber(e.afterMajor))
	}
	if e.result != "" {
		s += " (" + e.result + ")"
	}
	return s
}
