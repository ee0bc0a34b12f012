package engine

import (
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestStateAttributes: paused_by_rulesd and hours_since_change come from the store:
// only an object rulesd paused (and that is still paused with rulesd's value) is
// paused_by_rulesd; hours_since_change is missing when rulesd never changed it.
func TestStateAttributes(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    where: status == "ACTIVE"
    when: spend > 10
    action: {kind: pause}
- name: watch
  rules:
  - name: look
    level: ad
    window: today
    when: (paused_by_rulesd || !paused_by_rulesd) && default(hours_since_change, -1) >= -1
    cooldown: 1m
    action: {kind: notify, message: "{{.name}}"}
  - name: restore
    level: ad
    window: today
    when: paused_by_rulesd && hours_since_change >= 2
    action: {kind: unpause}
`)
	as := w.adsetWithBudget("s", 5000)
	byRulesd := w.ad(fakegraph.Ad{AdSetID: as, Name: "by rulesd"})
	byPerson := w.ad(fakegraph.Ad{AdSetID: as, Name: "by a person", Status: fakegraph.StatusPaused})
	never := w.ad(fakegraph.Ad{AdSetID: as, Name: "active"})
	w.spendToday(byRulesd, 20)
	w.runOK("g") // pauses byRulesd at 0

	type want struct {
		paused   float64
		hours    float64 // -1: missing
		restored bool
	}
	check := func(at int, wants map[string]want) {
		t.Helper()
		w.at(mins(at))
		ar := w.runOK("watch")
		for id, wt := range wants {
			d := ar.decision("look", id)
			if d == nil {
				t.Fatalf("at %d min: look did not match %s", at, id)
			}
			if got, _ := d.Values["paused_by_rulesd"].Number(); got != wt.paused {
				t.Errorf("at %d min, %s: paused_by_rulesd = %v, want %v", at, id, got, wt.paused)
			}
			hv := d.Values["hours_since_change"]
			if wt.hours < 0 {
				if !hv.IsNull() {
					t.Errorf("at %d min, %s: hours_since_change = %v, want missing", at, id, hv)
				}
			} else if got, ok := hv.Number(); !ok || got != wt.hours {
				t.Errorf("at %d min, %s: hours_since_change = %v, want %v", at, id, hv, wt.hours)
			}
			if got := ar.result("restore", id) == state.ResultApplied; got != wt.restored {
				t.Errorf("at %d min, %s: restored %v, want %v", at, id, got, wt.restored)
			}
			// The audit record keeps what the rule saw.
			rec := w.last("look", id)
			if got, _ := rec.Values["paused_by_rulesd"].Number(); got != wt.paused {
				t.Errorf("at %d min, %s: audit paused_by_rulesd = %v", at, id, got)
			}
		}
	}
	check(60, map[string]want{
		byRulesd: {paused: 1, hours: 1},
		byPerson: {paused: 0, hours: -1},
		never:    {paused: 0, hours: -1},
	})
	check(150, map[string]want{
		byRulesd: {paused: 1, hours: 2.5, restored: true},
		byPerson: {paused: 0, hours: -1},
		never:    {paused: 0, hours: -1},
	})
	// Unpaused by rulesd: no longer paused_by_rulesd, changed 0h ago.
	check(180, map[string]want{
		byRulesd: {paused: 0, hours: 0.5},
	})
	if st := w.object(byRulesd).Status; st != fakegraph.StatusActive {
		t.Errorf("status = %s", st)
	}
}
