package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

const pauseRules = `
groups:
- name: g
  rules:
  - name: stop
    level: ad
    window: today
    when: spend > 10
    action: {kind: pause}
`

// recordIntent stores an intent as the engine does right before its write batch.
func (w *world) recordIntent(obj, field string, before, target state.Value, created time.Time) state.Intent {
	w.t.Helper()
	in := state.Intent{Created: created, RunID: "crashed-run", Group: "g", Rule: "stop", AccountID: acctID,
		Level: "ad", ObjectID: obj, ObjectName: "n", Kind: "pause", Field: field, Before: before, Target: target}
	ids, err := w.store.RecordIntents(context.Background(), []state.Intent{in})
	w.check(err)
	in.ID = ids[0]
	return in
}

// TestReconcileUnfinishedIntents: intents recorded before a crash are settled by a
// new process: the target present -> applied (no second write); the before present
// and young -> re-sent once; anything else -> failed: superseded (SPEC 4.6).
func TestReconcileUnfinishedIntents(t *testing.T) {
	w := newWorld(t, defaultConfig, pauseRules)
	ids := w.ads("x", 3)
	applied, resend, old := ids[0], ids[1], ids[2]
	as := w.adsetWithBudget("budget", 5000)
	active, paused := state.Status("ACTIVE"), state.Status("PAUSED")

	// applied: the write reached the API before the crash.
	in := w.recordIntent(applied, state.FieldStatus, active, paused, w.Now())
	res := w.exec.Apply(context.Background(), []actions.Write{{IntentID: in.ID, AccountID: acctID, ObjectID: applied,
		Field: state.FieldStatus, Before: active, Target: paused, Priority: true}})
	if !res[0].Applied {
		t.Fatalf("setup write: %+v", res[0])
	}
	// resend: the process died before sending.
	w.recordIntent(resend, state.FieldStatus, active, paused, w.Now())
	// person: a person changed the budget after the intent was recorded.
	w.recordIntent(as, state.FieldDailyBudget, state.Amount(5000), state.Amount(6000), w.Now())
	w.check(w.fake.SetBudget(as, 7000, 0))
	// old: never sent, and older than one interval: too old to send now.
	w.recordIntent(old, state.FieldStatus, active, paused, w.Now().Add(-2*time.Hour))

	w.advance(5 * time.Minute)
	w.restart()
	w.check(w.eng.Reconcile(context.Background()))

	if n := len(w.writes(applied)); n != 1 {
		t.Errorf("applied: %d writes, want 1 (no second write)", n)
	}
	if rec := w.last("stop", applied); rec.Result != state.ResultApplied {
		t.Errorf("applied: audit %s %q", rec.Result, rec.Error)
	}
	if ws := w.writes(resend); len(ws) != 1 || ws[0].New != "PAUSED" {
		t.Errorf("resend: writes %+v, want one pause", ws)
	}
	if rec := w.last("stop", resend); rec.Result != state.ResultApplied {
		t.Errorf("resend: audit %s %q", rec.Result, rec.Error)
	}
	if n := len(w.writes(as)); n != 0 {
		t.Errorf("changed by a person: %d writes, want none", n)
	}
	if got := w.object(as).DailyBudget; got != 7000 {
		t.Errorf("changed by a person: budget %d, want the person's 7000", got)
	}
	rec := w.last("stop", as)
	if rec.Result != state.ResultFailed || !strings.HasPrefix(rec.Error, "superseded") || strings.Count(rec.Error, "superseded") != 1 {
		t.Errorf("changed by a person: audit %s %q, want failed: superseded…", rec.Result, rec.Error)
	}
	if n := len(w.writes(old)); n != 0 {
		t.Errorf("old intent: %d writes, want none", n)
	}
	if rec := w.last("stop", old); rec.Result != state.ResultFailed || !strings.HasPrefix(rec.Error, "superseded") {
		t.Errorf("old intent: audit %s %q, want failed: superseded", rec.Result, rec.Error)
	}
	if left := w.unfinished(); len(left) != 0 {
		t.Errorf("unfinished intents left: %+v", left)
	}
	// Reconciling again settles nothing twice.
	w.check(w.eng.Reconcile(context.Background()))
	if n := len(w.writes(resend)); n != 1 {
		t.Errorf("resend after a second reconcile: %d writes", n)
	}
	// The reconciled writes are rulesd's own: the next run does not mistake them
	// for a person's (no skipped_manual), they are simply no-ops.
	w.spendToday(applied, 20)
	w.spendToday(resend, 20)
	w.at(2 * time.Hour)
	ar := w.runOK("g")
	for _, id := range []string{applied, resend} {
		if got := ar.result("stop", id); got != state.ResultSkippedNoop {
			t.Errorf("%s after reconcile: %q (%s), want skipped_noop", id, got, ar.decision("stop", id).Error)
		}
	}
}

// TestReconcileUnreadableStaysUnfinished: an intent whose object cannot be read is
// left unfinished for a later try, not recorded as failed.
func TestReconcileUnreadableStaysUnfinished(t *testing.T) {
	w := newWorld(t, defaultConfig, pauseRules)
	ad := w.ads("x", 1)[0]
	w.recordIntent(ad, state.FieldStatus, state.Status("ACTIVE"), state.Status("PAUSED"), w.Now())
	w.restart()
	w.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: ad, Times: -1, Fault: fakegraph.ErrorFault(2, 0)})
	w.check(w.eng.Reconcile(context.Background()))
	w.fake.ClearFaults()
	if left := w.unfinished(); len(left) != 1 {
		t.Fatalf("unfinished intents = %d, want 1 (the object could not be read)", len(left))
	}
	if recs := w.audit("stop", ad); len(recs) != 0 {
		t.Errorf("audit = %+v, want nothing yet", recs)
	}
	w.check(w.eng.Reconcile(context.Background()))
	if left := w.unfinished(); len(left) != 0 {
		t.Fatalf("unfinished intents = %d after a readable reconcile", len(left))
	}
	if rec := w.last("stop", ad); rec.Result != state.ResultApplied || len(w.writes(ad)) != 1 {
		t.Errorf("audit %s, writes %d; want applied once", rec.Result, len(w.writes(ad)))
	}
}

// TestLostAnswerReadBack: a write whose answer is lost (the API applied it, then the
// connection dropped) is read back and recorded applied, written exactly once
// (SPEC 4.10).
func TestLostAnswerReadBack(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules string
		obj   func(w *world) string
		field string
	}{
		{"pause", pauseRules, func(w *world) string {
			ad := w.ads("x", 1)[0]
			w.spendToday(ad, 20)
			return ad
		}, "status"},
		{"budget", `
groups:
- name: g
  rules:
  - name: stop
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+10%"}
`, func(w *world) string { return w.adsetWithBudget("s", 5000) }, "daily_budget"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, defaultConfig, c.rules)
			obj := c.obj(w)
			w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: obj, Fault: fakegraph.Fault{Kind: fakegraph.FaultDropAfterApply}})
			ar := w.runOK("g")
			if got := ar.result("stop", obj); got != state.ResultApplied {
				t.Fatalf("lost answer: %q (%s), want applied", got, ar.decision("stop", obj).Error)
			}
			if w.fake.PendingFaults() != 0 {
				t.Fatalf("the fault did not act")
			}
			if ws := w.writes(obj); len(ws) != 1 || ws[0].Field != c.field {
				t.Errorf("writes = %+v, want exactly one", ws)
			}
			if left := w.unfinished(); len(left) != 0 {
				t.Errorf("unfinished intents: %+v", left)
			}
		})
	}
}

// TestReconciledIntentStartsCooldown: a run killed between its intent and the answer
// leaves the intent to the next process, whose run reconciles it first; the settled
// action starts the rule's cooldown, so the run does not change the budget again.
func TestReconciledIntentStartsCooldown(t *testing.T) {
	for _, sent := range []bool{true, false} {
		t.Run(map[bool]string{true: "applied before the crash", false: "never sent"}[sent], func(t *testing.T) {
			w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+20%"}
`)
			as := w.adsetWithBudget("s", 5000)
			in := state.Intent{Created: w.Now(), RunID: "crashed", Group: "g", Rule: "grow", AccountID: acctID, Level: "adset",
				ObjectID: as, Kind: "change_budget", Field: state.FieldDailyBudget, Before: state.Amount(5000), Target: state.Amount(6000)}
			ids, err := w.store.RecordIntents(context.Background(), []state.Intent{in})
			w.check(err)
			if sent {
				w.exec.Apply(context.Background(), []actions.Write{{IntentID: ids[0], AccountID: acctID, ObjectID: as,
					Field: state.FieldDailyBudget, Before: state.Amount(5000), Target: state.Amount(6000)}})
			}
			w.restart()
			w.at(time.Minute)
			ar := w.run("g") // reconciles the account's intents, then evaluates
			if got := ar.result("grow", as); got != state.ResultSkippedCooldown {
				t.Errorf("run after reconciliation: %q, want skipped_cooldown", got)
			}
			if got := w.object(as).DailyBudget; got != 6000 {
				t.Errorf("budget = %d, want 6000", got)
			}
			if n := len(w.writes(as)); n != 1 {
				t.Errorf("writes = %d, want 1", n)
			}
			if got := w.auditResults("grow", as); got != "applied,skipped_cooldown" {
				t.Errorf("audit = %s", got)
			}
			if left := w.unfinished(); len(left) != 0 {
				t.Errorf("unfinished: %+v", left)
			}
		})
	}
}
