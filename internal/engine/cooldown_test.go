package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestCooldownDefaultsAndExplicit: after a rule acts on an object it leaves it alone
// for the cooldown, by default 1h for pause and unpause, 24h for budget changes and
// notify; an explicit cooldown wins (SPEC 4.2).
func TestCooldownDefaultsAndExplicit(t *testing.T) {
	cases := []struct {
		name     string
		level    string
		action   string
		cooldown string
		want     time.Duration
	}{
		{"pause", "ad", "{kind: pause}", "", time.Hour},
		{"unpause", "ad", "{kind: unpause}", "", time.Hour},
		{"budget", "adset", `{kind: change_budget, by: "+10%"}`, "", 24 * time.Hour},
		{"set-budget", "adset", `{kind: set_budget, amount: 55}`, "", 24 * time.Hour},
		{"bid", "adset", `{kind: change_bid, by: "-10%"}`, "", 24 * time.Hour},
		{"notify", "ad", `{kind: notify, message: "hello"}`, "", 24 * time.Hour},
		{"explicit", "adset", `{kind: change_budget, by: "+10%"}`, "cooldown: 3h", 3 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf(`
groups:
- name: g
  rules:
  - name: r
    level: %s
    window: today
    when: spend >= 0
    %s
    action: %s
`, c.level, c.cooldown, c.action)
			w := newWorld(t, defaultConfig, src)
			camp := w.campaign(fakegraph.Campaign{})
			as := w.adset(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000, BidAmount: 500, BidStrategy: "LOWEST_COST_WITH_BID_CAP"})
			status := fakegraph.StatusActive
			if c.name == "unpause" {
				status = fakegraph.StatusPaused
			}
			ad := w.ad(fakegraph.Ad{AdSetID: as, Status: status})
			obj := ad
			if c.level == "adset" {
				obj = as
			}
			if got := w.runOK("g").result("r", obj); got != state.ResultApplied {
				t.Fatalf("first run: %q (%s), want applied", got, w.last("r", obj).Error)
			}
			until, ok := w.cooldown("g", "r", false, obj)
			if !ok || !until.Equal(t0.Add(c.want)) {
				t.Fatalf("cooldown until %s (%v), want %s", until, ok, t0.Add(c.want))
			}
			nWrites := len(w.writes(obj))
			w.at(c.want - 30*time.Minute)
			if got := w.runOK("g").result("r", obj); got != state.ResultSkippedCooldown {
				t.Fatalf("within the cooldown: %q, want skipped_cooldown", got)
			}
			if n := len(w.writes(obj)); n != nWrites {
				t.Fatalf("a run within the cooldown wrote: %d writes, want %d", n, nWrites)
			}
			w.at(c.want)
			if got := w.runOK("g").result("r", obj); got == state.ResultSkippedCooldown {
				t.Fatalf("after the cooldown: still skipped_cooldown")
			}
		})
	}
}

// TestCooldownSkipRecordedOnce: the next runs within the cooldown write nothing; the
// repeated skipped_cooldown is recorded once per cooldown period but counted every
// time.
func TestCooldownSkipRecordedOnce(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 2h
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	w.runOK("g")
	for i := 1; i <= 6; i++ { // 30 .. 180 min
		w.at(mins(30 * i))
		w.runOK("g")
	}
	// 0: applied; 30..90: skipped (recorded once at 30); 120: applied (cooldown
	// over); 150, 180: skipped (recorded once at 150).
	want := "applied,skipped_cooldown,applied,skipped_cooldown"
	if got := w.auditResults("grow", as); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
	if n := w.actionsTotal("grow", state.ResultSkippedCooldown); n != 5 {
		t.Errorf("rulesd_actions_total{result=skipped_cooldown} = %v, want 5", n)
	}
	if n := len(w.writes(as)); n != 2 {
		t.Errorf("writes = %d, want 2", n)
	}
	if got := w.object(as).DailyBudget; got != 6050 {
		t.Errorf("daily budget = %d, want 6050", got)
	}
}

// TestCooldownAfterFailure: a failed action starts the cooldown only when the error
// is permanent.
func TestCooldownAfterFailure(t *testing.T) {
	cases := []struct {
		name      string
		fault     fakegraph.Fault
		permanent bool
	}{
		{"transient", fakegraph.ErrorFault(2, 0), false},
		{"permanent", fakegraph.ErrorFault(100, 0), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    when: spend >= 0
    action: {kind: pause}
`)
			ad := w.ads("x", 1)[0]
			w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: ad, Times: -1, Fault: c.fault})
			d := w.runOK("g").decision("stop", ad)
			if d == nil || d.Result != state.ResultFailed {
				t.Fatalf("with a fault: %+v, want failed", d)
			}
			w.fake.ClearFaults()
			_, cooling := w.cooldown("g", "stop", false, ad)
			if cooling != c.permanent {
				t.Fatalf("cooldown started = %v, want %v (error: %s)", cooling, c.permanent, d.Error)
			}
			w.at(mins(30))
			got := w.runOK("g").result("stop", ad)
			want := state.ResultApplied
			if c.permanent {
				want = state.ResultSkippedCooldown
			}
			if got != want {
				t.Fatalf("next run: %q, want %q", got, want)
			}
			if st := w.object(ad).Status; (st == fakegraph.StatusPaused) == c.permanent {
				t.Errorf("status = %s", st)
			}
			if rec := w.audit("stop", ad)[0]; rec.Result != state.ResultFailed || rec.Error == "" {
				t.Errorf("audit of the failure = %s %q", rec.Result, rec.Error)
			}
		})
	}
}
