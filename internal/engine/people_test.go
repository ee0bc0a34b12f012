package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestPeopleWin: after rulesd paused an ad, a person turns it back on: rulesd leaves
// the status alone for manual_hold (skipped_manual), then may act again (SPEC 4.11).
func TestPeopleWin(t *testing.T) {
	w := newWorld(t, "safety: {manual_hold: 6h}\n"+defaultConfig, `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    when: spend > 10
    action: {kind: pause}
  - name: start
    level: ad
    window: today
    where: status == "PAUSED"
    when: spend > 10
    action: {kind: unpause}
`)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	if got := w.runOK("g").result("stop", ad); got != state.ResultApplied {
		t.Fatalf("first run: %q", got)
	}
	// "start" would unpause in the same run but loses the conflict, and is cooled down
	// by the cross-rule conflict window afterwards; a person acts first.
	w.at(mins(10))
	w.check(w.fake.SetStatus(ad, fakegraph.StatusActive))
	w.at(mins(90))
	ar := w.runOK("g")
	d := ar.decision("stop", ad)
	if d == nil || d.Result != state.ResultSkippedManual {
		t.Fatalf("after a person's change: %+v, want skipped_manual", d)
	}
	if !strings.Contains(d.Error, "PAUSED") || !strings.Contains(d.Error, "ACTIVE") {
		t.Errorf("reason %q should name rulesd's value and the person's", d.Error)
	}
	for _, at := range []int{150, 300} {
		w.at(mins(at))
		if got := w.runOK("g").result("stop", ad); got != state.ResultSkippedManual {
			t.Fatalf("at %d min (within the 6h hold): %q, want skipped_manual", at, got)
		}
	}
	if st := w.object(ad).Status; st != fakegraph.StatusActive {
		t.Fatalf("status = %s, want the person's ACTIVE", st)
	}
	if n := len(w.writes(ad)); n != 1 {
		t.Fatalf("writes = %d, want 1", n)
	}
	if n := w.actionsTotal("stop", state.ResultSkippedManual); n != 3 {
		t.Errorf("rulesd_actions_total{result=skipped_manual} = %v, want 3", n)
	}
	// The hold started at 90 min and lasts 6h: after it the person's value is the
	// new normal and the rule acts again.
	w.at(mins(90) + hrs(6) + mins(30))
	ar = w.runOK("g")
	if got := ar.result("stop", ad); got != state.ResultApplied {
		t.Fatalf("after the hold: %q (%s), want applied", got, ar.decision("stop", ad).Error)
	}
	if st := w.object(ad).Status; st != fakegraph.StatusPaused {
		t.Errorf("status = %s, want PAUSED", st)
	}
}

// TestPeopleWinBudget: a budget a person changed after rulesd's change is left alone.
func TestPeopleWinBudget(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1h
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	w.runOK("g")
	w.check(w.fake.SetBudget(as, 4000, 0))
	w.at(hrs(2))
	if got := w.runOK("g").result("grow", as); got != state.ResultSkippedManual {
		t.Fatalf("after a person's budget change: %q, want skipped_manual", got)
	}
	if got := w.object(as).DailyBudget; got != 4000 {
		t.Errorf("budget = %d, want the person's 4000", got)
	}
}

// TestRulesdOff: objects whose name contains [rulesd:off] are never touched, nor
// recorded.
func TestRulesdOff(t *testing.T) {
	w := newWorld(t, defaultConfig, pauseRules)
	as := w.adsetWithBudget("s", 5000)
	off := w.ad(fakegraph.Ad{AdSetID: as, Name: "hands off [rulesd:off]"})
	on := w.ad(fakegraph.Ad{AdSetID: as, Name: "fair game"})
	w.spendToday(off, 20)
	w.spendToday(on, 20)
	ar := w.runOK("g")
	if got := ar.result("stop", off); got != "" {
		t.Errorf("[rulesd:off] object decided: %q", got)
	}
	if got := ar.result("stop", on); got != state.ResultApplied {
		t.Errorf("other object: %q, want applied", got)
	}
	if n := len(w.writes(off)); n != 0 || w.object(off).Status != fakegraph.StatusActive {
		t.Errorf("[rulesd:off] object written %d times", n)
	}
	if recs := w.audit("", off); len(recs) != 0 {
		t.Errorf("[rulesd:off] object in the audit log: %+v", recs)
	}
}

// TestKillSwitch: engaged for all, the account or the group, the kill switch stops
// every write (blocked_guard with the kill switch's reason); released, writes resume
// (SPEC 4.12).
func TestKillSwitch(t *testing.T) {
	cases := []struct {
		name  string
		scope state.KillScope
		other bool // the other group is stopped too
	}{
		{"all", state.KillScope{}, true},
		{"account", state.KillScope{AccountID: acctID}, true},
		{"group", state.KillScope{Group: "g"}, false},
		{"group in account", state.KillScope{Group: "g", AccountID: acctID}, false},
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
    when: spend > 10
    action: {kind: pause}
- name: other
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+10%"}
`)
			as := w.adsetWithBudget("s", 5000)
			ad := w.ad(fakegraph.Ad{AdSetID: as})
			w.spendToday(ad, 20)
			ctx := context.Background()
			w.check(w.store.EngageKillSwitch(ctx, state.KillSwitch{Scope: c.scope, Reason: "incident 42", By: "test", EngagedAt: w.Now()}))
			d := w.runOK("g").decision("stop", ad)
			if d == nil || d.Result != state.ResultBlockedGuard || !strings.Contains(d.Error, "kill switch") || !strings.Contains(d.Error, "incident 42") {
				t.Fatalf("with the kill switch: %+v, want blocked_guard with the kill switch's reason", d)
			}
			if rec := w.last("stop", ad); rec.Result != state.ResultBlockedGuard || !strings.Contains(rec.Error, "kill switch") {
				t.Errorf("audit %s %q", rec.Result, rec.Error)
			}
			wantOther := state.ResultApplied
			if c.other {
				wantOther = state.ResultBlockedGuard
			}
			if got := w.runOK("other").result("grow", as); got != wantOther {
				t.Errorf("other group: %q, want %q", got, wantOther)
			}
			if n := w.posts(ad); n != 0 {
				t.Fatalf("%d POSTs with the kill switch engaged", n)
			}
			if _, ok := w.cooldown("g", "stop", false, ad); ok {
				t.Errorf("a blocked action started the cooldown")
			}
			released, err := w.store.ReleaseKillSwitch(ctx, c.scope)
			w.check(err)
			if !released {
				t.Fatalf("release: not engaged")
			}
			w.at(mins(30))
			if got := w.runOK("g").result("stop", ad); got != state.ResultApplied {
				t.Fatalf("after release: %q, want applied", got)
			}
			if st := w.object(ad).Status; st != fakegraph.StatusPaused {
				t.Errorf("status = %s", st)
			}
		})
	}
}

// TestKillSwitchOtherAccount: a switch for one account leaves the others alone.
func TestKillSwitchOtherAccount(t *testing.T) {
	w := newWorld(t, "accounts: [act_1001, act_3003]\n", pauseRules)
	w.must(w.fake.AddAccount(fakegraph.Account{ID: "act_3003", Currency: "EUR", TimezoneName: "UTC"}))
	ad1 := w.ads("x", 1)[0]
	c2 := w.campaign(fakegraph.Campaign{AccountID: "act_3003"})
	as2 := w.adset(fakegraph.AdSet{CampaignID: c2, DailyBudget: 5000})
	ad2 := w.ad(fakegraph.Ad{AdSetID: as2})
	w.spendToday(ad1, 20)
	w.check(w.fake.SetDaily(ad2, w.fake.Day("act_3003", 0), fakegraph.DayMetrics{Spend: 20, Impressions: 100}))
	w.check(w.store.EngageKillSwitch(context.Background(), state.KillSwitch{Scope: state.KillScope{AccountID: "act_3003"}, Reason: "client asked", EngagedAt: w.Now()}))
	gr := w.runAll("g")
	if len(gr.Accounts) != 2 {
		t.Fatalf("accounts = %d", len(gr.Accounts))
	}
	if w.object(ad1).Status != fakegraph.StatusPaused || w.object(ad2).Status != fakegraph.StatusActive {
		t.Errorf("statuses %s %s, want PAUSED (free account) ACTIVE (stopped account)", w.object(ad1).Status, w.object(ad2).Status)
	}
}
