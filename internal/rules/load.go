package rules

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// Set is every group of a set of rule files, compiled against one Layout.
type Set struct {
	Groups []*Group
	Layout *Layout
	Files  []string
}

// Group is a rule group: its rules run together on one schedule.
type Group struct {
	Name string
	Pos  diag.Pos
	// Schedule is the cron schedule as written (or the config's default).
	Schedule string
	// AccountTimezone evaluates the schedule in each ad account's own time zone.
	AccountTimezone bool
	// Location is the time zone of the schedule unless AccountTimezone is set or the
	// schedule carries CRON_TZ.
	Location *time.Location
	// AccountIDs and AccountLabels select the accounts; both empty means every
	// account of the config.
	AccountIDs    []string
	AccountLabels []map[string]string
	DryRun        bool
	// MaxActionsPerRun is the blast-radius limit; 0 means the config's.
	MaxActionsPerRun int
	Rules            []*Rule
	// Hash identifies the group's definition, so a reload can tell a changed group.
	Hash string

	layout *Layout
}

// Selects reports whether the group runs for the account.
func (g *Group) Selects(a config.Account) bool {
	if len(g.AccountIDs) == 0 && len(g.AccountLabels) == 0 {
		return true
	}
	if contains(g.AccountIDs, a.ID) {
		return true
	}
	for _, sel := range g.AccountLabels {
		all := true
		for k, v := range sel {
			if a.Labels[k] != v {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// Rule is a compiled rule.
type Rule struct {
	Group       *Group
	Name        string
	Description string
	Pos         diag.Pos
	Level       Level
	Window      Window
	// For is how long the condition must hold before the rule acts; 0 acts at once.
	For time.Duration
	// Cooldown is how long the rule leaves an object alone after acting on it.
	Cooldown time.Duration
	DryRun   bool
	Labels   map[string]string
	Action   Action
	Notify   []string
	// Where and When are the expressions as written, for display and for detecting
	// a change on reload.
	Where, When string
	// Reads is what the rule reads, for the insights reader.
	Reads *Reads
	// Values are the names the rule's expressions read, in order of appearance.
	Values []Value

	where, when         triFn
	whereNode, whenNode ast.Node
}

// Layout is the layout of the rows the rule evaluates: that of its rule set.
func (r *Rule) Layout() *Layout { return r.Group.layout }

// Action is what a rule does to a matched object.
type Action struct {
	Kind ActionKind
	// RestoreAfter sets a paused object ACTIVE again after this long (pause only).
	RestoreAfter time.Duration
	// Budget is "daily", "lifetime" or "" for whichever the object has.
	Budget string
	// Amount is the target of set_budget and set_bid, in major units.
	Amount *NumExpr
	// By is the change of change_budget and change_bid.
	By *Change
	// Min and Max clip the result, in major units.
	Min, Max *NumExpr
	// Message is the notify template; nil for the default text.
	Message *template.Template
}

// NumExpr is a number written as a constant or an expression.
type NumExpr struct {
	Src string
	fn  numFn
}

// Eval returns the value for the object in r; NaN when it cannot be computed.
func (e *NumExpr) Eval(r *Row) float64 { return e.fn(r) }

// Change is a relative change: "+20%" is {Percent: true, Delta: 20}, "-5" is
// {Delta: -5} in major units.
type Change struct {
	Percent bool
	Delta   float64
	Src     string
}

// Match evaluates the rule on one object: it is in scope when where is True, and
// matches when where and when are both True (SPEC 3.2). It does not allocate.
func (r *Rule) Match(row *Row) (inScope, match bool) {
	if r.where != nil && r.where(row) != True {
		return false, false
	}
	return true, r.when(row) == True
}

// Source is a rule file's name and content.
type Source struct {
	Name string
	Data []byte
}

// Options are the inputs of a load besides the files.
type Options struct {
	// Config supplies account variables and labels, notifiers, the default schedule
	// and time zone. Without one, names under account.vars and account.labels and
	// notifier names are not checked.
	Config *config.Config
}

// LoadFiles reads and compiles rule files.
func LoadFiles(paths []string, opts Options) (*Set, diag.List) {
	var srcs []Source
	var l diag.List
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			l.Errorf(diag.Pos{File: p}, "read rule file: %v", err)
			continue
		}
		srcs = append(srcs, Source{Name: p, Data: data})
	}
	set, more := Load(srcs, opts)
	l = append(l, more...)
	l.Sort()
	if l.HasErrors() {
		return nil, l
	}
	return set, l
}

// Load compiles rule files given as text. Every problem in every file is reported;
// the set is nil when any is an error.
func Load(srcs []Source, opts Options) (*Set, diag.List) {
	var l diag.List
	ld := &loader{
		diags: &l,
		cfg:   opts.Config,
		comp:  &exprCompiler{layout: newLayout(), metrics: map[string]*customMetric{}},
		set:   &Set{},
	}
	if ld.cfg != nil {
		ld.comp.vars = ld.cfg.VarNames()
		ld.comp.labels = ld.cfg.LabelNames()
		if ld.comp.vars == nil {
			ld.comp.vars = []string{}
		}
		if ld.comp.labels == nil {
			ld.comp.labels = []string{}
		}
	}
	ld.set.Layout = ld.comp.layout
	var files []parsedFile
	for _, src := range srcs {
		ld.set.Files = append(ld.set.Files, src.Name)
		d := &yamlx.Decoder{File: src.Name, Diags: &l, Src: src.Data}
		root := yamlx.Parse(src.Name, src.Data, &l)
		if root == nil {
			continue
		}
		var fs fileSpec
		d.Decode(root, &fs)
		files = append(files, parsedFile{dec: d, spec: fs})
		ld.metricsOf(d, &fs.Metrics)
	}
	ld.checkMetricCycles()
	ld.checkDefaultSchedule()
	for _, f := range files {
		for i := range f.spec.Groups {
			ld.group(f.dec, &f.spec.Groups[i])
		}
	}
	lint(ld.set, &l)
	l.Sort()
	if l.HasErrors() {
		return nil, l
	}
	return ld.set, l
}

type parsedFile struct {
	dec  *yamlx.Decoder
	spec fileSpec
}

type loader struct {
	diags   *diag.List
	cfg     *config.Config
	comp    *exprCompiler
	set     *Set
	groups  map[string]diag.Pos
	metricP map[string]diag.Pos
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (ld *loader) metricsOf(d *yamlx.Decoder, n *yaml.Node) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "metrics must be a mapping of names to expressions, like aov: purchase_value / purchases")
		return
	}
	if ld.metricP == nil {
		ld.metricP = map[string]diag.Pos{}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		switch {
		case !identRe.MatchString(name):
			d.Errorf(k, "custom metric name %q must be a plain name (letters, digits, _)", name)
			continue
		case isBuiltinName(name):
			d.Errorf(k, "custom metric %s reuses a built-in name; choose another name", name)
			continue
		}
		if prev, dup := ld.metricP[name]; dup {
			d.Errorf(k, "custom metric %s is already defined at %s", name, prev)
			continue
		}
		ld.metricP[name] = d.Pos(k)
		var src yamlx.Scalar
		d.DecodeField(v, &src, name)
		cm := &customMetric{name: name, src: src, dec: d}
		node, err := parseExpr(src.Value)
		if err != nil {
			report(d, src, "metric "+name, err)
			cm.broken = true
		}
		cm.node = node
		ld.comp.metrics[name] = cm
	}
}

func isBuiltinName(name string) bool {
	if _, ok := metricByName(name); ok {
		return true
	}
	if _, ok := derivedByName(name); ok {
		return true
	}
	if _, ok := ParseWindow(name); ok {
		return true
	}
	if _, ok := ownAttrs[name]; ok {
		return true
	}
	return contains([]string{"campaign", "adset", "account", "actions", "action_values"}, name) || contains(functionNames, name)
}

// checkMetricCycles reports custom metrics that depend on themselves, naming the
// whole cycle, and then compiles each metric once to report its errors.
func (ld *loader) checkMetricCycles() {
	names := make([]string, 0, len(ld.comp.metrics))
	for n := range ld.comp.metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	deps := map[string][]string{}
	for _, n := range names {
		cm := ld.comp.metrics[n]
		if cm.node == nil {
			continue
		}
		seen := map[string]bool{}
		ast.Find(cm.node, func(x ast.Node) bool {
			if id, ok := x.(*ast.IdentifierNode); ok && ld.comp.metrics[id.Value] != nil && !seen[id.Value] {
				seen[id.Value] = true
				deps[n] = append(deps[n], id.Value)
			}
			return false
		})
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range deps[n] {
			switch color[m] {
			case grey:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				cycle := append(append([]string{}, stack[i:]...), m)
				for _, c := range stack[i:] {
					ld.comp.metrics[c].broken = true
				}
				cm := ld.comp.metrics[m]
				cm.dec.Diags.Errorf(cm.src.Pos, "custom metrics form a cycle: %s", strings.Join(cycle, " -> "))
			case white:
				visit(m)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range names {
		if color[n] == white {
			visit(n)
		}
	}
	for _, n := range names {
		cm := ld.comp.metrics[n]
		if cm.broken {
			continue
		}
		if _, _, err := ld.comp.customIn(cm, Today); err != nil {
			report(cm.dec, cm.src, "metric "+n, err)
			cm.broken = true
		}
	}
}

// checkDefaultSchedule checks the config's schedule, which every group without its
// own runs on: the config package cannot parse schedules, and a bad default would
// otherwise load cleanly and leave those groups never running.
func (ld *loader) checkDefaultSchedule() {
	if ld.cfg == nil || !ld.cfg.Schedule.Set() {
		return
	}
	ld.checkSchedule(ld.cfg.Schedule, func(pos diag.Pos, format string, args ...any) {
		ld.diags.Errorf(pos, "schedule: "+format, args...)
	})
}

// checkSchedule reports an invalid schedule as an error and one more frequent than
// insights refresh as a warning.
func (ld *loader) checkSchedule(s yamlx.Scalar, errorf func(pos diag.Pos, format string, args ...any)) {
	if sched, err := ParseSchedule(s.Value); err != nil {
		errorf(s.Pos, "%v", err)
	} else if iv := minInterval(sched); iv < 15*time.Minute {
		ld.diags.Warnf(s.Pos, "schedule runs every %s: Meta refreshes insights about every 15 minutes, so runs more frequent than that see the same numbers", iv)
	}
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a group schedule; robfig/cron panics on some malformed
// CRON_TZ prefixes, so the panic becomes an error here.
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	if tz, ok := strings.CutPrefix(spec, "CRON_TZ="); ok {
		zone, _, _ := strings.Cut(tz, " ")
		if _, err := time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("unknown time zone %q in CRON_TZ (use an IANA name such as Europe/Berlin)", zone)
		}
	}
	s, err = cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %v (write 5 fields such as \"*/30 * * * *\", or @every 30m, @hourly)", spec, err)
	}
	return s, nil
}

// minInterval is the shortest gap between runs of s over a sample week.
func minInterval(s cron.Schedule) time.Duration {
	t := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	end := t.Add(7 * 24 * time.Hour)
	best := time.Duration(math.MaxInt64)
	for i := 0; i < 10000 && t.Before(end); i++ {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		if i > 0 && next.Sub(t) < best {
			best = next.Sub(t)
		}
		t = next
	}
	return best
}

func (ld *loader) group(d *yamlx.Decoder, gs *groupSpec) {
	if !gs.Name.Set() {
		return
	}
	if ld.groups == nil {
		ld.groups = map[string]diag.Pos{}
	}
	if prev, dup := ld.groups[gs.Name.Value]; dup {
		d.Errorf(gs.Name.Node, "group name %q is already used at %s; group names must be unique across all files", gs.Name.Value, prev)
		return
	}
	ld.groups[gs.Name.Value] = gs.Name.Pos
	g := &Group{Name: gs.Name.Value, Pos: gs.Pos, Location: time.UTC, layout: ld.comp.layout}
	if ld.cfg != nil {
		if loc, err := time.LoadLocation(ld.cfg.Timezone.Value); err == nil {
			g.Location = loc
		}
	}
	g.Schedule = config.DefaultSchedule
	if ld.cfg != nil {
		g.Schedule = ld.cfg.Schedule.Value
	}
	if gs.Schedule.Set() {
		g.Schedule = gs.Schedule.Value
		ld.checkSchedule(gs.Schedule, d.Diags.Errorf)
	}
	switch tz := gs.Timezone.Value; {
	case tz == "account":
		g.AccountTimezone = true
	case tz != "":
		loc, err := time.LoadLocation(tz)
		if err != nil {
			d.Errorf(gs.Timezone.Node, "timezone must be \"account\" or an IANA time zone such as Europe/Berlin, not %q", tz)
		} else {
			g.Location = loc
		}
	}
	for _, it := range gs.Accounts.items {
		if it.labels != nil {
			g.AccountLabels = append(g.AccountLabels, it.labels)
			continue
		}
		g.AccountIDs = append(g.AccountIDs, it.id)
		if ld.cfg != nil {
			if _, ok := ld.cfg.Account(it.id); !ok {
				d.Diags.Errorf(it.pos, "account %s is not in the config%s", it.id, diag.DidYouMean(it.id, ld.cfg.AccountIDs()))
			}
		}
	}
	if gs.DryRun != nil {
		g.DryRun = *gs.DryRun
	}
	if gs.MaxActionsPerRun != nil {
		if *gs.MaxActionsPerRun < 1 {
			d.Errorf(valueNode(gs.Node, "max_actions_per_run"), "max_actions_per_run must be at least 1")
		}
		g.MaxActionsPerRun = *gs.MaxActionsPerRun
	}
	names := map[string]diag.Pos{}
	for i := range gs.Rules {
		rs := &gs.Rules[i]
		if !rs.Name.Set() {
			continue
		}
		if prev, dup := names[rs.Name.Value]; dup {
			d.Errorf(rs.Name.Node, "rule name %q is already used in group %s at %s", rs.Name.Value, g.Name, prev)
			continue
		}
		names[rs.Name.Value] = rs.Name.Pos
		if r := ld.rule(d, g, rs); r != nil {
			g.Rules = append(g.Rules, r)
		}
	}
	g.Hash = hashGroup(gs)
	ld.set.Groups = append(ld.set.Groups, g)
}

// valueNode returns the value of key in the mapping n, or n when it has none.
func valueNode(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return n
}

func (ld *loader) duration(d *yamlx.Decoder, s yamlx.Scalar, key string) (time.Duration, bool) {
	if !s.Set() || s.Value == "" {
		return 0, false
	}
	v, err := config.ParseDuration(s.Value)
	if err != nil {
		d.Errorf(s.Node, "%s: %v", key, err)
		return 0, false
	}
	return v, true
}

func (ld *loader) rule(d *yamlx.Decoder, g *Group, rs *ruleSpec) *Rule {
	before := len(d.Diags.Errors())
	r := &Rule{Group: g, Name: rs.Name.Value, Description: rs.Description, Pos: rs.Pos, Labels: rs.Labels, Reads: NewReads()}
	level, ok := ParseLevel(rs.Level.Value)
	if !ok && rs.Level.Set() {
		d.Errorf(rs.Level.Node, "unknown level %q: use campaign, adset or ad%s", rs.Level.Value, diag.DidYouMean(rs.Level.Value, levelNames[:]))
	}
	window, wok := ParseWindow(rs.Window.Value)
	if !wok && rs.Window.Set() {
		d.Errorf(rs.Window.Node, "unknown window %q (windows: %s)%s", rs.Window.Value, strings.Join(windowNames[:], ", "), diag.DidYouMean(rs.Window.Value, windowNames[:]))
	}
	if !ok || !wok {
		return nil // expressions cannot be checked without their level and window
	}
	r.Level, r.Window = level, window
	r.For, _ = ld.duration(d, rs.For, "for")
	if rs.DryRun != nil {
		r.DryRun = *rs.DryRun
	}
	s := &scope{level: level, window: window, reads: r.Reads, values: &r.Values}
	// Every rule reads what identifies an object and what the guards need.
	for _, a := range []string{"id", "name", "status"} {
		ld.comp.attr(a, a, tStr, &scope{reads: r.Reads})
	}
	// ratioIn is the expression the first ratio metric was read in: its offset
	// (s.ratioPos) counts in that expression's text.
	ratioIn := rs.When
	if rs.Where.Set() {
		r.Where = rs.Where.Value
		v, node, err := ld.comp.compileSource(rs.Where.Value, s, tBool)
		if err != nil {
			report(d, rs.Where, "where", err)
		}
		r.where, r.whereNode = v.tri, node
		if s.ratioName != "" {
			ratioIn = rs.Where
		}
	}
	if rs.When.Set() {
		r.When = rs.When.Value
		v, node, err := ld.comp.compileSource(rs.When.Value, s, tBool)
		if err != nil {
			report(d, rs.When, "when", err)
		}
		r.when, r.whenNode = v.tri, node
	}
	if s.ratioName != "" && !s.volume && len(d.Diags.Errors()) == before {
		d.Diags.Warnf(d.OffsetPos(ratioIn.Node, s.ratioPos), "rule %s compares %s without any volume condition (spend, impressions, purchases, clicks, ...): a ratio on a handful of events swings wildly; add e.g. impressions > 1000", r.Name, s.ratioName)
	}
	ld.action(d, r, rs, s)
	for _, n := range rs.Notify {
		if ld.cfg != nil && !ld.cfg.HasNotifier(n.Value) {
			d.Errorf(n.Node, "notifier %q is not in the config%s", n.Value, diag.DidYouMean(n.Value, ld.cfg.NotifierNames()))
		}
		r.Notify = append(r.Notify, n.Value)
	}
	r.Cooldown = r.Action.Kind.DefaultCooldown()
	if v, ok := ld.duration(d, rs.Cooldown, "cooldown"); ok {
		r.Cooldown = v
	}
	if len(d.Diags.Errors()) > before {
		return nil
	}
	return r
}

var byRe = regexp.MustCompile(`^([+-])\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)$`)

func (ld *loader) action(d *yamlx.Decoder, r *Rule, rs *ruleSpec, s *scope) {
	as := &rs.Action
	if !as.Kind.Set() {
		return
	}
	kind, ok := ParseActionKind(as.Kind.Value)
	if !ok {
		d.Errorf(as.Kind.Node, "unknown action kind %q (kinds: %s)%s", as.Kind.Value, strings.Join(actionNames[:], ", "), diag.DidYouMean(as.Kind.Value, actionNames[:]))
		return
	}
	a := &r.Action
	a.Kind = kind
	if !allowedAt(kind, r.Level) {
		d.Errorf(as.Kind.Node, "action %s is not allowed at level %s (allowed at: %s)", kind, r.Level, levelList(kind.Levels()))
	}
	// Which fields each kind takes; any other is a mistake worth naming.
	takes := map[string]bool{}
	switch kind {
	case Pause:
		takes["restore_after"] = true
	case SetBudget:
		takes["amount"], takes["budget"] = true, true
	case ChangeBudget:
		takes["by"], takes["min"], takes["max"], takes["budget"] = true, true, true, true
	case SetBid:
		takes["amount"] = true
	case ChangeBid:
		takes["by"], takes["min"], takes["max"] = true, true, true
	case Notify:
		takes["message"] = true
	}
	fields := []struct {
		key string
		s   yamlx.Scalar
	}{{"restore_after", as.RestoreAfter}, {"amount", as.Amount}, {"by", as.By}, {"min", as.Min}, {"max", as.Max}, {"budget", as.Budget}, {"message", as.Message}}
	for _, f := range fields {
		if f.s.Set() && !takes[f.key] {
			d.Errorf(f.s.Node, "action %s does not take %s", kind, f.key)
		}
	}
	switch kind {
	case Pause, Unpause:
		s.reads.addAttr("status")
		s.reads.addAttr("paused_by_rulesd")
	case SetBudget, ChangeBudget:
		for _, a := range []string{"daily_budget", "lifetime_budget", "campaign_budget"} {
			s.reads.addAttr(a)
		}
	case SetBid, ChangeBid:
		s.reads.addAttr("bid_amount")
	}
	if takes["restore_after"] {
		a.RestoreAfter, _ = ld.duration(d, as.RestoreAfter, "restore_after")
	}
	if takes["budget"] && as.Budget.Set() {
		switch as.Budget.Value {
		case "daily", "lifetime":
			a.Budget = as.Budget.Value
		default:
			d.Errorf(as.Budget.Node, "budget must be daily or lifetime, not %q", as.Budget.Value)
		}
	}
	needs := func(key string, v yamlx.Scalar) {
		if !v.Set() {
			d.Errorf(as.Kind.Node, "action %s needs %s", kind, key)
		}
	}
	if takes["amount"] {
		needs("amount", as.Amount)
		a.Amount = ld.numExpr(d, as.Amount, "amount", s)
	}
	if takes["by"] {
		needs("by", as.By)
		if as.By.Set() {
			m := byRe.FindStringSubmatch(strings.TrimSpace(as.By.Value))
			if m == nil {
				d.Errorf(as.By.Node, "by must be a signed change such as \"+20%%\", \"-15%%\", \"+10\" or \"-5\" (amounts in the account's currency), not %q", as.By.Value)
			} else {
				v, _ := strconv.ParseFloat(m[2], 64)
				if m[1] == "-" {
					v = -v
				}
				if v == 0 {
					d.Errorf(as.By.Node, "by %q changes nothing", as.By.Value)
				}
				if m[3] == "%" && v <= -100 {
					d.Errorf(as.By.Node, "by %q would remove the whole budget or bid; use pause instead", as.By.Value)
				}
				a.By = &Change{Percent: m[3] == "%", Delta: v, Src: as.By.Value}
			}
		}
		a.Min = ld.numExpr(d, as.Min, "min", s)
		a.Max = ld.numExpr(d, as.Max, "max", s)
		if as.Min.Set() && as.Max.Set() {
			lo, lok := yamlx.ParseNumber(as.Min.Node)
			hi, hok := yamlx.ParseNumber(as.Max.Node)
			if lok && hok && lo > hi {
				d.Errorf(as.Min.Node, "min (%v) is above max (%v)", lo, hi)
			}
		}
		if a.By != nil && a.By.Delta > 0 && a.Max == nil {
			d.Diags.Warnf(as.By.Pos, "rule %s increases the %s by %s without max: add a max so that repeated increases stop somewhere", r.Name, kind.Field(), as.By.Value)
		}
	}
	if takes["message"] && as.Message.Set() {
		a.Message = ld.message(d, as.Message, s)
	}
}

// numExpr compiles an amount, min or max: a YAML number or an expression string.
func (ld *loader) numExpr(d *yamlx.Decoder, v yamlx.Scalar, key string, s *scope) *NumExpr {
	if !v.Set() || v.Value == "" {
		return nil
	}
	if f, ok := yamlx.ParseNumber(v.Node); ok {
		if f < 0 {
			d.Errorf(v.Node, "%s must not be negative", key)
		}
		return &NumExpr{Src: v.Value, fn: func(*Row) float64 { return f }}
	}
	c, _, err := ld.comp.compileSource(v.Value, s, tNum)
	if err != nil {
		report(d, v, key, err)
		return nil
	}
	return &NumExpr{Src: v.Value, fn: c.num}
}

// message parses a notify template and checks every name it uses.
func (ld *loader) message(d *yamlx.Decoder, v yamlx.Scalar, s *scope) *template.Template {
	t, err := template.New("message").Option("missingkey=error").Parse(v.Value)
	if err != nil {
		d.Errorf(v.Node, "message: %v", strings.TrimPrefix(err.Error(), "template: message:"))
		return nil
	}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, x := range n.Nodes {
				walk(x)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				for _, a := range c.Args {
					walk(a)
				}
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.FieldNode:
			if _, err := ld.comp.resolve(&ast.IdentifierNode{}, n.Ident, s); err != nil {
				d.Errorf(v.Node, "message: {{.%s}}: %s", strings.Join(n.Ident, "."), err.msg)
			}
		}
	}
	walk(t.Tree.Root)
	return t
}
