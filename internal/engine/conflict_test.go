package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestConflictsWithinRun: one write per object per run; the first claiming rule in
// file order wins, except that a pause beats a budget or bid increase; notify never
// claims (SPEC 4.3).
func TestConflictsWithinRun(t *testing.T) {
	cases := []struct {
		name         string
		first        string // action of rule "first"
		second       string // action of rule "second"
		wantFirst    string
		wantSecond   string
		wantStatus   string
		wantBudget   int64
		wantAPIWrite int
	}{
		{"first of two budget changes wins", `{kind: set_budget, amount: 60}`, `{kind: change_budget, by: "+20%"}`,
			state.ResultApplied, state.ResultSkippedConflict, "ACTIVE", 6000, 1},
		{"pause beats an earlier budget increase", `{kind: change_budget, by: "+20%"}`, `{kind: pause}`,
			state.ResultSkippedConflict, state.ResultApplied, "PAUSED", 5000, 1},
		{"pause beats an earlier bid increase", `{kind: change_bid, by: "+20%"}`, `{kind: pause}`,
			state.ResultSkippedConflict, state.ResultApplied, "PAUSED", 5000, 1},
		{"an earlier pause beats a budget increase", `{kind: pause}`, `{kind: change_budget, by: "+20%"}`,
			state.ResultApplied, state.ResultSkippedConflict, "PAUSED", 5000, 1},
		{"an earlier budget decrease beats a pause", `{kind: change_budget, by: "-20%"}`, `{kind: pause}`,
			state.ResultApplied, state.ResultSkippedConflict, "ACTIVE", 4000, 1},
		{"notify never claims", `{kind: notify, message: "look"}`, `{kind: pause}`,
			state.ResultApplied, state.ResultApplied, "PAUSED", 5000, 1},
		{"notify after a write", `{kind: pause}`, `{kind: notify, message: "look"}`,
			state.ResultApplied, state.ResultApplied, "PAUSED", 5000, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, defaultConfig, fmt.Sprintf(`
groups:
- name: g
  rules:
  - name: first
    level: adset
    window: today
    when: spend >= 0
    action: %s
  - name: second
    level: adset
    window: today
    when: spend >= 0
    action: %s
`, c.first, c.second))
			camp := w.campaign(fakegraph.Campaign{})
			as := w.adset(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000, BidAmount: 500, BidStrategy: "LOWEST_COST_WITH_BID_CAP"})
			ar := w.runOK("g")
			if got := ar.result("first", as); got != c.wantFirst {
				t.Errorf("first: %q, want %q", got, c.wantFirst)
			}
			if got := ar.result("second", as); got != c.wantSecond {
				t.Errorf("second: %q, want %q", got, c.wantSecond)
			}
			o := w.object(as)
			if o.Status != c.wantStatus || o.DailyBudget != c.wantBudget {
				t.Errorf("object: status %s budget %d, want %s %d", o.Status, o.DailyBudget, c.wantStatus, c.wantBudget)
			}
			if n := len(w.writes(as)); n != c.wantAPIWrite {
				t.Errorf("writes = %d, want %d", n, c.wantAPIWrite)
			}
			for _, rule := range []string{"first", "second"} {
				rec := w.last(rule, as)
				if rec.Result == state.ResultSkippedConflict && !strings.Contains(rec.Error, "same run") {
					t.Errorf("%s: conflict recorded without its reason: %q", rule, rec.Error)
				}
			}
		})
	}
}

// TestConflictAcrossGroups: a change opposite to another rule's change to the same
// field in the last hour is skipped_conflict; the same direction, or an hour later,
// goes through.
func TestConflictAcrossGroups(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: up
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+20%"}
- name: down
  rules:
  - name: shrink
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "-10%"}
- name: up2
  rules:
  - name: grow2
    level: adset
    window: today
    when: spend >= 0
    cooldown: 1m
    action: {kind: change_budget, by: "+10%"}
`)
	as := w.adsetWithBudget("s", 5000)
	w.runOK("up") // 5000 -> 6000
	w.at(mins(30))
	ar := w.runOK("down")
	if got := ar.result("shrink", as); got != state.ResultSkippedConflict {
		t.Fatalf("opposite change 30 min later: %q, want skipped_conflict", got)
	}
	if rec := w.last("shrink", as); !strings.Contains(rec.Error, "up/grow") {
		t.Errorf("conflict reason %q does not name the other rule", rec.Error)
	}
	// The same direction is no conflict.
	if got := w.runOK("up2").result("grow2", as); got != state.ResultApplied {
		t.Fatalf("same direction: %q, want applied", got)
	}
	if got := w.object(as).DailyBudget; got != 6600 {
		t.Fatalf("budget = %d, want 6600", got)
	}
	// More than an hour after the last increase, the decrease goes through.
	w.at(mins(91))
	if got := w.runOK("down").result("shrink", as); got != state.ResultApplied {
		t.Fatalf("opposite change after an hour: %q, want applied", got)
	}
	if got := w.object(as).DailyBudget; got != 5940 {
		t.Errorf("budget = %d, want 5940", got)
	}
}
