package engine

import (
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

const restoreRules = `
groups:
- name: night
  rules:
  - {name: pause-spender, level: ad, window: today, when: "spend > 10", cooldown: 12h, action: {kind: pause, restore_after: 6h}}
`

// TestRestoreAfter: a pause with restore_after sets the object ACTIVE again after that
// time, if it is still paused by rulesd; a person who changed it meanwhile wins.
func TestRestoreAfter(t *testing.T) {
	w := newWorld(t, defaultConfig, restoreRules)
	ads := w.ads("ad", 2)
	kept, touched := ads[0], ads[1]
	for _, ad := range ads {
		w.spendToday(ad, 20)
	}
	w.runOK("night")
	for _, ad := range ads {
		if w.object(ad).Status != "PAUSED" {
			t.Fatalf("%s not paused", ad)
		}
	}
	w.at(hrs(2))
	// A person sets one ad ACTIVE and then PAUSED again by hand: it is no longer
	// paused by rulesd.
	w.check(w.fake.SetStatus(touched, fakegraph.StatusActive))
	w.runOK("night")
	w.check(w.fake.SetStatus(touched, fakegraph.StatusPaused))
	w.at(hrs(5))
	w.runOK("night")
	if w.object(kept).Status != "PAUSED" {
		t.Fatal("restored before restore_after")
	}
	w.at(hrs(6))
	ar := w.runOK("night")
	if got := w.object(kept).Status; got != "ACTIVE" {
		t.Errorf("after 6h the ad is %s, want ACTIVE", got)
	}
	var restore *Decision
	for _, d := range ar.Decisions {
		if d.Object.ID == kept && d.Kind().String() == "unpause" {
			restore = d
		}
	}
	if restore == nil || restore.Result != state.ResultApplied {
		t.Errorf("restore decision = %+v", restore)
	}
	if got := w.object(touched).Status; got != "PAUSED" {
		t.Errorf("the ad a person changed is %s, want it left PAUSED", got)
	}
	last := w.last("pause-spender", kept)
	if last.Kind != "unpause" || last.Before != state.Status("PAUSED") || last.After != state.Status("ACTIVE") {
		t.Errorf("audit = %+v", last)
	}
	w.at(hrs(7))
	w.runOK("night")
	if n := len(w.writes(kept)); n != 2 {
		t.Errorf("%d writes, want 2 (pause, restore)", n)
	}
}
