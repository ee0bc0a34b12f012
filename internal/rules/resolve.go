package rules

import (
	"math"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

type attrDef struct {
	t      vtype
	levels []Level // nil: every level
	why    string  // why it is not available at other levels
}

var (
	budgetLevels = []Level{LevelCampaign, LevelAdSet}
	ownAttrs     = map[string]attrDef{
		"id":                 {t: tStr},
		"name":               {t: tStr},
		"level":              {t: tStr},
		"status":             {t: tStr},
		"effective_status":   {t: tStr},
		"daily_budget":       {t: tNum, levels: budgetLevels, why: "ads have no budget"},
		"lifetime_budget":    {t: tNum, levels: budgetLevels, why: "ads have no budget"},
		"budget_remaining":   {t: tNum, levels: budgetLevels, why: "ads have no budget"},
		"campaign_budget":    {t: tBool, levels: budgetLevels, why: "ads have no budget"},
		"bid_amount":         {t: tNum, levels: []Level{LevelAdSet, LevelAd}, why: "bids live on ad sets"},
		"age_hours":          {t: tNum},
		"hour":               {t: tNum},
		"weekday":            {t: tNum},
		"paused_by_rulesd":   {t: tBool},
		"hours_since_change": {t: tNum},
	}
	campaignAttrs = []string{"id", "name", "status", "effective_status", "objective"}
	adsetAttrs    = []string{"id", "name", "status", "effective_status", "optimization_goal", "bid_strategy"}
	accountAttrs  = []string{"id", "name", "currency", "labels", "vars"}
	// volumeMetrics are counts: a condition on one of them keeps a ratio metric from
	// deciding on a handful of events.
	volumeMetrics = map[Metric]bool{Spend: true, Impressions: true, Reach: true, Clicks: true, LinkClicks: true, Purchases: true, Leads: true, Installs: true, PurchaseValue: true}
)

// topNames lists every name an expression can start with, for suggestions.
func (c *exprCompiler) topNames(s *scope) []string {
	names := []string{"actions", "action_values"}
	names = append(names, metricNames[:]...)
	for _, d := range derivedMetrics {
		names = append(names, d.name)
	}
	for n := range c.metrics {
		names = append(names, n)
	}
	if s.metric != "" {
		return names
	}
	names = append(names, windowNames[:]...)
	names = append(names, "campaign", "adset", "account")
	for n := range ownAttrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *exprCompiler) resolve(n ast.Node, path []string, s *scope) (cval, *compileErr) {
	head := path[0]
	if w, ok := ParseWindow(head); ok {
		if s.metric != "" {
			return cval{}, errAt(n, "custom metric %s cannot name a window: it is computed in whichever window it is used (write last_7d.%s in the rule instead)", s.metric, s.metric)
		}
		if len(path) == 1 {
			return cval{}, errAt(n, "%s is a window: name a metric in it, like %s.spend", head, head)
		}
		return c.metric(n, w, path[1:], head+".", s)
	}
	if _, ok := metricByName(head); ok || head == "actions" || head == "action_values" || c.isMetricName(head) {
		return c.metric(n, s.window, path, "", s)
	}
	if s.metric != "" {
		return cval{}, errAt(n, "custom metric %s can only use metrics, and %s is not one%s", s.metric, head, diag.DidYouMean(head, c.topNames(s)))
	}
	switch head {
	case "campaign":
		return c.parentAttr(n, path, campaignAttrs, nil, s)
	case "adset":
		return c.parentAttr(n, path, adsetAttrs, []Level{LevelAdSet, LevelAd}, s)
	case "account":
		return c.accountAttr(n, path, s)
	}
	def, ok := ownAttrs[head]
	if !ok && len(path) > 1 && strings.HasPrefix(head, "last_") {
		return cval{}, errAt(n, "unknown window %s (windows: %s)", head, strings.Join(windowNames[:], ", "))
	}
	if !ok {
		return cval{}, errAt(n, "unknown name %s%s", head, diag.DidYouMean(head, c.topNames(s)))
	}
	if len(path) > 1 {
		return cval{}, errAt(n, "%s has no field %s", head, path[1])
	}
	if def.levels != nil && !containsLevel(def.levels, s.level) {
		return cval{}, errAt(n, "%s is not available at level %s (%s)", head, s.level, def.why)
	}
	if head == "level" {
		return strConst(s.level.String()), nil
	}
	return c.attr(head, head, def.t, s), nil
}

func containsLevel(ls []Level, l Level) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

func metricByName(name string) (Metric, bool) {
	for i, n := range metricNames {
		if n == name {
			return Metric(i), true
		}
	}
	return 0, false
}

func (c *exprCompiler) isMetricName(name string) bool {
	if _, ok := derivedByName(name); ok {
		return true
	}
	_, ok := c.metrics[name]
	return ok
}

// attr loads an attribute by its layout name, recording the read under the name the
// expression wrote.
func (c *exprCompiler) attr(key, written string, t vtype, s *scope) cval {
	s.reads.addAttr(key)
	k := Key{Kind: KeyAttr, Attr: key}
	switch t {
	case tStr:
		i := c.layout.strSlot(k)
		s.record(written, func(r *Row) any { return r.Str[i] })
		return strVal(func(r *Row) string { return r.Str[i] })
	case tBool:
		i := c.layout.numSlot(k)
		s.record(written, func(r *Row) any {
			v := r.Num[i]
			if v != v {
				return nil
			}
			return v != 0
		})
		return triVal(func(r *Row) Tri {
			v := r.Num[i]
			if v != v {
				return Unknown
			}
			return triOf(v != 0)
		})
	}
	i := c.layout.numSlot(k)
	s.record(written, func(r *Row) any { return numAny(r.Num[i]) })
	return numLoad(i)
}

func numAny(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

func (c *exprCompiler) parentAttr(n ast.Node, path []string, fields []string, levels []Level, s *scope) (cval, *compileErr) {
	head := path[0]
	if levels != nil && !containsLevel(levels, s.level) {
		return cval{}, errAt(n, "%s is not available at level %s: a %s has no %s", strings.Join(path, "."), s.level, s.level, head)
	}
	if len(path) != 2 {
		return cval{}, errAt(n, "name a field of %s, one of: %s", head, strings.Join(fields, ", "))
	}
	if !contains(fields, path[1]) {
		return cval{}, errAt(n, "%s has no field %s%s (fields: %s)", head, path[1], diag.DidYouMean(path[1], fields), strings.Join(fields, ", "))
	}
	name := head + "." + path[1]
	return c.attr(name, name, tStr, s), nil
}

func (c *exprCompiler) accountAttr(n ast.Node, path []string, s *scope) (cval, *compileErr) {
	if len(path) < 2 || !contains(accountAttrs, path[1]) {
		field := ""
		if len(path) > 1 {
			field = path[1]
		}
		return cval{}, errAt(n, "account has no field %s%s (fields: id, name, currency, labels.X, vars.X)", field, diag.DidYouMean(field, accountAttrs))
	}
	name := strings.Join(path, ".")
	switch path[1] {
	case "labels", "vars":
		if len(path) != 3 {
			return cval{}, errAt(n, "name one of the account's %s, like account.%s.NAME", path[1], path[1])
		}
		known := c.vars
		t := tNum
		if path[1] == "labels" {
			known, t = c.labels, tStr
		}
		if known != nil && !contains(known, path[2]) {
			return cval{}, errAt(n, "no account in the config has %s %q%s", strings.TrimSuffix(path[1], "s"), path[2], diag.DidYouMean(path[2], known))
		}
		return c.attr(name, name, t, s), nil
	}
	if len(path) != 2 {
		return cval{}, errAt(n, "account.%s has no fields", path[1])
	}
	return c.attr(name, name, tStr, s), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// metric resolves a metric path (spend, cpa, aov, actions["x"]) in window w; prefix is
// the window as written ("last_7d." or "").
func (c *exprCompiler) metric(n ast.Node, w Window, path []string, prefix string, s *scope) (cval, *compileErr) {
	head := path[0]
	if head == "actions" || head == "action_values" {
		if len(path) != 2 {
			return cval{}, errAt(n, "name one action type, like %s[\"link_click\"]", head)
		}
		kind := KeyAction
		if head == "action_values" {
			kind = KeyActionValue
		}
		s.reads.addAction(w, kind, path[1])
		s.volume = true
		i := c.layout.numSlot(Key{Kind: kind, Window: w, ActionType: path[1]})
		s.record(prefix+head+"["+quoteAlways(path[1])+"]", func(r *Row) any { return r.Num[i] })
		return numLoad(i), nil
	}
	if len(path) != 1 {
		return cval{}, errAt(n, "%s is a metric and has no fields", head)
	}
	if m, ok := metricByName(head); ok {
		s.reads.addMetric(w, m)
		if volumeMetrics[m] {
			s.volume = true
		}
		i := c.layout.numSlot(Key{Kind: KeyMetric, Window: w, Metric: m})
		s.record(prefix+head, func(r *Row) any { return r.Num[i] })
		return numLoad(i), nil
	}
	if d, ok := derivedByName(head); ok {
		s.reads.addMetric(w, d.num)
		s.reads.addMetric(w, d.denom)
		if s.ratioName == "" {
			s.ratioName, s.ratioPos = prefix+head, n.Location().From
		}
		a := c.layout.numSlot(Key{Kind: KeyMetric, Window: w, Metric: d.num})
		b := c.layout.numSlot(Key{Kind: KeyMetric, Window: w, Metric: d.denom})
		scale := d.scale
		f := func(r *Row) float64 { return div(r.Num[a], r.Num[b]) * scale }
		s.record(prefix+head, func(r *Row) any { return numAny(f(r)) })
		return numVal(f), nil
	}
	cm, ok := c.metrics[head]
	if !ok {
		return cval{}, errAt(n, "unknown metric %s%s", head, diag.DidYouMean(head, c.topNames(&scope{metric: "x"})))
	}
	v, reads, err := c.customIn(cm, w)
	if err != nil {
		return cval{}, errAt(n, "%s", err.msg)
	}
	s.reads.Merge(reads)
	s.volume = s.volume || cm.volume
	f := v.num
	s.record(prefix+head, func(r *Row) any { return numAny(f(r)) })
	return v, nil
}

func quoteAlways(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// customMetric is a metric defined in a rule file's metrics: block; it is compiled
// once per window it is used in.
type customMetric struct {
	name   string
	src    yamlx.Scalar
	dec    *yamlx.Decoder
	node   ast.Node
	broken bool // its errors were reported; uses compile to NaN silently
	volume bool
	byWin  map[Window]*compiledMetric
	busy   bool
}

type compiledMetric struct {
	v     cval
	reads *Reads
}

func (c *exprCompiler) customIn(cm *customMetric, w Window) (cval, *Reads, *compileErr) {
	if cm.broken {
		return numConst(math.NaN()), NewReads(), nil
	}
	if m, ok := cm.byWin[w]; ok {
		return m.v, m.reads, nil
	}
	if cm.busy {
		return cval{}, nil, &compileErr{msg: "custom metric " + cm.name + " refers to itself"}
	}
	cm.busy = true
	defer func() { cm.busy = false }()
	s := &scope{window: w, metric: cm.name, reads: NewReads()}
	v, err := c.compile(cm.node, s)
	if err != nil {
		return cval{}, nil, err
	}
	if v.t != tNum {
		return cval{}, nil, &compileErr{msg: "custom metric " + cm.name + " must be a number, but it is " + v.t.String()}
	}
	cm.volume = s.volume
	m := &compiledMetric{v: v, reads: s.reads}
	if cm.byWin == nil {
		cm.byWin = map[Window]*compiledMetric{}
	}
	cm.byWin[w] = m
	return v, s.reads, nil
}
