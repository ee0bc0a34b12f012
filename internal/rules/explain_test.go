package rules

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
)

// loadExplainRule compiles one rule file (with the custom metric aov and a config
// defining account.vars.target_cpa) and returns its first rule.
func loadExplainRule(t *testing.T, src string) (*Set, *Rule) {
	t.Helper()
	cfg, l := config.Parse("rulesd.yaml", []byte("accounts: [{id: act_1, vars: {target_cpa: 25}, labels: {tier: gold}}]\n"))
	if cfg == nil {
		t.Fatal(l.Err())
	}
	set, diags := Load([]Source{{Name: "r.yaml", Data: []byte(src)}}, Options{Config: cfg})
	if set == nil {
		t.Fatalf("compile: %v", diags.Err())
	}
	return set, set.Groups[0].Rules[0]
}

// terms lists the terms of a tree depth first, in evaluation order.
func terms(t *Term) []*Term {
	if t == nil {
		return nil
	}
	out := []*Term{t}
	for _, c := range t.Terms {
		out = append(out, terms(c)...)
	}
	return out
}

// term finds the first term with the given source.
func term(t *testing.T, root *Term, src string) *Term {
	t.Helper()
	for _, x := range terms(root) {
		if x.Source == src {
			return x
		}
	}
	var have []string
	for _, x := range terms(root) {
		have = append(have, fmt.Sprintf("%q", x.Source))
	}
	t.Fatalf("no term %q; have %s", src, strings.Join(have, ", "))
	return nil
}

// checkSources verifies that every term's source is exactly its span of the expression.
func checkSources(t *testing.T, root *Term, src string) {
	t.Helper()
	runes := []rune(src)
	for _, x := range terms(root) {
		if x.From < 0 || x.To > len(runes) || x.From >= x.To {
			t.Errorf("term %q has span [%d, %d) outside the expression", x.Source, x.From, x.To)
			continue
		}
		if got := string(runes[x.From:x.To]); got != x.Source {
			t.Errorf("term source %q, but its span is %q", x.Source, got)
		}
	}
}

func wantNum(t *testing.T, root *Term, src string, want float64) {
	t.Helper()
	x := term(t, root, src)
	if x.Kind != KindNumber || x.Num != want {
		t.Errorf("%s = %s (%s), want %v", src, x.ValueString(), x.Kind, want)
	}
}

func wantTri(t *testing.T, root *Term, src string, want Tri) {
	t.Helper()
	x := term(t, root, src)
	if x.Kind != KindCondition || x.Truth != want {
		t.Errorf("%s = %s (%s), want %s", src, x.ValueString(), x.Kind, want)
	}
}

const stopLoss = `
groups:
- name: stop-loss
  rules:
  - name: pause
    level: ad
    window: last_7d
    where: effective_status == "ACTIVE" && campaign.objective == "OUTCOME_SALES"
    when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000
    action: {kind: pause}
`

func TestExplainNumbersTextAndConditions(t *testing.T) {
	set, r := loadExplainRule(t, stopLoss)
	rw := row(set, map[string]any{"effective_status": "ACTIVE", "campaign.objective": "OUTCOME_SALES", "account.vars.target_cpa": 25.0,
		"spend": 61.5, "impressions": 1200.0})
	e := r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	if !e.InScope || !e.Match {
		t.Errorf("in scope %v, match %v; want both", e.InScope, e.Match)
	}
	checkSources(t, e.Where, r.Where)
	checkSources(t, e.When, r.When)
	if e.Where.Source != r.Where || e.When.Source != r.When {
		t.Errorf("top terms %q, %q; want the whole expressions", e.Where.Source, e.When.Source)
	}
	wantTri(t, e.Where, `effective_status == "ACTIVE"`, True)
	if x := term(t, e.Where, "campaign.objective"); x.Kind != KindText || x.Text != "OUTCOME_SALES" || x.ValueString() != `"OUTCOME_SALES"` {
		t.Errorf("campaign.objective = %s", x.ValueString())
	}
	wantTri(t, e.When, r.When, True)
	wantTri(t, e.When, "spend > 2 * account.vars.target_cpa", True)
	wantNum(t, e.When, "spend", 61.5)
	wantNum(t, e.When, "2 * account.vars.target_cpa", 50)
	wantNum(t, e.When, "account.vars.target_cpa", 25)
	wantTri(t, e.When, "purchases == 0", True)
	wantNum(t, e.When, "purchases", 0)
	wantNum(t, e.When, "impressions", 1200)
	// a && b && c is listed as three conditions, not as (a && b) && c.
	if n := len(e.When.Terms); n != 3 {
		t.Errorf("when has %d terms, want 3 (the && chain flattened)", n)
	}
	// Constants are not listed on their own.
	for _, x := range terms(e.When) {
		if x.Source == "2" || x.Source == "1000" {
			t.Errorf("constant %s listed as a term", x.Source)
		}
	}
	want := `where: effective_status == "ACTIVE" && campaign.objective == "OUTCOME_SALES"   → true
  effective_status == "ACTIVE"   → true
    effective_status   → "ACTIVE"
  campaign.objective == "OUTCOME_SALES"   → true
    campaign.objective   → "OUTCOME_SALES"
when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000   → true
  spend > 2 * account.vars.target_cpa   → true
    spend   → 61.5
    2 * account.vars.target_cpa   → 50
      account.vars.target_cpa   → 25
  purchases == 0   → true
    purchases   → 0
  impressions > 1000   → true
    impressions   → 1200
in scope: yes; matches: yes
`
	if got := e.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}

	// Out of scope: where is false, and so is the verdict.
	rw = row(set, map[string]any{"effective_status": "PAUSED", "campaign.objective": "OUTCOME_SALES", "spend": 61.5, "impressions": 1200.0, "account.vars.target_cpa": 25.0})
	e = r.Explain(&rw)
	if e.InScope || e.Match {
		t.Errorf("paused ad: in scope %v, match %v", e.InScope, e.Match)
	}
	wantTri(t, e.Where, `effective_status == "ACTIVE"`, False)
	wantTri(t, e.Where, r.Where, False)
	if !strings.Contains(e.String(), "in scope: no; matches: no") {
		t.Errorf("verdict missing:\n%s", e)
	}
}

func TestExplainMissingAndUnknown(t *testing.T) {
	set, r := compileOne(t, "ad", "last_7d", "cpa > 30 && impressions > 1000 || purchases == 0 && spend > 10")
	rw := row(set, map[string]any{"spend": 70.0, "impressions": 7000.0})
	e := r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	checkSources(t, e.When, r.When)
	cpa := term(t, e.When, "cpa")
	if !cpa.Missing() || !math.IsNaN(cpa.Num) || cpa.ValueString() != "missing" || cpa.Value() != nil || cpa.Why != "purchases is 0" {
		t.Errorf("cpa = %s (%q), want missing because purchases is 0", cpa.ValueString(), cpa.Why)
	}
	cmp := term(t, e.When, "cpa > 30")
	if cmp.Truth != Unknown || cmp.Why != "cpa is missing: purchases is 0" {
		t.Errorf("cpa > 30 = %s (%s)", cmp.ValueString(), cmp.Why)
	}
	wantTri(t, e.When, "cpa > 30 && impressions > 1000", Unknown)
	// true || unknown is true.
	wantTri(t, e.When, r.When, True)
	if !e.Match {
		t.Error("purchases == 0 && spend > 10 holds: the rule matches")
	}
	out := e.String()
	for _, line := range []string{
		"    cpa   → missing (purchases is 0)\n",
		"  cpa > 30 && impressions > 1000   → unknown (cpa is missing: purchases is 0)\n",
		"    cpa > 30   → unknown (cpa is missing: purchases is 0)\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("listing lacks %q:\n%s", line, out)
		}
	}

	// Missing values everywhere they come from: an unset budget, a division by 0, an
	// unknown condition, and the only functions that see them, has and default.
	set, r = compileOne(t, "adset", "last_7d", "daily_budget > 10 || spend / clicks > 2 || !paused_by_rulesd || has(cpa) || default(cpa, 0) > 1")
	rw = row(set, map[string]any{"spend": 5.0})
	e = r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	checkSources(t, e.When, r.When)
	if x := term(t, e.When, "daily_budget"); !x.Missing() || x.Why != "not set" {
		t.Errorf("daily_budget = %s (%s)", x.ValueString(), x.Why)
	}
	if x := term(t, e.When, "spend / clicks"); !x.Missing() || x.Why != "clicks is 0" {
		t.Errorf("spend / clicks = %s (%s)", x.ValueString(), x.Why)
	}
	wantTri(t, e.When, "spend / clicks > 2", Unknown)
	wantTri(t, e.When, "paused_by_rulesd", Unknown)
	wantTri(t, e.When, "!paused_by_rulesd", Unknown)
	wantTri(t, e.When, "has(cpa)", False)
	wantNum(t, e.When, "default(cpa, 0)", 0)
	wantTri(t, e.When, r.When, Unknown)
	if e.Match || e.When.Value() != nil {
		t.Errorf("an unknown condition does not match: match %v, value %v", e.Match, e.When.Value())
	}
	if !strings.Contains(e.When.Why, "daily_budget is missing: not set") || !strings.Contains(e.When.Why, "clicks is 0") {
		t.Errorf("when is unknown because %q", e.When.Why)
	}
}

func TestExplainCustomMetricsAndWindows(t *testing.T) {
	set, r := compileOne(t, "ad", "last_7d", "aov > 40 && last_3d.aov < 100 && today.spend + last_3d.spend > 20 && yesterday.cpa < 10")
	rw := row(set, map[string]any{
		"purchase_value": 100.0, "purchases": 2.0,
		"last_3d.purchase_value": 90.0, "last_3d.purchases": 1.0, "last_3d.spend": 15.0,
		"today.spend":     7.5,
		"yesterday.spend": 3.0, "yesterday.purchases": 0.0,
	})
	e := r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	checkSources(t, e.When, r.When)
	wantNum(t, e.When, "aov", 50)
	wantNum(t, e.When, "last_3d.aov", 90)
	wantNum(t, e.When, "today.spend", 7.5)
	wantNum(t, e.When, "last_3d.spend", 15)
	wantNum(t, e.When, "today.spend + last_3d.spend", 22.5)
	wantTri(t, e.When, "today.spend + last_3d.spend > 20", True)
	if x := term(t, e.When, "yesterday.cpa"); !x.Missing() || x.Why != "yesterday.purchases is 0" {
		t.Errorf("yesterday.cpa = %s (%s)", x.ValueString(), x.Why)
	}
	wantTri(t, e.When, r.When, Unknown)
	if len(e.Metrics) != 2 || e.Metrics[0] != (MetricValue{"aov", 50}) || e.Metrics[1] != (MetricValue{"last_3d.aov", 90}) {
		t.Errorf("custom metrics = %v", e.Metrics)
	}
	if out := e.String(); !strings.Contains(out, "custom metrics:\n  aov   → 50\n  last_3d.aov   → 90\n") {
		t.Errorf("listing lacks the custom metrics:\n%s", out)
	}

	// A custom metric that cannot be computed is missing, in the tree and the list.
	rw = row(set, map[string]any{"purchase_value": 0.0})
	e = r.Explain(&rw)
	if x := term(t, e.When, "aov"); !x.Missing() || x.Why == "" {
		t.Errorf("aov = %s (%q), want missing with a reason", x.ValueString(), x.Why)
	}
	if len(e.Metrics) == 0 || !math.IsNaN(e.Metrics[0].Value) || !strings.Contains(e.String(), "  aov   → missing\n") {
		t.Errorf("custom metrics = %v", e.Metrics)
	}
}

func TestExplainParenthesesInAndCalls(t *testing.T) {
	when := `((spend > 10 || (clicks > 5 && ctr > 1)) && campaign.objective in ["OUTCOME_SALES", "OUTCOME_LEADS"]) && adset.name not in ["x"] && !(cpm >= 100) && max(actions["link_click"], 2) == 4 && (hour < 6 ? "night" : "day") == "day"`
	set, r := compileOne(t, "ad", "last_7d", when)
	rw := row(set, map[string]any{"spend": 8.0, "clicks": 6.0, "impressions": 400.0, "campaign.objective": "OUTCOME_LEADS",
		"adset.name": "y", "actions:link_click": 4.0, "hour": 14.0})
	e := r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	checkSources(t, e.When, r.When)
	wantTri(t, e.When, `(spend > 10 || (clicks > 5 && ctr > 1)) && campaign.objective in ["OUTCOME_SALES", "OUTCOME_LEADS"]`, True)
	wantTri(t, e.When, "spend > 10 || (clicks > 5 && ctr > 1)", True)
	wantTri(t, e.When, "spend > 10", False)
	wantTri(t, e.When, "clicks > 5 && ctr > 1", True)
	wantNum(t, e.When, "ctr", 1.5)
	wantTri(t, e.When, `campaign.objective in ["OUTCOME_SALES", "OUTCOME_LEADS"]`, True)
	wantTri(t, e.When, `adset.name not in ["x"]`, True)
	if x := term(t, e.When, "adset.name"); x.Text != "y" {
		t.Errorf("adset.name = %s", x.ValueString())
	}
	wantTri(t, e.When, "!(cpm >= 100)", True)
	wantTri(t, e.When, "cpm >= 100", False)
	wantNum(t, e.When, "cpm", 20)
	wantNum(t, e.When, `max(actions["link_click"], 2)`, 4)
	wantNum(t, e.When, `actions["link_click"]`, 4)
	wantTri(t, e.When, `(hour < 6 ? "night" : "day") == "day"`, True)
	if x := term(t, e.When, `hour < 6 ? "night" : "day"`); x.Text != "day" {
		t.Errorf("?: = %s", x.ValueString())
	}
	wantTri(t, e.When, when, True)
	// The parenthesised && is a term of its own: only an unparenthesised chain is
	// flattened, so the tree keeps the grouping the rule was written with.
	if len(e.When.Terms) != 5 {
		var got []string
		for _, x := range e.When.Terms {
			got = append(got, x.Source)
		}
		t.Errorf("top terms = %q, want 5", got)
	}
	if e.When.Terms[0].Source != `(spend > 10 || (clicks > 5 && ctr > 1)) && campaign.objective in ["OUTCOME_SALES", "OUTCOME_LEADS"]` {
		t.Errorf("first term %q", e.When.Terms[0].Source)
	}
}

func TestExplainMultiLineWhen(t *testing.T) {
	src := `
groups:
- name: g
  rules:
  - name: r
    level: ad
    window: last_7d
    where: campaign.name startsWith "Brand – "
    when: |
      spend > 2 * account.vars.target_cpa
        && purchases == 0
        && (impressions > 1000
            || clicks > 10)
    action: {kind: notify}
`
	set, r := loadExplainRule(t, src)
	rw := row(set, map[string]any{"campaign.name": "Brand – US", "spend": 61.5, "account.vars.target_cpa": 25.0, "clicks": 11.0})
	e := r.Explain(&rw)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	checkSources(t, e.Where, r.Where)
	checkSources(t, e.When, r.When)
	wantTri(t, e.Where, `campaign.name startsWith "Brand – "`, True)
	if x := term(t, e.Where, "campaign.name"); x.From != 0 || x.To != 13 {
		t.Errorf("campaign.name spans [%d, %d)", x.From, x.To)
	}
	wantTri(t, e.When, strings.TrimSpace(r.When), True)
	wantTri(t, e.When, "impressions > 1000\n      || clicks > 10", True)
	wantTri(t, e.When, "clicks > 10", True)
	wantNum(t, e.When, "spend", 61.5)
	// The listing puts each expression on one line.
	out := e.String()
	for _, line := range []string{
		"when: spend > 2 * account.vars.target_cpa && purchases == 0 && (impressions > 1000 || clicks > 10)   → true\n",
		"  impressions > 1000 || clicks > 10   → true\n",
		`where: campaign.name startsWith "Brand – "   → true` + "\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("listing lacks %q:\n%s", line, out)
		}
	}
}

// Every name of a rule has a slot already, so explaining allocates none; and when a
// sub-expression would need one, Explain reports it and leaves the Layout alone.
func TestExplainNeverChangesTheLayout(t *testing.T) {
	for _, when := range []string{
		"spend > 2 * account.vars.target_cpa && purchases == 0",
		`aov > 10 && last_3d.aov < today.cpa && actions["link_click"] > 3 && action_values["purchase"] > 1`,
		`campaign.objective in ["A"] && adset.bid_strategy != "" && account.labels.tier == "gold" && hours_since_change > 1`,
		"pct_change(today.spend, yesterday.spend) > 10 && abs(min(cpc, cpm, 3)) < 1 && (paused_by_rulesd ? 1 : 2) > 0",
	} {
		set, r := compileOne(t, "ad", "last_7d", when)
		nn, ns := len(set.Layout.NumKeys()), len(set.Layout.StrKeys())
		rw := set.Layout.NewRows(1)[0]
		e := r.Explain(&rw)
		if e.Err != nil {
			t.Errorf("%s: %v", when, e.Err)
		}
		if len(set.Layout.NumKeys()) != nn || len(set.Layout.StrKeys()) != ns {
			t.Errorf("%s: Explain changed the layout", when)
		}
		if len(terms(e.When)) < 4 {
			t.Errorf("%s: only %d terms", when, len(terms(e.When)))
		}
	}

	// A rule whose tree reads a value its set does not load (not possible for a rule
	// that compiled, so one is made up here).
	set, r := compileOne(t, "ad", "last_7d", "spend > 1")
	other, _ := compileOne(t, "ad", "last_7d", "spend > 1 && reach > 3")
	nn, ns := len(set.Layout.NumKeys()), len(set.Layout.StrKeys())
	forged := *r
	forged.When, forged.whenNode = other.Groups[0].Rules[0].When, other.Groups[0].Rules[0].whenNode
	rw := set.Layout.NewRows(1)[0]
	e := forged.Explain(&rw)
	if e.Err == nil || !strings.Contains(e.Err.Error(), "reach") {
		t.Errorf("err = %v, want one naming reach", e.Err)
	}
	if len(set.Layout.NumKeys()) != nn || len(set.Layout.StrKeys()) != ns {
		t.Error("Explain changed the layout")
	}
	if !strings.Contains(e.String(), "cannot show the sub-expressions") {
		t.Errorf("listing:\n%s", e)
	}
}

// The top of each tree agrees with the rule's own verdict, for objects across the
// three truth values.
func TestExplainAgreesWithMatch(t *testing.T) {
	whens := []string{
		"cpa > 30", "cpa <= 30", "!(cpa > 30)", "purchases == 0 || cpa > 30", "cpa != 30 && spend > 1",
		"roas >= 2 || frequency > 3", "default(cpa, 100) > 30", "(spend > 10) == (clicks > 3)",
	}
	objects := []map[string]any{
		{"spend": 100.0, "impressions": 5000.0, "clicks": 50.0, "reach": 2500.0},
		{"spend": 100.0, "purchases": 2.0, "purchase_value": 300.0, "impressions": 5000.0, "clicks": 50.0, "reach": 2500.0},
		{"spend": 0.0},
		{"spend": 90.0, "purchases": 3.0, "clicks": 1.0},
	}
	for _, when := range whens {
		set, r := compileOne(t, "ad", "last_7d", when)
		for i, o := range objects {
			rw := row(set, o)
			e := r.Explain(&rw)
			if e.Err != nil {
				t.Fatalf("%s: %v", when, e.Err)
			}
			if got := e.When.Truth == True; got != e.Match || r.when(&rw) != e.When.Truth {
				t.Errorf("%s, object %d: tree says %s, rule says %s", when, i, e.When.Truth, r.when(&rw))
			}
			checkSources(t, e.When, r.When)
		}
	}
}

// Explain only reads the rule and its Layout: it may run alongside evaluations.
func TestExplainConcurrently(t *testing.T) {
	set, r := compileOne(t, "ad", "last_7d", "aov > 10 && spend > 2 * account.vars.target_cpa")
	rows := set.Layout.NewRows(8)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set.Layout.SetMetric(&rows[i], Last7d, Spend, float64(i*10))
			for range 20 {
				r.Match(&rows[i])
				if e := r.Explain(&rows[i]); e.Err != nil {
					t.Error(e.Err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestFormatNumber(t *testing.T) {
	for v, want := range map[float64]string{61.5: "61.5", 50: "50", 0.1 + 0.2: "0.3", -1e-9 + 1e-9: "0", 1e-7: "1e-07", 2e15: "2e+15", 1234567.25: "1234567.25"} {
		if got := FormatNumber(v); got != want {
			t.Errorf("FormatNumber(%v) = %s, want %s", v, got, want)
		}
	}
	if FormatNumber(math.Copysign(0, -1)) != "0" || FormatNumber(-1e-7/10) != "-1e-08" {
		t.Error("negative zero shows as 0, tiny numbers in exponent form")
	}
	if FormatNumber(math.NaN()) != "missing" {
		t.Error("NaN is missing")
	}
}

func TestExplainMissingText(t *testing.T) {
	set, r := compileOne(t, "adset", "last_7d", `(cpa > 30 ? "high" : "low") == "low"`)
	row := row(set, map[string]any{"spend": 100.0})
	e := r.Explain(&row)
	if e.When == nil || e.When.Truth != Unknown {
		t.Fatalf("when = %+v, want unknown", e.When)
	}
	out := e.String()
	if !strings.Contains(out, "missing") || strings.Contains(out, "rulesd:missing") {
		t.Errorf("a missing text value is not shown as missing:\n%s", out)
	}
}
