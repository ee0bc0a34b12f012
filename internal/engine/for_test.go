package engine

import (
	"context"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// forRules pauses an ad once it spent more than 10 today on every evaluation for an
// hour; the group runs every 30 minutes.
const forRules = `
groups:
- name: g
  schedule: "*/30 * * * *"
  rules:
  - name: slow-stop
    level: ad
    window: today
    when: spend > 10
    for: 1h
    action: {kind: pause}
`

// TestForActsOnThirdEvaluation: for: 1h on a 30-minute schedule acts at the third
// evaluation (0, 30, 60 min) when the condition held on each (SPEC 4.1).
func TestForActsOnThirdEvaluation(t *testing.T) {
	w := newWorld(t, defaultConfig, forRules)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	for i, want := range []string{ResultPending, ResultPending, state.ResultApplied} {
		w.at(mins(30 * i))
		ar := w.runOK("g")
		if got := ar.result("slow-stop", ad); got != want {
			t.Fatalf("evaluation %d: result %q, want %q", i+1, got, want)
		}
		if i < 2 && len(w.writes(ad)) != 0 {
			t.Fatalf("evaluation %d wrote %v", i+1, w.writes(ad))
		}
		wantGauge := 1.0
		if i == 2 {
			wantGauge = 0
		}
		if g := w.counter("rulesd_rule_pending", map[string]string{"rule": "slow-stop"}); g != wantGauge {
			t.Errorf("evaluation %d: rulesd_rule_pending = %v, want %v", i+1, g, wantGauge)
		}
	}
	if ws := w.writes(ad); len(ws) != 1 || ws[0].New != fakegraph.StatusPaused {
		t.Fatalf("writes = %+v, want one pause", ws)
	}
	if got := w.auditResults("slow-stop", ad); got != "applied" {
		t.Errorf("audit = %s, want only applied (pending is not an action)", got)
	}
	// Pending resets after the action: the condition still holds, the rule starts
	// over (and would be a no-op now, not a second action).
	if _, ok := w.pending("g", "slow-stop", ad); ok {
		t.Errorf("pending state kept after the action")
	}
	w.at(mins(90))
	ar := w.runOK("g")
	d := ar.decision("slow-stop", ad)
	if d == nil || d.Result != ResultPending || !d.PendingSince.Equal(w.Now()) {
		t.Fatalf("after the action: decision %+v, want pending since %s", d, w.Now())
	}
}

// TestForMissResets: a miss between matches resets pending.
func TestForMissResets(t *testing.T) {
	w := newWorld(t, defaultConfig, forRules)
	ad := w.ads("x", 1)[0]
	steps := []struct {
		spend float64
		want  string
	}{
		{20, ResultPending}, // 0: pending since 0
		{0, ""},             // 30: miss, reset
		{20, ResultPending}, // 60: pending since 60
		{20, ResultPending}, // 90
		{20, state.ResultApplied},
	}
	for i, s := range steps {
		w.at(mins(30 * i))
		w.spendToday(ad, s.spend)
		ar := w.runOK("g")
		if got := ar.result("slow-stop", ad); got != s.want {
			t.Fatalf("step %d (%s): result %q, want %q", i, w.Now().Format("15:04"), got, s.want)
		}
		if i == 1 {
			if _, ok := w.pending("g", "slow-stop", ad); ok {
				t.Fatalf("pending kept after a miss")
			}
		}
	}
	if n := len(w.writes(ad)); n != 1 {
		t.Fatalf("writes = %d, want 1", n)
	}
}

// TestForSurvivesFailedReadThenLapses: a run whose data could not be read does not
// reset pending, but pending lapses after max(for, 2×interval) = 1h without a
// successful evaluation.
func TestForSurvivesFailedReadThenLapses(t *testing.T) {
	t.Run("one failed read", func(t *testing.T) {
		w := newWorld(t, defaultConfig, forRules)
		ad := w.ads("x", 1)[0]
		w.spendToday(ad, 20)
		w.runOK("g") // 0: pending since 0
		w.at(mins(30))
		w.failReads()
		if ar := w.run("g"); ar.Result != "failed" {
			t.Fatalf("run with a failing account: %s, want failed", ar.Result)
		}
		w.fake.ClearFaults()
		p, ok := w.pending("g", "slow-stop", ad)
		if !ok || !p.Since.Equal(t0) {
			t.Fatalf("pending after a failed read = %+v %v, want since %s", p, ok, t0)
		}
		w.at(mins(60))
		if got := w.runOK("g").result("slow-stop", ad); got != state.ResultApplied {
			t.Fatalf("at 60 min: %q, want applied (the failed read did not reset pending)", got)
		}
	})
	t.Run("lapses", func(t *testing.T) {
		w := newWorld(t, defaultConfig, forRules)
		ad := w.ads("x", 1)[0]
		w.spendToday(ad, 20)
		w.runOK("g") // 0: pending since 0
		w.failReads()
		for _, at := range []int{30, 60} {
			w.at(mins(at))
			if ar := w.run("g"); ar.Result != "failed" {
				t.Fatalf("run with a failing account: %s, want failed", ar.Result)
			}
		}
		w.fake.ClearFaults()
		// 90 min: the last successful evaluation was 90 min ago (> 1h): lapsed, the
		// condition starts pending again.
		w.at(mins(90))
		d := w.runOK("g").decision("slow-stop", ad)
		if d == nil || d.Result != ResultPending || !d.PendingSince.Equal(w.Now()) {
			t.Fatalf("after lapse: %+v, want pending since %s", d, w.Now())
		}
		w.at(mins(120))
		if got := w.runOK("g").result("slow-stop", ad); got != ResultPending {
			t.Fatalf("at 120: %q, want pending", got)
		}
		w.at(mins(150))
		if got := w.runOK("g").result("slow-stop", ad); got != state.ResultApplied {
			t.Fatalf("at 150: %q, want applied", got)
		}
		if n := len(w.writes(ad)); n != 1 {
			t.Fatalf("writes = %d, want 1", n)
		}
	})
}

// TestForSurvivesRestart: pending state is in the store, so a new process goes on
// where the old one stopped.
func TestForSurvivesRestart(t *testing.T) {
	w := newWorld(t, defaultConfig, forRules)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	w.runOK("g")
	w.at(mins(30))
	w.runOK("g")
	w.restart()
	w.at(mins(60))
	if got := w.runOK("g").result("slow-stop", ad); got != state.ResultApplied {
		t.Fatalf("after restart at 60 min: %q, want applied", got)
	}
}

// failReads makes every request about the account fail (permission error: not
// retried), so the run cannot read its data.
func (w *world) failReads() {
	w.fake.Inject(fakegraph.FaultRule{Account: acctID, Times: -1, Fault: fakegraph.ErrorFault(200, 0)})
}

// TestForSurvivesGuards: a guard that holds back a due action (here the kill switch)
// does not restart the for: clock; once released, the rule acts at the next run.
func TestForSurvivesGuards(t *testing.T) {
	w := newWorld(t, defaultConfig, forRules)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	ctx := context.Background()
	w.runOK("g") // pending since t0
	w.at(mins(30))
	w.runOK("g")
	w.check(w.store.EngageKillSwitch(ctx, state.KillSwitch{Reason: "incident", EngagedAt: w.Now()}))
	w.at(mins(60))
	if got := w.runOK("g").result("slow-stop", ad); got != state.ResultBlockedGuard {
		t.Fatalf("due with the kill switch engaged: %q, want blocked_guard", got)
	}
	if p, ok := w.pending("g", "slow-stop", ad); !ok || !p.Since.Equal(t0) {
		t.Fatalf("pending after a blocked action = %+v, %v; want still pending since t0", p, ok)
	}
	if _, err := w.store.ReleaseKillSwitch(ctx, state.KillScope{}); err != nil {
		t.Fatal(err)
	}
	w.at(mins(90))
	if got := w.runOK("g").result("slow-stop", ad); got != state.ResultApplied {
		t.Errorf("after the release: %q, want applied at once", got)
	}
}
