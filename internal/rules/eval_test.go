package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
)

// compileOne compiles one rule from its level, window and condition, with a config
// defining account.vars.target_cpa and account.labels.tier.
func compileOne(t testing.TB, level, window, when string) (*Set, *Rule) {
	t.Helper()
	src := fmt.Sprintf(`
metrics:
  aov: purchase_value / purchases
groups:
- name: g
  rules:
  - name: r
    level: %s
    window: %s
    when: %q
    action: {kind: notify}
`, level, window, when)
	cfg, l := config.Parse("rulesd.yaml", []byte("accounts: [{id: act_1, vars: {target_cpa: 25}, labels: {tier: gold}}]\n"))
	if cfg == nil {
		t.Fatal(l.Err())
	}
	set, diags := Load([]Source{{Name: "r.yaml", Data: []byte(src)}}, Options{Config: cfg})
	if set == nil {
		t.Fatalf("compile %q: %v", when, diags.Err())
	}
	return set, set.Groups[0].Rules[0]
}

// row builds an object whose values are given by name: "spend" or "last_7d.spend" for
// metrics, attribute names otherwise; NaN marks a missing value.
func row(set *Set, vals map[string]any) Row {
	r := set.Layout.NewRows(1)[0]
	for name, v := range vals {
		switch v := v.(type) {
		case string:
			set.Layout.SetString(&r, name, v)
		case bool:
			set.Layout.SetBool(&r, name, v)
		case float64:
			win, metric, ok := strings.Cut(name, ".")
			w, isWin := ParseWindow(win)
			if !ok || !isWin {
				w, metric = Last7d, name
			}
			if m, isMetric := metricByName(metric); isMetric {
				set.Layout.SetMetric(&r, w, m, v)
			} else if typ, isAction := strings.CutPrefix(metric, "actions:"); isAction {
				if i, ok := set.Layout.Num(Key{Kind: KeyAction, Window: w, ActionType: typ}); ok {
					r.Num[i] = v
				}
			} else {
				set.Layout.SetAttr(&r, name, v)
			}
		}
	}
	return r
}

var nan = math.NaN()

func TestThreeValuedLogic(t *testing.T) {
	noPurchases := map[string]any{"spend": 100.0, "impressions": 5000.0, "clicks": 50.0, "reach": 2500.0}
	withPurchases := map[string]any{"spend": 100.0, "purchases": 2.0, "purchase_value": 300.0, "impressions": 5000.0, "clicks": 50.0, "reach": 2500.0}
	tests := []struct {
		when string
		vals map[string]any
		want Tri
	}{
		// Every comparison with a missing value is unknown (cpa = spend / 0).
		{"cpa > 30", noPurchases, Unknown},
		{"cpa >= 30", noPurchases, Unknown},
		{"cpa < 30", noPurchases, Unknown},
		{"cpa <= 30", noPurchases, Unknown},
		{"cpa == 30", noPurchases, Unknown},
		{"cpa != 30", noPurchases, Unknown},
		{"!(cpa > 30)", noPurchases, Unknown},
		{"not (cpa > 30)", noPurchases, Unknown},
		{"cpa > 30", withPurchases, True},   // 50
		{"cpa <= 30", withPurchases, False}, // 50
		{"cpa != 30", withPurchases, True},
		// Kleene and/or.
		{"purchases == 0 || cpa > 30", noPurchases, True},
		{"spend < 0 && cpa > 30", noPurchases, False},
		{"cpa > 30 && spend < 0", noPurchases, False},
		{"spend > 0 && cpa > 30", noPurchases, Unknown},
		{"spend < 0 || cpa > 30", noPurchases, Unknown},
		{"cpa > 30 || spend > 0", noPurchases, True},
		// Arithmetic with a missing value is missing; division by zero is missing.
		{"cpa + 1 > 0", noPurchases, Unknown},
		{"cpa * 0 == 0", noPurchases, Unknown},
		{"-cpa < 0", noPurchases, Unknown},
		{"spend / purchases > 1", noPurchases, Unknown},
		{"spend / purchases == 50", withPurchases, True},
		{"spend % 0 == 0", noPurchases, Unknown},
		{"spend - 40 * 2 == 20", noPurchases, True},
		{"spend ** 2 == 10000", noPurchases, True},
		{"cpa ** 0 == 1", noPurchases, Unknown},       // math.Pow(NaN, 0) is 1
		{"1 ** cpa == 1", noPurchases, Unknown},       // math.Pow(1, NaN) is 1
		{"purchases ** -1 > 0", noPurchases, Unknown}, // 1 / 0
		{"purchases ^ -2 > 0", noPurchases, Unknown},  // 1 / 0
		{"spend ** 0 == 1", noPurchases, True},
		{"purchases ** 0.5 == 0", noPurchases, True},
		// has and default see a missing value as such.
		{"has(cpa)", noPurchases, False},
		{"!has(cpa)", noPurchases, True},
		{"has(cpa)", withPurchases, True},
		{"default(cpa, 0) > 30", noPurchases, False},
		{"default(cpa, 100) > 30", noPurchases, True},
		{"default(cpa, 100) == 50", withPurchases, True},
		{"has(daily_budget)", map[string]any{}, False},
		{"has(daily_budget)", map[string]any{"daily_budget": 50.0}, True},
		{"default(campaign_budget, false) == false", map[string]any{}, True},
		{"has(campaign_budget)", map[string]any{}, False},
		// pct_change: percent, missing when the old value is 0.
		{"pct_change(today.spend, yesterday.spend) == 200", map[string]any{"today.spend": 30.0, "yesterday.spend": 10.0}, True},
		{"pct_change(today.spend, yesterday.spend) > 0", map[string]any{"today.spend": 30.0}, Unknown},
		{"pct_change(today.spend, yesterday.spend) == -50", map[string]any{"today.spend": 5.0, "yesterday.spend": 10.0}, True},
		// min, max and abs propagate missing values.
		{"max(cpa, 10) > 5", noPurchases, Unknown},
		{"min(cpa, 10) < 50", noPurchases, Unknown},
		{"max(cpa, 10) == 50", withPurchases, True},
		{"min(spend, 10, 20) == 10", noPurchases, True},
		{"abs(0 - spend) == 100", noPurchases, True},
		{"abs(cpa) > 0", noPurchases, Unknown},
		// An object with no insights row has 0 for every count.
		{"impressions == 0 && spend == 0 && purchases == 0", map[string]any{}, True},
		{"ctr > 0", map[string]any{}, Unknown},
		{`actions["link_click"] == 0`, map[string]any{}, True},
		{`actions["link_click"] > 10`, map[string]any{"actions:link_click": 11.0}, True},
		// Derived metrics.
		{"ctr == 1", noPurchases, True},             // 50 / 5000 * 100
		{"cpm == 20", noPurchases, True},            // 100 / 5000 * 1000
		{"frequency == 2", noPurchases, True},       // 5000 / 2500
		{"roas == 3", withPurchases, True},          // 300 / 100
		{"cpc == 2", noPurchases, True},             // 100 / 50
		{"aov == 150", withPurchases, True},         // custom: 300 / 2
		{"has(aov)", noPurchases, False},            // custom metric built on a missing value
		{"last_3d.aov > 0", withPurchases, Unknown}, // no last_3d data: 0 / 0
		// Missing budgets are unknown, never zero.
		{"daily_budget < 100", map[string]any{}, Unknown},
		{"daily_budget * 2 > 10", map[string]any{"daily_budget": nan}, Unknown},
		{"daily_budget * 2 > 10", map[string]any{"daily_budget": 6.0}, True},
		// Account values.
		{"spend > 2 * account.vars.target_cpa", map[string]any{"spend": 60.0, "account.vars.target_cpa": 25.0}, True},
		{"spend > 2 * account.vars.target_cpa", map[string]any{"spend": 60.0}, Unknown}, // account without the var
		{`account.labels.tier == "gold"`, map[string]any{"account.labels.tier": "gold"}, True},
		// Strings and booleans.
		{`campaign.objective == "OUTCOME_SALES"`, map[string]any{"campaign.objective": "OUTCOME_SALES"}, True},
		{`campaign.objective != "OUTCOME_SALES"`, map[string]any{"campaign.objective": "OUTCOME_LEADS"}, True},
		{`campaign.objective in ["OUTCOME_SALES", "OUTCOME_LEADS"]`, map[string]any{"campaign.objective": "OUTCOME_LEADS"}, True},
		{`campaign.objective not in ["OUTCOME_SALES"]`, map[string]any{"campaign.objective": "OUTCOME_LEADS"}, True},
		{`name contains "[test]"`, map[string]any{"name": "UGC [test] 3"}, True},
		{`name startsWith "UGC" and name endsWith "3"`, map[string]any{"name": "UGC [test] 3"}, True},
		{`name matches "^UGC.*[0-9]$"`, map[string]any{"name": "UGC [test] 3"}, True},
		{`lower(name) == "ugc"`, map[string]any{"name": "UGC"}, True},
		{`level == "adset"`, map[string]any{}, True},
		{"paused_by_rulesd", map[string]any{"paused_by_rulesd": true}, True},
		{"!paused_by_rulesd", map[string]any{}, Unknown},
		{"paused_by_rulesd == false", map[string]any{"paused_by_rulesd": false}, True},
		{"hours_since_change > 24", map[string]any{}, Unknown},
		{"hour >= 23 || hour < 6", map[string]any{"hour": 23.0}, True},
		{"weekday in [0, 6]", map[string]any{"weekday": 6.0}, True},
		{"weekday in [0, 6]", map[string]any{}, Unknown},
		// Conditional: an unknown condition gives a missing value.
		{"(has(cpa) ? cpa : 0) == 0", noPurchases, True},
		{"(cpa > 10 ? 1 : 2) > 0", noPurchases, Unknown},
		{"(spend > 10 ? 1 : 2) == 1", noPurchases, True},
		// ... also when the branches are text: the else branch is not a default.
		{`(cpa > 30 ? "high" : "low") == "low"`, noPurchases, Unknown},
		{`(cpa > 30 ? "high" : "low") != "high"`, noPurchases, Unknown},
		{`(cpa > 30 ? "high" : "low") in ["low"]`, noPurchases, Unknown},
		{`(cpa > 30 ? "high" : "low") not in ["high"]`, noPurchases, Unknown},
		{`(cpa > 30 ? "high" : "low") startsWith "l"`, noPurchases, Unknown},
		{`(cpa > 30 ? "high" : "low") matches "^l"`, noPurchases, Unknown},
		{`name == (cpa > 30 ? "high" : "low")`, noPurchases, Unknown},
		{`upper(cpa > 30 ? "high" : "low") == "LOW"`, noPurchases, Unknown},
		{`has(cpa > 30 ? "high" : "low")`, noPurchases, False},
		{`default(cpa > 30 ? "high" : "low", "none") == "none"`, noPurchases, True},
		{`(cpa > 30 ? "high" : "low") == "high"`, withPurchases, True},
		{`(spend > 30 ? "high" : "low") == "high"`, noPurchases, True},
		{`has(spend > 30 ? "high" : "low")`, noPurchases, True},
		{`(cpa > 30 ? "high" : (spend > 10 ? "mid" : "low")) == "mid"`, noPurchases, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			set, r := compileOne(t, "adset", "last_7d", tt.when)
			row := row(set, tt.vals)
			if got := r.when(&row); got != tt.want {
				t.Errorf("%s = %s, want %s (values %v)", tt.when, got, tt.want, tt.vals)
			}
			_, match := r.Match(&row)
			if match != (tt.want == True) {
				t.Errorf("Match = %v, want %v: a rule matches only when its condition is true", match, tt.want == True)
			}
		})
	}
}

func TestWhereScopesTheRule(t *testing.T) {
	src := `
groups:
- name: g
  rules:
  - name: r
    level: ad
    window: last_7d
    where: effective_status == "ACTIVE"
    when: spend > 10 && impressions > 100
    action: {kind: pause}
`
	set, l := Load([]Source{{Name: "r.yaml", Data: []byte(src)}}, Options{})
	if set == nil {
		t.Fatal(l.Err())
	}
	r := set.Groups[0].Rules[0]
	tests := []struct {
		status         string
		spend          float64
		inScope, match bool
	}{
		{"ACTIVE", 20, true, true},
		{"ACTIVE", 5, true, false},
		{"PAUSED", 20, false, false},
	}
	for _, tt := range tests {
		row := row(set, map[string]any{"effective_status": tt.status, "spend": tt.spend, "impressions": 1000.0})
		if in, m := r.Match(&row); in != tt.inScope || m != tt.match {
			t.Errorf("%s spend %v: Match = %v, %v; want %v, %v", tt.status, tt.spend, in, m, tt.inScope, tt.match)
		}
	}
}

func TestValuesTheRuleSaw(t *testing.T) {
	set, r := compileOne(t, "adset", "last_7d", `spend > 2 * account.vars.target_cpa && cpa > 10 && last_3d.spend > 1 && campaign.objective == "X" && daily_budget > 0`)
	row := row(set, map[string]any{"spend": 60.0, "account.vars.target_cpa": 25.0, "last_3d.spend": 20.0, "campaign.objective": "X"})
	got := map[string]any{}
	var names []string
	for _, v := range r.Values {
		names = append(names, v.Name)
		got[v.Name] = v.Get(&row)
	}
	want := []string{"spend", "account.vars.target_cpa", "cpa", "last_3d.spend", "campaign.objective", "daily_budget"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("values %v, want %v", names, want)
	}
	if got["spend"] != 60.0 || got["cpa"] != nil || got["daily_budget"] != nil || got["campaign.objective"] != "X" {
		t.Errorf("values = %v", got)
	}
}
