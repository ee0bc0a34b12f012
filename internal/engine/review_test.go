package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// TestReconcileSendsNothingUnderKillSwitchOrDryRun: reconciling an unfinished intent
// may re-send its write; that is a write like any other, so the kill switch and a dry
// run stop it (SPEC 4.7, 4.12). The intent stays unfinished until writes may go on.
func TestReconcileSendsNothingUnderKillSwitchOrDryRun(t *testing.T) {
	ctx := context.Background()
	active, paused := state.Status("ACTIVE"), state.Status("PAUSED")

	t.Run("kill switch", func(t *testing.T) {
		w := newWorld(t, defaultConfig, pauseRules)
		ad := w.ads("x", 1)[0]
		w.recordIntent(ad, state.FieldStatus, active, paused, w.Now())
		w.check(w.store.EngageKillSwitch(ctx, state.KillSwitch{Reason: "incident", By: "test", EngagedAt: w.Now()}))
		w.restart()
		w.check(w.eng.Reconcile(ctx)) // start-up
		w.runOK("g")                  // and the run's own reconciliation
		if n := w.posts(ad); n != 0 {
			t.Fatalf("%d POSTs with the kill switch engaged", n)
		}
		if left := w.unfinished(); len(left) != 1 {
			t.Fatalf("unfinished intents = %d, want 1", len(left))
		}
		_, err := w.store.ReleaseKillSwitch(ctx, state.KillScope{})
		w.check(err)
		w.check(w.eng.Reconcile(ctx))
		if ws := w.writes(ad); len(ws) != 1 || ws[0].New != "PAUSED" {
			t.Errorf("after release: writes %+v, want the one pause", ws)
		}
		if left := w.unfinished(); len(left) != 0 {
			t.Errorf("unfinished after release: %+v", left)
		}
	})

	for _, c := range []struct{ name, cfg string }{
		{"--dry-run", defaultConfig},
		{"config dry_run", defaultConfig + "dry_run: true\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, c.cfg, pauseRules)
			ad := w.ads("x", 1)[0]
			w.recordIntent(ad, state.FieldStatus, active, paused, w.Now())
			w.dryRun = c.name == "--dry-run"
			w.restart()
			w.check(w.eng.Reconcile(ctx))
			w.runOK("g")
			if n := w.posts(ad); n != 0 {
				t.Fatalf("%d POSTs in a dry run", n)
			}
		})
	}
}

// TestAuthFailureStopsWritesUntilAReadSucceeds: a 190 stops writes with that token
// until a read with it succeeds again (SPEC 4.13); it does not stop them for ever,
// nor for the accounts of another token.
func TestAuthFailureStopsWritesUntilAReadSucceeds(t *testing.T) {
	w := newWorld(t, "accounts: [act_1001, {id: act_1002, access_token_file: other-token}]\n", pauseRules)
	w.must(w.fake.AddAccount(fakegraph.Account{ID: "act_1002", Currency: "USD", TimezoneName: "UTC"}))
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	camp := w.campaign(fakegraph.Campaign{AccountID: "act_1002"})
	as2 := w.adset(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000})
	ad2 := w.ad(fakegraph.Ad{AdSetID: as2})
	w.check(w.fake.SetDaily(ad2, w.fake.Day("act_1002", 0), fakegraph.DayMetrics{Spend: 20, Impressions: 2000}))

	w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: ad, Fault: fakegraph.ErrorFault(190, 463)})
	ctx := context.Background()
	gr, err := w.eng.runGroupFiltered(ctx, "g", w.Now(), map[string]bool{acctID: true})
	w.check(err)
	if d := gr.Accounts[0].decision("stop", ad); d == nil || d.Result != state.ResultFailed || !strings.Contains(d.Error, "access token") {
		t.Fatalf("write refused for the token: %+v", d)
	}
	acct1, _ := w.cfg.Account(acctID)
	acct2, _ := w.cfg.Account("act_1002")
	if !w.eng.authBadFor(*acct1) {
		t.Fatal("writes with the token are not stopped after a 190")
	}
	// Another token's account writes, and its read does not clear the first token.
	gr, err = w.eng.runGroupFiltered(ctx, "g", w.Now(), map[string]bool{"act_1002": true})
	w.check(err)
	if got := gr.Accounts[0].result("stop", ad2); got != state.ResultApplied {
		t.Errorf("account of another token: %q, want applied", got)
	}
	if !w.eng.authBadFor(*acct1) || w.eng.authBadFor(*acct2) {
		t.Errorf("auth state per token: %v %v, want true false", w.eng.authBadFor(*acct1), w.eng.authBadFor(*acct2))
	}
	// The next run reads with the token successfully: writes go on.
	w.at(mins(30))
	gr, err = w.eng.runGroupFiltered(ctx, "g", w.Now(), map[string]bool{acctID: true})
	w.check(err)
	if d := gr.Accounts[0].decision("stop", ad); d == nil || d.Result != state.ResultApplied {
		t.Fatalf("after a successful read: %+v, want applied", d)
	}
	if st := w.object(ad).Status; st != fakegraph.StatusPaused {
		t.Errorf("status = %s", st)
	}
}

// TestRelativeChangeNotRepeatedWhileIntentUnfinished: a budget write whose answer was
// lost and whose object could not be read back leaves its intent unfinished. Until it
// is reconciled, no rule may change that field again from the value it now reads:
// that would apply the relative change twice and overshoot the daily increase cap.
func TestRelativeChangeNotRepeatedWhileIntentUnfinished(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - name: grow
    level: adset
    window: today
    when: spend >= 0
    action: {kind: change_budget, by: "+40%"}
`)
	as := w.adsetWithBudget("s", 5000)
	// The write is applied, its answer lost, and the object cannot be read by id.
	w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: as, Fault: fakegraph.Fault{Kind: fakegraph.FaultDropAfterApply}})
	w.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: as, Times: -1, Fault: fakegraph.ErrorFault(2, 0)})
	ar := w.runOK("g")
	if d := ar.decision("grow", as); d == nil || d.Result != state.ResultFailed {
		t.Fatalf("first run: %+v, want failed (outcome unknown)", d)
	}
	if got := w.object(as).DailyBudget; got != 7000 {
		t.Fatalf("setup: budget %d, want 7000", got)
	}
	if len(w.unfinished()) != 1 {
		t.Fatalf("setup: want one unfinished intent")
	}
	w.at(mins(30))
	ar = w.runOK("g")
	if got := w.object(as).DailyBudget; got != 7000 {
		t.Fatalf("budget %d after the second run (decision %s %q), want 7000: the +40%% was applied twice",
			got, ar.result("grow", as), ar.decision("grow", as).Error)
	}
	// Once the object can be read, the intent is settled and the cooldown holds.
	w.fake.ClearFaults()
	w.at(mins(60))
	ar = w.runOK("g")
	if got := ar.result("grow", as); got != state.ResultSkippedCooldown {
		t.Errorf("after reconciliation: %q, want skipped_cooldown", got)
	}
	if got := w.object(as).DailyBudget; got != 7000 {
		t.Errorf("budget %d, want 7000", got)
	}
	if left := w.unfinished(); len(left) != 0 {
		t.Errorf("unfinished: %+v", left)
	}
}

// reloadingReader swaps in a new rule set right after reading a snapshot: a reload
// arriving while a run is in flight.
type reloadingReader struct {
	SnapshotReader
	once   sync.Once
	reload func()
}

func (r *reloadingReader) Read(ctx context.Context, a config.Account, at time.Time, rs []*rules.Rule) (*insights.Snapshot, error) {
	snap, err := r.SnapshotReader.Read(ctx, a, at, rs)
	r.once.Do(r.reload)
	return snap, err
}

// TestReloadDuringRun: a run finishes with the rule set it started with, rows and
// all; a reload that changes the layout of the rows must not make the run write the
// store's attributes into the wrong slots (or past the end of the row).
func TestReloadDuringRun(t *testing.T) {
	w := newWorld(t, defaultConfig, pauseRules)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	newRules := pauseRules + `
  - name: watch
    level: ad
    window: last_7d
    when: cpc > 1 && ctr > 2 && cpm > 3 && frequency > 4 && !paused_by_rulesd && hours_since_change > 1
    action: {kind: notify}
`
	var e *Engine
	rr := &reloadingReader{SnapshotReader: w.reader, reload: func() {
		w.reload(defaultConfig, newRules)
		e.Update(w.cfg, w.set)
	}}
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: rr, Executor: w.exec, Store: w.store, Now: w.Now, Owner: "test"})
	w.check(err)
	gr, err := e.RunGroup(context.Background(), "g", w.Now())
	w.check(err)
	if got := gr.Accounts[0].result("stop", ad); got != state.ResultApplied {
		t.Errorf("run across a reload: %q (%v), want applied", got, gr.Accounts[0].Err)
	}
}

// failingCooldowns fails SetCooldowns once, as a crash between storing a run's
// outcomes and its cooldowns would.
type failingCooldowns struct {
	state.Store
	mu     sync.Mutex
	failed bool
}

func (f *failingCooldowns) SetCooldowns(ctx context.Context, cs []state.Cooldown) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return errors.New("disk I/O error")
	}
	return f.Store.SetCooldowns(ctx, cs)
}

// TestCooldownNotLostAfterAppliedWrite: when storing a run's cooldowns fails after its
// writes were applied, the next run must not apply the relative change again.
func TestCooldownNotLostAfterAppliedWrite(t *testing.T) {
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
	m, err := metrics.New(nil)
	w.check(err)
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: w.reader, Executor: w.exec, Store: &failingCooldowns{Store: w.store},
		Metrics: m, Now: w.Now, Owner: "test"})
	w.check(err)
	if _, err := e.RunGroup(context.Background(), "g", w.Now()); err != nil {
		t.Fatal(err)
	}
	if got := w.object(as).DailyBudget; got != 6000 {
		t.Fatalf("setup: budget %d, want 6000", got)
	}
	w.at(mins(30))
	gr, err := e.RunGroup(context.Background(), "g", w.Now())
	w.check(err)
	if got := w.object(as).DailyBudget; got != 6000 {
		t.Fatalf("budget %d after the next run (%s), want 6000: the +20%% was applied twice", got, gr.Accounts[0].result("grow", as))
	}
}

// TestRestoreBlockedWhenFlapping: the unpause of restore_after is an unpause like any
// other: once the object's status was reversed more than 3 times in 24h, it is
// blocked_flapping (SPEC 4.9).
func TestRestoreBlockedWhenFlapping(t *testing.T) {
	w := newWorld(t, defaultConfig, `
groups:
- name: g
  rules:
  - {name: stop, level: ad, window: today, when: "spend > 10", cooldown: 1m, action: {kind: pause, restore_after: 1h}}
`)
	ad := w.ads("x", 1)[0]
	w.spendToday(ad, 20)
	// P at 0, A at 1h, P at 1h30, A at 2h30, P at 3h: 4 reversals.
	for _, at := range []time.Duration{0, hrs(1), mins(90), mins(150), hrs(3)} {
		w.at(at)
		w.runOK("g")
	}
	if n := len(w.writes(ad)); n != 5 {
		t.Fatalf("setup: %d writes, want 5", n)
	}
	w.at(hrs(4))
	ar := w.runOK("g")
	var restore *Decision
	for _, d := range ar.Decisions {
		if d.Object.ID == ad && d.Kind() == rules.Unpause {
			restore = d
		}
	}
	if restore == nil || restore.Result != state.ResultBlockedFlapping {
		t.Fatalf("restore of a flapping object: %+v, want blocked_flapping", restore)
	}
	if st := w.object(ad).Status; st != fakegraph.StatusPaused {
		t.Errorf("status = %s, want PAUSED", st)
	}
}

// withHook replaces the world's engine by one notifying a webhook "hook" (the config
// must name it), and returns a function that flushes and returns the digests.
func (w *world) withHook() func() []notify.Digest {
	t := w.t
	var mu sync.Mutex
	var digests []notify.Digest
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var d notify.Digest
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			t.Errorf("digest: %v", err)
		}
		mu.Lock()
		digests = append(digests, d)
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	ns, err := notify.Build([]notify.Config{{Name: "hook", Type: notify.TypeWebhook, URL: notify.NewSecret(hook.URL)}}, nil, notify.BuildOptions{})
	w.check(err)
	d, err := notify.NewDispatcher(ns, notify.Options{})
	w.check(err)
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: w.reader, Executor: w.exec, Store: w.store, Notify: d, Now: w.Now, Owner: "test"})
	w.check(err)
	w.eng = e
	return func() []notify.Digest {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.check(d.Close(ctx))
		mu.Lock()
		defer mu.Unlock()
		return digests
	}
}

func kinds(ds []notify.Digest) map[notify.Kind]int {
	out := map[notify.Kind]int{}
	for _, d := range ds {
		out[d.Kind]++
	}
	return out
}

// TestAlerts: a refused token notifies (SPEC 4.13), and so does the start of a
// flapping block (SPEC 4.9: "alerts"), once each.
func TestAlerts(t *testing.T) {
	cfg := defaultConfig + "notifiers: [{name: hook, type: webhook, url: \"http://127.0.0.1:1/unused\"}]\n"
	t.Run("auth", func(t *testing.T) {
		w := newWorld(t, cfg, pauseRules)
		ads := w.ads("x", 2)
		for _, ad := range ads {
			w.spendToday(ad, 20)
		}
		flush := w.withHook()
		w.fake.Inject(fakegraph.FaultRule{Method: "POST", Fault: fakegraph.ErrorFault(190, 0), Times: -1})
		w.runOK("g")
		w.at(mins(30))
		w.runOK("g") // refused again after a successful read: a new alert
		w.fake.ClearFaults()
		if got := kinds(flush())[notify.KindAuthFailure]; got != 2 {
			t.Errorf("auth_failure digests = %d, want 2 (one per refusal after a successful read)", got)
		}
	})
	t.Run("flapping", func(t *testing.T) {
		w := newWorld(t, cfg, `
groups:
- name: g
  rules:
  - {name: stop, level: ad, window: today, where: status == "ACTIVE", when: "spend >= 0", action: {kind: pause}}
  - {name: start, level: ad, window: today, where: status == "PAUSED", when: "spend >= 0", action: {kind: unpause}}
`)
		as := w.adsetWithBudget("s", 5000)
		w.ad(fakegraph.Ad{AdSetID: as, Status: fakegraph.StatusPaused})
		flush := w.withHook()
		for i := range 9 {
			w.at(mins(90 * i))
			w.runOK("g")
		}
		if got := kinds(flush())[notify.KindFlappingBlocked]; got != 1 {
			t.Errorf("flapping_blocked digests = %d, want 1", got)
		}
	})
}
