package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestCaps: an action's min/max, the account's max_daily_budget and the daily
// increase cap clip the absolute target before it is sent; relative changes round
// toward the current value so no cap is exceeded (SPEC 3.3, 4.4).
func TestCaps(t *testing.T) {
	cases := []struct {
		name     string
		currency string
		safety   string
		action   string
		budget   int64 // current, minor units
		want     int64
		cappedBy string
	}{
		{"max", "USD", "", `{kind: change_budget, by: "+20%", max: 55}`, 5000, 5500, "max"},
		{"min", "USD", "", `{kind: change_budget, by: "-50%", min: 40}`, 5000, 4000, "min"},
		{"account max_daily_budget", "USD", "{max_daily_budget: 58}", `{kind: change_budget, by: "+40%"}`, 5000, 5800, "max_daily_budget"},
		{"increase cap on set_budget", "USD", "", `{kind: set_budget, amount: 100}`, 5000, 7500, "max_budget_increase_pct_per_day"},
		{"increase cap per account", "USD", "{max_budget_increase_pct_per_day: 10}", `{kind: set_budget, amount: 100}`, 5000, 5500, "max_budget_increase_pct_per_day"},
		{"increase cap rounds down (USD)", "USD", "", `{kind: set_budget, amount: 100}`, 3333, 4999, "max_budget_increase_pct_per_day"},
		{"increase rounds down (USD)", "USD", "", `{kind: change_budget, by: "+10%"}`, 3333, 3666, ""},
		{"decrease rounds up (USD)", "USD", "", `{kind: change_budget, by: "-10%"}`, 3333, 3000, ""},
		{"increase cap rounds down (JPY)", "JPY", "", `{kind: set_budget, amount: 10000}`, 3333, 4999, "max_budget_increase_pct_per_day"},
		{"increase rounds down (JPY)", "JPY", "", `{kind: change_budget, by: "+10%"}`, 3333, 3666, ""},
		{"decrease rounds up (JPY)", "JPY", "", `{kind: change_budget, by: "-10%"}`, 3333, 3000, ""},
		{"absolute amount in JPY", "JPY", "", `{kind: set_budget, amount: 4000}`, 3333, 4000, ""},
		{"max_daily_budget in JPY", "JPY", "{max_daily_budget: 3500}", `{kind: change_budget, by: "+20%"}`, 3333, 3500, "max_daily_budget"},
		{"max never turns an increase into a decrease", "USD", "", `{kind: change_budget, by: "+20%", max: 40}`, 5000, 5000, "direction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			acct := "act_1001"
			cfg := defaultConfig
			if c.currency != "USD" {
				acct = "act_2002"
			}
			if c.safety != "" || c.currency != "USD" {
				cfg = fmt.Sprintf("accounts:\n- id: %s\n  safety: %s\n", acct, orEmptyMap(c.safety))
			}
			w := newWorld(t, cfg, `
groups:
- name: g
  rules:
  - name: r
    level: adset
    window: today
    when: spend >= 0
    action: `+c.action+`
`)
			if acct != acctID {
				w.must(w.fake.AddAccount(fakegraph.Account{ID: acct, Currency: c.currency, TimezoneName: "UTC"}))
			}
			camp := w.campaign(fakegraph.Campaign{AccountID: acct})
			as := w.adset(fakegraph.AdSet{CampaignID: camp, DailyBudget: c.budget})
			ar := w.runOK("g")
			rec := w.last("r", as)
			if got := w.object(as).DailyBudget; got != c.want {
				t.Fatalf("daily budget = %d, want %d (audit %s %q)", got, c.want, rec.Result, rec.Error)
			}
			if rec.CappedBy != c.cappedBy {
				t.Errorf("capped_by = %q, want %q", rec.CappedBy, c.cappedBy)
			}
			wantResult := state.ResultApplied
			if c.want == c.budget {
				wantResult = state.ResultSkippedNoop
			}
			if got := ar.result("r", as); got != wantResult {
				t.Errorf("result %q, want %q", got, wantResult)
			}
			if wantResult == state.ResultApplied {
				b, _ := rec.Before.Amount()
				a, _ := rec.After.Amount()
				if b != c.budget || a != c.want {
					t.Errorf("audit before/after = %v/%v, want %d/%d", rec.Before, rec.After, c.budget, c.want)
				}
			}
		})
	}
}

func orEmptyMap(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// TestDailyIncreaseCapFromEarliestChange: the 50% a day is measured from the before
// of the earliest rulesd budget change in the last 24h, so steps of +20% stop at
// +50% of the value a day ago; a day later the base moves on.
func TestDailyIncreaseCapFromEarliestChange(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 2h
    action: {kind: change_budget, by: "+20%"}
`)
	as := w.adsetWithBudget("s", 5000)
	steps := []struct {
		at       int // hours
		want     int64
		result   string
		cappedBy string
	}{
		{0, 6000, state.ResultApplied, ""},
		{2, 7200, state.ResultApplied, ""},
		{4, 7500, state.ResultApplied, "max_budget_increase_pct_per_day"}, // 8640 capped at 5000 × 1.5
		{6, 7500, state.ResultSkippedNoop, "max_budget_increase_pct_per_day"},
		{26, 9000, state.ResultApplied, ""}, // base: the change at 2h from 6000 -> cap 9000
	}
	for _, s := range steps {
		w.at(hrs(s.at))
		ar := w.runOK("g")
		if got := ar.result("grow", as); got != s.result {
			t.Fatalf("at %dh: %q, want %q (%s)", s.at, got, s.result, ar.decision("grow", as).Error)
		}
		if got := w.object(as).DailyBudget; got != s.want {
			t.Fatalf("at %dh: budget %d, want %d", s.at, got, s.want)
		}
		if got := ar.decision("grow", as).Change.CappedBy; got != s.cappedBy {
			t.Errorf("at %dh: capped by %q, want %q", s.at, got, s.cappedBy)
		}
	}
}

// TestBudgetFailures: a budget action on an ad set whose budget is on its campaign
// fails with that reason and no API call, and starts the cooldown; naming the budget
// type the object does not have fails too.
func TestBudgetFailures(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+20%"}
  - name: grow-lifetime
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+20%", budget: lifetime}
`)
	cbo := w.campaign(fakegraph.Campaign{DailyBudget: 10000})
	inCBO := w.adset(fakegraph.AdSet{CampaignID: cbo, Name: "in cbo"})
	daily := w.adsetWithBudget("daily", 5000)
	ar := w.runOK("g")
	d := ar.decision("grow", inCBO)
	if d == nil || d.Result != state.ResultFailed || !strings.Contains(d.Error, "campaign") {
		t.Fatalf("CBO ad set: %+v, want failed with the campaign-budget reason", d)
	}
	if rec := w.last("grow", inCBO); rec.Result != state.ResultFailed || !strings.Contains(rec.Error, "campaign") {
		t.Errorf("audit = %s %q", rec.Result, rec.Error)
	}
	if n := w.posts(inCBO); n != 0 {
		t.Errorf("CBO ad set: %d POSTs reached the API, want none", n)
	}
	if _, ok := w.cooldown("g", "grow", false, inCBO); !ok {
		t.Errorf("CBO failure did not start the cooldown")
	}
	if got := ar.result("grow-lifetime", daily); got != state.ResultFailed {
		t.Errorf("lifetime on a daily-budget ad set: %q", got)
	}
	rec := w.last("grow-lifetime", daily)
	if rec.Result != state.ResultFailed || !strings.Contains(rec.Error, "no lifetime budget") {
		t.Errorf("lifetime on a daily-budget ad set: audit %s %q, want failed: no lifetime budget", rec.Result, rec.Error)
	}
	o := w.object(daily)
	if o.DailyBudget != 6000 || o.LifetimeBudget != 0 {
		t.Errorf("daily ad set: %d/%d, want 6000/0 (grow applied, budget type never switched)", o.DailyBudget, o.LifetimeBudget)
	}
	w.at(mins(30))
	if got := w.runOK("g").result("grow", inCBO); got != state.ResultSkippedCooldown {
		t.Errorf("CBO ad set 30 min later: %q, want skipped_cooldown", got)
	}
	if n := w.posts(inCBO); n != 0 {
		t.Errorf("CBO ad set: %d POSTs", n)
	}
}
