package rules

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
)

// TestReadsAreExact checks the static analysis: exactly the windows, base metrics,
// action types and attributes a rule reads, also through derived and custom metrics
// and its action, and nothing more, since the insights reader fetches only these.
func TestReadsAreExact(t *testing.T) {
	cfg, l := config.Parse("c.yaml", []byte("accounts: [{id: act_1, vars: {target_cpa: 25, cap: 500}, labels: {tier: gold}}]\n"))
	if cfg == nil {
		t.Fatal(l.Err())
	}
	tests := []struct {
		name, level, window, where, when, action string
		windows                                  map[Window][]Metric
		actions, actionValues                    map[Window][]string
		attrs                                    []string
	}{
		{
			name: "plain metrics", level: "ad", window: "last_7d",
			when: "spend > 50 && purchases == 0 && impressions > 1000", action: "{kind: notify}",
			windows: map[Window][]Metric{Last7d: {Spend, Impressions, Purchases}},
			attrs:   []string{"id", "name", "status"},
		},
		{
			name: "derived metrics read their parts", level: "ad", window: "last_3d",
			when: "cpa > 30 && ctr < 1 && frequency > 3", action: "{kind: notify}",
			windows: map[Window][]Metric{Last3d: {Spend, Impressions, Reach, Clicks, Purchases}},
			attrs:   []string{"id", "name", "status"},
		},
		{
			name: "custom metric in two windows", level: "ad", window: "last_7d",
			when: "aov > 50 && yesterday.aov > 40", action: "{kind: notify}",
			windows: map[Window][]Metric{Last7d: {PurchaseValue, Purchases}, Yesterday: {PurchaseValue, Purchases}},
			attrs:   []string{"id", "name", "status"},
		},
		{
			name: "custom metric through another", level: "ad", window: "today",
			when: "margin > 0", action: "{kind: notify}",
			windows: map[Window][]Metric{Today: {Spend, PurchaseValue, Purchases}},
			attrs:   []string{"id", "name", "status"},
		},
		{
			name: "action types and parents", level: "ad", window: "last_7d",
			where:        `campaign.objective == "OUTCOME_SALES" && adset.optimization_goal == "OFFSITE_CONVERSIONS"`,
			when:         `actions["link_click"] > 10 && today.action_values["omni_purchase"] > 0 && account.vars.target_cpa > 0 && account.labels.tier == "gold"`,
			action:       "{kind: pause}",
			windows:      map[Window][]Metric{Last7d: nil, Today: nil},
			actions:      map[Window][]string{Last7d: {"link_click"}},
			actionValues: map[Window][]string{Today: {"omni_purchase"}},
			attrs:        []string{"account.labels.tier", "account.vars.target_cpa", "adset.optimization_goal", "campaign.objective", "id", "name", "paused_by_rulesd", "status"},
		},
		{
			name: "budget action reads budgets, CBO and its amount", level: "adset", window: "last_7d",
			when: "roas > 3 && spend > 100", action: `{kind: change_budget, by: "+20%", max: "account.vars.cap", min: "last_3d.spend"}`,
			windows: map[Window][]Metric{Last7d: {Spend, PurchaseValue}, Last3d: {Spend}},
			attrs:   []string{"account.vars.cap", "campaign_budget", "daily_budget", "id", "lifetime_budget", "name", "status"},
		},
		{
			name: "attributes of the object", level: "adset", window: "today",
			when: "age_hours > 72 && hour >= 9 && weekday != 0 && has(bid_amount) && hours_since_change > 24", action: "{kind: notify}",
			windows: map[Window][]Metric{},
			attrs:   []string{"age_hours", "bid_amount", "hour", "hours_since_change", "id", "name", "status", "weekday"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "metrics:\n  aov: purchase_value / purchases\n  margin: purchase_value - spend + aov * 0\n" +
				"groups:\n- name: g\n  rules:\n  - name: r\n    level: " + tt.level + "\n    window: " + tt.window + "\n"
			if tt.where != "" {
				src += "    where: '" + tt.where + "'\n"
			}
			src += "    when: '" + tt.when + "'\n    action: " + tt.action + "\n"
			set, l := Load([]Source{{Name: "r.yaml", Data: []byte(src)}}, Options{Config: cfg})
			if set == nil {
				t.Fatal(l.Err())
			}
			reads := set.Groups[0].Rules[0].Reads
			var gotWindows []Window
			for _, w := range reads.Windows() {
				gotWindows = append(gotWindows, w)
				want := append([]Metric(nil), tt.windows[w]...)
				sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
				if got := reads.Metrics(w); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s metrics = %v, want %v", w, got, want)
				}
				if got, want := reads.ActionTypes(w), tt.actions[w]; strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("%s action types = %v, want %v", w, got, want)
				}
				if got, want := reads.ActionValueTypes(w), tt.actionValues[w]; strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("%s action value types = %v, want %v", w, got, want)
				}
			}
			if len(gotWindows) != len(tt.windows) {
				t.Errorf("windows = %v, want %v", gotWindows, tt.windows)
			}
			if got := reads.Attrs(); strings.Join(got, ",") != strings.Join(tt.attrs, ",") {
				t.Errorf("attributes = %v\nwant        %v", got, tt.attrs)
			}
		})
	}
}
