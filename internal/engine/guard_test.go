package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestBlastRadius: when a rule's would-be writes exceed max_actions_per_run, or half
// of the objects in scope when at least 5 would act, it acts on none of them and
// records blocked_guard for each (SPEC 4.5).
func TestBlastRadius(t *testing.T) {
	cases := []struct {
		name      string
		limit     string // group max_actions_per_run
		ads, hits int
		blocked   bool
	}{
		{"everything", "", 6, 6, true},
		{"more than half, at least 5", "", 9, 5, true},
		{"half is allowed", "", 10, 5, false},
		{"fewer than 5", "", 4, 4, false},
		{"over max_actions_per_run", "max_actions_per_run: 2", 10, 3, true},
		{"at max_actions_per_run", "max_actions_per_run: 3", 10, 3, false},
		{"no-ops do not count", "", 6, 6, false}, // 4 of them already paused
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, defaultConfig, fmt.Sprintf(`
groups:
- name: g
  %s
  rules:
  - name: stop
    level: ad
    window: today
    when: spend > 10
    action: {kind: pause}
`, c.limit))
			ids := w.ads("x", c.ads)
			for _, id := range ids[:c.hits] {
				w.spendToday(id, 20)
			}
			hits := ids[:c.hits]
			if strings.HasPrefix(c.name, "no-ops") {
				for _, id := range ids[2:] {
					w.check(w.fake.SetStatus(id, fakegraph.StatusPaused))
				}
				hits = ids[:2]
			}
			ar := w.runOK("g")
			want := state.ResultApplied
			if c.blocked {
				want = state.ResultBlockedGuard
			}
			for _, id := range hits {
				if got := ar.result("stop", id); got != want {
					t.Errorf("%s: %q, want %q", id, got, want)
				}
				rec := w.last("stop", id)
				if rec.Result != want || (c.blocked && !strings.Contains(rec.Error, "blast-radius")) {
					t.Errorf("%s: audit %s %q", id, rec.Result, rec.Error)
				}
			}
			nWrites := len(w.fake.Writes())
			if c.blocked {
				if nWrites != 0 {
					t.Errorf("blocked rule wrote %d times", nWrites)
				}
				if n := w.actionsTotal("stop", state.ResultBlockedGuard); n != float64(c.hits) {
					t.Errorf("rulesd_actions_total{result=blocked_guard} = %v, want %d", n, c.hits)
				}
				if !ar.GuardTripped || ar.Result != "partial" {
					t.Errorf("run: guard tripped %v, result %s", ar.GuardTripped, ar.Result)
				}
			} else if nWrites != len(hits) {
				t.Errorf("writes = %d, want %d", nWrites, len(hits))
			}
		})
	}
}

// TestPacing: rulesd never makes a 3rd budget change to one object within an hour
// (skipped_pacing), and after Meta's 613/1487632 it treats the budget as locked for
// an hour (SPEC 4.8).
func TestPacing(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  schedule: "*/15 * * * *"
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 10m
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	steps := []struct {
		at     int // minutes
		result string
		budget int64
	}{
		{0, state.ResultApplied, 5500},
		{15, state.ResultApplied, 6050},
		{30, state.ResultSkippedPacing, 6050},
		{45, state.ResultSkippedPacing, 6050},
		{60, state.ResultSkippedPacing, 6050}, // the change at 0 is still within the hour
		{75, state.ResultApplied, 6655},
	}
	for _, s := range steps {
		w.at(mins(s.at))
		ar := w.runOK("g")
		if got := ar.result("grow", as); got != s.result {
			t.Fatalf("at %d min: %q, want %q", s.at, got, s.result)
		}
		if got := w.object(as).DailyBudget; got != s.budget {
			t.Fatalf("at %d min: budget %d, want %d", s.at, got, s.budget)
		}
	}
	if n := len(w.writes(as)); n != 3 {
		t.Errorf("writes = %d, want 3", n)
	}
	// The cooldown (10m) is shorter than the schedule: every skip is recorded.
	if got := w.auditResults("grow", as); got != "applied,applied,skipped_pacing,skipped_pacing,skipped_pacing,applied" {
		t.Errorf("audit = %s", got)
	}
	if n := w.actionsTotal("grow", state.ResultSkippedPacing); n != 3 {
		t.Errorf("rulesd_actions_total{result=skipped_pacing} = %v, want 3", n)
	}
}

func TestPacingLockedBudget(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 10m
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: as, Fault: fakegraph.ErrorFault(613, 1487632)})
	d := w.runOK("g").decision("grow", as)
	if d == nil || d.Result != state.ResultFailed || !strings.Contains(d.Error, "locked") {
		t.Fatalf("with 613/1487632: %+v, want failed: locked", d)
	}
	w.at(mins(30))
	d = w.runOK("g").decision("grow", as)
	if d == nil || d.Result != state.ResultSkippedPacing || !strings.Contains(d.Error, "locked") {
		t.Fatalf("30 min after the lock: %+v, want skipped_pacing: locked", d)
	}
	if n := w.posts(as); n != 1 {
		t.Errorf("POSTs = %d, want 1 (none while locked)", n)
	}
	w.at(mins(60))
	if got := w.runOK("g").result("grow", as); got != state.ResultApplied {
		t.Fatalf("an hour after the lock: %q, want applied", got)
	}
	if got := w.object(as).DailyBudget; got != 5500 {
		t.Errorf("budget = %d, want 5500", got)
	}
}

// TestFlapping: when rules reverse an object's status more than 3 times in 24h,
// further unpauses are blocked for 24h (blocked_flapping) while pauses go through
// (SPEC 4.9).
func TestFlapping(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    where: status == "ACTIVE"
    when: spend >= 0
    action: {kind: pause}
  - name: start
    level: ad
    window: today
    where: status == "PAUSED"
    when: spend >= 0
    action: {kind: unpause}
`)
	as := w.adsetWithBudget("s", 5000)
	ad := w.ad(fakegraph.Ad{AdSetID: as, Status: fakegraph.StatusPaused})
	// Every 90 minutes (past the 1h cooldowns and the 1h cross-rule conflict window)
	// the object flips: U P U P U (4 reversals) P (5), then unpauses are blocked.
	want := []string{"start", "stop", "start", "stop", "start", "stop"}
	for i, rule := range want {
		w.at(mins(90 * i))
		ar := w.runOK("g")
		if got := ar.result(rule, ad); got != state.ResultApplied {
			t.Fatalf("step %d: %s: %q (%s), want applied", i, rule, got, ar.decision(rule, ad).Error)
		}
	}
	if st := w.object(ad).Status; st != fakegraph.StatusPaused {
		t.Fatalf("status = %s", st)
	}
	for i := 6; i < 9; i++ {
		w.at(mins(90 * i))
		ar := w.runOK("g")
		if got := ar.result("start", ad); got != state.ResultBlockedFlapping {
			t.Fatalf("step %d: unpause %q, want blocked_flapping", i, got)
		}
	}
	if n := len(w.writes(ad)); n != 6 {
		t.Errorf("writes = %d, want 6", n)
	}
	if n := w.actionsTotal("start", state.ResultBlockedFlapping); n != 3 {
		t.Errorf("rulesd_actions_total{result=blocked_flapping} = %v, want 3", n)
	}
	// The block lasts 24h from when it started (step 6, at 9h), even once the
	// reversals have left the 24h window.
	w.at(mins(90*6) + hrs(23))
	if got := w.runOK("g").result("start", ad); got != state.ResultBlockedFlapping {
		t.Fatalf("23h after the block: %q, want blocked_flapping", got)
	}
	w.at(mins(90*6) + hrs(24) + mins(30))
	if got := w.runOK("g").result("start", ad); got != state.ResultApplied {
		t.Fatalf("after the block: %q, want applied", got)
	}
}

// TestFlappingLetsPausesThrough: with the object flapping, a pause still goes
// through.
func TestFlappingLetsPausesThrough(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    where: status == "ACTIVE"
    when: spend >= 0
    action: {kind: pause}
  - name: start
    level: ad
    window: today
    where: status == "PAUSED"
    when: spend >= 0
    action: {kind: unpause}
`)
	as := w.adsetWithBudget("s", 5000)
	ad := w.ad(fakegraph.Ad{AdSetID: as, Status: fakegraph.StatusActive})
	// P U P U P: 4 reversals, the object is paused; the flapping hold starts at
	// the next unpause; a pause must still pass while it holds.
	for i := range 5 {
		w.at(mins(90 * i))
		w.runOK("g")
	}
	w.at(mins(90 * 5))
	if got := w.runOK("g").result("start", ad); got != state.ResultBlockedFlapping {
		t.Fatalf("unpause: %q, want blocked_flapping", got)
	}
	// Seed an ACTIVE status as rulesd's own last write would (the store is the
	// engine's memory), so that the pause rule sees an active object rulesd set.
	w.check(w.fake.SetStatus(ad, fakegraph.StatusActive))
	_, err := w.store.RecordOutcomes(context.Background(), []state.Outcome{{
		Audit: state.AuditRecord{Time: w.Now(), Group: "other", Rule: "x", AccountID: acctID, ObjectID: ad, Kind: "unpause",
			Field: state.FieldStatus, Before: state.Status("PAUSED"), After: state.Status("ACTIVE"), Result: state.ResultApplied},
		Change: &state.Change{Time: w.Now(), Group: "other", Rule: "x", AccountID: acctID, ObjectID: ad, Field: state.FieldStatus,
			Before: state.Status("PAUSED"), After: state.Status("ACTIVE")},
	}})
	w.check(err)
	w.at(mins(90*5) + mins(61))
	ar := w.runOK("g")
	if got := ar.result("stop", ad); got != state.ResultApplied {
		t.Fatalf("pause while flapping: %q (%s), want applied", got, ar.decision("stop", ad).Error)
	}
}

// TestBlastRadiusIgnoresNotify: a notify rule matching everything is not a blast.
func TestBlastRadiusIgnoresNotify(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: tell
    level: ad
    window: today
    when: spend >= 0
    action: {kind: notify, message: "hi"}
`)
	ids := w.ads("x", 8)
	ar := w.runOK("g")
	for _, id := range ids {
		if got := ar.result("tell", id); got != state.ResultApplied {
			t.Errorf("%s: %q, want applied", id, got)
		}
	}
	if ar.GuardTripped {
		t.Errorf("guard tripped by notifications")
	}
}

// TestFlappingBudget: budget direction reversals count too: after more than 3 in 24h,
// increases are blocked and decreases go through.
func TestFlappingBudget(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: up
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1m
    action: {kind: change_budget, by: "+10%"}
- name: down
  rules:
  - name: shrink
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1m
    action: {kind: change_budget, by: "-10%"}
`)
	as := w.adsetWithBudget("s", 10000)
	// + - + - + (4 reversals), then - still passes, then + is blocked.
	steps := []struct{ group, rule, want string }{
		{"up", "grow", state.ResultApplied},
		{"down", "shrink", state.ResultApplied},
		{"up", "grow", state.ResultApplied},
		{"down", "shrink", state.ResultApplied},
		{"up", "grow", state.ResultApplied},
		{"down", "shrink", state.ResultApplied},
		{"up", "grow", state.ResultBlockedFlapping},
		{"down", "shrink", state.ResultApplied},
	}
	for i, s := range steps {
		w.at(mins(90 * i))
		ar := w.runOK(s.group)
		if got := ar.result(s.rule, as); got != s.want {
			t.Fatalf("step %d %s: %q (%s), want %q", i, s.rule, got, ar.decision(s.rule, as).Error, s.want)
		}
	}
	if n := len(w.writes(as)); n != 7 {
		t.Errorf("writes = %d, want 7", n)
	}
}
