package engine

import (
	"fmt"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestDryRunLevels: a run is dry when --dry-run, the config, the group or the rule
// says so: nothing reaches the API, the audit records dry_run, and the dry run's
// cooldowns and history do not change what a following live run does (SPEC 4.7).
func TestDryRunLevels(t *testing.T) {
	rulesFor := func(groupDry, ruleDry bool) string {
		return fmt.Sprintf(`
groups:
- name: g
  dry_run: %v
  rules:
  - name: stop
    level: ad
    window: today
    when: spend > 10
    dry_run: %v
    action: {kind: pause}
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    dry_run: %v
    action: {kind: change_budget, by: "+20%%"}
`, groupDry, ruleDry, ruleDry)
	}
	liveRules := rulesFor(false, false)
	cases := []struct {
		name  string
		cfg   string
		rules string
		flag  bool
	}{
		{"flag", defaultConfig, liveRules, true},
		{"config", "dry_run: true\n" + defaultConfig, liveRules, false},
		{"group", defaultConfig, rulesFor(true, false), false},
		{"rule", defaultConfig, rulesFor(false, true), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, c.cfg, c.rules)
			if c.flag {
				w.dryRun = true
				w.newEngine()
			}
			as := w.adsetWithBudget("s", 5000)
			ad := w.ad(fakegraph.Ad{AdSetID: as})
			w.spendToday(ad, 20)
			// Two dry runs: the second is in the dry cooldown.
			ar := w.runOK("g")
			for _, x := range []struct{ rule, obj string }{{"stop", ad}, {"grow", as}} {
				if got := ar.result(x.rule, x.obj); got != state.ResultDryRun {
					t.Fatalf("%s: %q, want dry_run", x.rule, got)
				}
				rec := w.last(x.rule, x.obj)
				if rec.Result != state.ResultDryRun || !rec.DryRun {
					t.Errorf("%s: audit %s dry=%v", x.rule, rec.Result, rec.DryRun)
				}
			}
			if a, _ := w.last("grow", as).After.Amount(); a != 6000 {
				t.Errorf("dry run computed %d, want 6000", a)
			}
			w.at(mins(30))
			ar = w.runOK("g")
			if got := ar.result("grow", as); got != state.ResultSkippedCooldown {
				t.Errorf("second dry run: %q, want skipped_cooldown (dry cooldown)", got)
			}
			if n := len(w.fake.Writes()); n != 0 {
				t.Fatalf("a dry run wrote %d times: %+v", n, w.fake.Writes())
			}
			for _, r := range w.fake.Requests() {
				if r.Method == "POST" && r.Path != "/" && r.Path != "/v27.0" && r.Path != "/v27.0/" {
					t.Fatalf("a dry run sent %s %s", r.Method, r.Path)
				}
			}
			if n := w.actionsTotal("stop", state.ResultDryRun); n != 1 {
				t.Errorf("rulesd_actions_total{result=dry_run} = %v, want 1", n)
			}
			// Live now, within the dry run's cooldowns and right after its "changes".
			w.dryRun = false
			w.newEngine()
			w.reload(defaultConfig, liveRules)
			w.at(mins(60))
			ar = w.runOK("g")
			for _, x := range []struct{ rule, obj string }{{"stop", ad}, {"grow", as}} {
				if got := ar.result(x.rule, x.obj); got != state.ResultApplied {
					t.Errorf("live after dry: %s: %q (%s), want applied", x.rule, got, ar.decision(x.rule, x.obj).Error)
				}
			}
			if o := w.object(as); o.DailyBudget != 6000 {
				t.Errorf("budget = %d, want 6000", o.DailyBudget)
			}
			if o := w.object(ad); o.Status != fakegraph.StatusPaused {
				t.Errorf("status = %s, want PAUSED", o.Status)
			}
		})
	}
}

// TestDryRunHistoryApart: a dry run's simulated changes are not taken for a
// person's change by later live runs, and the live history does not count them for
// pacing.
func TestDryRunHistoryApart(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  dry_run: true
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1m
    action: {kind: change_budget, by: "+10%"}
- name: live
  rules:
  - name: grow-live
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1m
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	for i := range 3 {
		w.at(mins(10 * i))
		if got := w.runOK("g").result("grow", as); got != state.ResultDryRun {
			t.Fatalf("dry run %d: %q", i, got)
		}
	}
	// Three dry "changes" in the last hour: a live rule may still change the
	// budget twice.
	for i := range 2 {
		w.at(mins(30 + 10*i))
		ar := w.runOK("live")
		if got := ar.result("grow-live", as); got != state.ResultApplied {
			t.Fatalf("live run %d: %q (%s), want applied", i, got, ar.decision("grow-live", as).Error)
		}
	}
	if got := w.object(as).DailyBudget; got != 6050 {
		t.Errorf("budget = %d, want 6050", got)
	}
}
