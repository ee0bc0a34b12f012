package app

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// `rulesd undo` (SPEC 4, end): the engine acts once against the simulated API with
// a SQLite store in the test's directory, then Undo restores what it changed.

var undoT0 = time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)

// undoRules pause the ad that spends without buying and raise the ad set's budget by
// 20% (50.00 → 60.00 USD).
const undoRules = `groups:
- name: ops
  rules:
  - name: stop-loss
    level: ad
    window: last_7d
    when: spend > 50 && purchases == 0
    action: {kind: pause}
  - name: scale
    level: adset
    window: last_7d
    when: spend > 1
    action: {kind: change_budget, by: "+20%"}
`

type undoWorld struct {
	t       *testing.T
	dir     string
	cfg     string
	fake    *fakegraph.Server
	clock   *clk
	acct    string
	adset   string
	spender string
}

func newUndoWorld(t *testing.T, extraConfig string) *undoWorld {
	t.Helper()
	c := &clk{t: undoT0}
	fake := fakegraph.New(fakegraph.Options{Now: c.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	w := &undoWorld{t: t, dir: t.TempDir(), fake: fake, clock: c}
	w.acct = fakegraph.Must(fake.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	camp := fakegraph.Must(fake.AddCampaign(fakegraph.Campaign{AccountID: w.acct, Objective: "OUTCOME_SALES"}))
	w.adset = fakegraph.Must(fake.AddAdSet(fakegraph.AdSet{CampaignID: camp, Name: "prospecting", DailyBudget: 5000}))
	w.spender = fakegraph.Must(fake.AddAd(fakegraph.Ad{AdSetID: w.adset, Name: "spender", Status: fakegraph.StatusActive}))
	for day := -10; day <= -1; day++ {
		must(t, fake.SetDaily(w.spender, fake.Day(w.acct, day), fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Clicks: 12}))
	}
	w.write("token", fakegraph.DefaultToken)
	w.write("rules/ops.yaml", undoRules)
	w.cfg = w.write("rulesd.yaml", fmt.Sprintf(`graph: {base_url: %q, api_version: v27.0, access_token_file: token, timeout: 10s}
accounts:
- {id: %s}
rule_files: ["rules/*.yaml"]
state: {driver: sqlite, dsn: state.db}
safety: {manual_hold: 12h}
%s`, srv.URL, w.acct, extraConfig))
	return w
}

func (w *undoWorld) write(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	must(w.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(w.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// runOnce runs every group once at the clock's time, as `rulesd run --once`.
func (w *undoWorld) runOnce(dry bool) {
	w.t.Helper()
	if _, err := Run(context.Background(), Options{ConfigPath: w.cfg, Once: true, DryRun: dry, Now: w.clock.Now, noWatch: true}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *undoWorld) store() *state.SQLite {
	w.t.Helper()
	s, err := state.OpenSQLite(context.Background(), filepath.Join(w.dir, "state.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	return s
}

// audit returns the log, newest first.
func (w *undoWorld) audit() []state.AuditRecord {
	w.t.Helper()
	recs, err := w.store().QueryAudit(context.Background(), state.AuditQuery{Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	return recs
}

// action returns the newest record of rule with result.
func (w *undoWorld) action(rule, result string) state.AuditRecord {
	w.t.Helper()
	for _, r := range w.audit() {
		if r.Rule == rule && r.Result == result {
			return r
		}
	}
	w.t.Fatalf("no %s record of %s in the audit log: %+v", result, rule, w.audit())
	return state.AuditRecord{}
}

func (w *undoWorld) undo(id int64, dry bool) (*UndoResult, error) {
	return Undo(context.Background(), UndoOptions{ConfigPath: w.cfg, ActionID: id, DryRun: dry, Now: w.clock.Now})
}

func (w *undoWorld) object(id string) fakegraph.ObjectState {
	w.t.Helper()
	o, ok := w.fake.Object(id)
	if !ok {
		w.t.Fatalf("no object %s", id)
	}
	return o
}

func (w *undoWorld) holds(id string) []state.Hold {
	w.t.Helper()
	hs, err := w.store().ActiveHolds(context.Background(), false, []string{id}, w.clock.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return hs
}

// wantRefused checks that err is a refusal saying want, and that nothing was written.
func (w *undoWorld) wantRefused(res *UndoResult, err error, want string, writesBefore, auditBefore int) {
	w.t.Helper()
	if !errors.Is(err, ErrUndoRefused) {
		w.t.Fatalf("undo: err = %v (result %+v), want a refusal", err, res)
	}
	if !strings.Contains(err.Error(), want) {
		w.t.Errorf("refusal %q does not say %q", err, want)
	}
	if n := len(w.fake.Writes()); n != writesBefore {
		w.t.Errorf("a refused undo wrote to the API: %d writes, want %d", n, writesBefore)
	}
	if n := len(w.audit()); n != auditBefore {
		w.t.Errorf("a refused undo added audit records: %d, want %d", n, auditBefore)
	}
}

func TestUndoRestoresBudget(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	if b := w.object(w.adset).DailyBudget; b != 6000 {
		t.Fatalf("the engine set the budget to %d, want 6000", b)
	}
	act := w.action("scale", state.ResultApplied)
	w.clock.Set(undoT0.Add(time.Hour))

	res, err := w.undo(act.ID, false)
	if err != nil {
		t.Fatalf("undo: %v", err)
	}
	if b := w.object(w.adset).DailyBudget; b != 5000 {
		t.Errorf("after undo the budget is %d, want 5000", b)
	}
	if !res.Applied || res.DryRun || res.From != "60.00 USD" || res.To != "50.00 USD" || res.ObjectName != "prospecting" {
		t.Errorf("result = %+v", res)
	}
	wantUntil := undoT0.Add(time.Hour + 12*time.Hour)
	if !res.HoldUntil.Equal(wantUntil) {
		t.Errorf("hold until %v, want %v (now + safety.manual_hold)", res.HoldUntil, wantUntil)
	}

	rec, err := w.store().GetAudit(context.Background(), res.UndoID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != KindUndo || rec.Result != state.ResultApplied || rec.Group != "ops" || rec.Rule != "scale" ||
		rec.Field != state.FieldDailyBudget || rec.Before != state.Amount(6000) || rec.After != state.Amount(5000) ||
		rec.Labels[LabelUndoOf] != strconv.FormatInt(act.ID, 10) || rec.ObjectID != w.adset || rec.DryRun {
		t.Errorf("undo audit record = %+v", rec)
	}
	lws, err := w.store().LastWrites(context.Background(), false, []string{w.adset})
	if err != nil {
		t.Fatal(err)
	}
	if len(lws) != 1 || lws[0].AuditID != res.UndoID || lws[0].Value != state.Amount(5000) {
		t.Errorf("last writes = %+v, want the undo's 5000 (audit %d)", lws, res.UndoID)
	}
	hs := w.holds(w.adset)
	if len(hs) != 1 || hs[0].Reason != state.HoldManual || hs[0].Field != state.FieldDailyBudget || !hs[0].Until.Equal(wantUntil) {
		t.Errorf("holds = %+v, want one manual hold on daily_budget until %v", hs, wantUntil)
	}
	if in, err := w.store().UnfinishedIntents(context.Background(), ""); err != nil || len(in) != 0 {
		t.Errorf("unfinished intents = %+v, %v", in, err)
	}

	// The same action cannot be undone twice: the undo is now the latest change.
	res2, err := w.undo(act.ID, false)
	w.wantRefused(res2, err, fmt.Sprintf("a later change (action %d)", res.UndoID), len(w.fake.Writes()), len(w.audit()))

}

func TestUndoRestoresPause(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	if s := w.object(w.spender).Status; s != fakegraph.StatusPaused {
		t.Fatalf("the engine left the ad %s", s)
	}
	act := w.action("stop-loss", state.ResultApplied)
	res, err := w.undo(act.ID, false)
	if err != nil {
		t.Fatalf("undo: %v", err)
	}
	if s := w.object(w.spender).Status; s != fakegraph.StatusActive {
		t.Errorf("after undo the ad is %s, want ACTIVE", s)
	}
	if res.From != "PAUSED" || res.To != "ACTIVE" || res.Currency != "" {
		t.Errorf("result = %+v", res)
	}
	hs := w.holds(w.spender)
	if len(hs) != 1 || hs[0].Reason != state.HoldManual || hs[0].Field != state.FieldStatus {
		t.Errorf("holds = %+v", hs)
	}
	// The stop-loss rule still matches, but leaves the ad alone during the hold.
	w.clock.Set(undoT0.Add(2 * time.Hour))
	w.runOnce(false)
	if s := w.object(w.spender).Status; s != fakegraph.StatusActive {
		t.Errorf("a run during the manual hold paused the ad again")
	}
	if r := w.action("stop-loss", state.ResultSkippedManual); r.ObjectID != w.spender || !r.Time.Equal(undoT0.Add(2*time.Hour)) {
		t.Errorf("skipped_manual record = %+v", r)
	}
}

func TestUndoRefusesWhenNotTheLatestChange(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	first := w.action("scale", state.ResultApplied)
	// After the rule's 24h cooldown it raises the budget again: 60.00 → 72.00.
	w.clock.Set(undoT0.Add(25 * time.Hour))
	w.runOnce(false)
	second := w.action("scale", state.ResultApplied)
	if second.ID == first.ID || w.object(w.adset).DailyBudget != 7200 {
		t.Fatalf("the second run did not raise the budget: %d (records %d, %d)", w.object(w.adset).DailyBudget, first.ID, second.ID)
	}
	res, err := w.undo(first.ID, false)
	w.wantRefused(res, err, fmt.Sprintf("a later change (action %d) exists", second.ID), len(w.fake.Writes()), len(w.audit()))

	// The latest one can be undone.
	if _, err := w.undo(second.ID, false); err != nil {
		t.Fatalf("undo the latest change: %v", err)
	}
	if b := w.object(w.adset).DailyBudget; b != 6000 {
		t.Errorf("budget = %d, want 6000", b)
	}
}

func TestUndoRefusesWhenAPersonChangedTheField(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	act := w.action("scale", state.ResultApplied)
	must(t, w.fake.SetBudget(w.adset, 5500, 0)) // someone in Ads Manager
	writes, audit := len(w.fake.Writes()), len(w.audit())
	res, err := w.undo(act.ID, false)
	w.wantRefused(res, err, "now holds 55.00 USD, not the 60.00 USD rulesd wrote: someone changed it", writes, audit)
	if b := w.object(w.adset).DailyBudget; b != 5500 {
		t.Errorf("budget = %d, want the person's 5500", b)
	}
	if hs := w.holds(w.adset); len(hs) != 0 {
		t.Errorf("a refused undo set holds: %+v", hs)
	}
}

func TestUndoRefusesDryRunAndFailedRecords(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(true) // --dry-run
	dry := w.action("stop-loss", state.ResultDryRun)
	writes, audit := len(w.fake.Writes()), len(w.audit())
	res, err := w.undo(dry.ID, false)
	w.wantRefused(res, err, "was a dry run", writes, audit)

	st := w.store()
	ids, err := st.AppendAudit(context.Background(),
		state.AuditRecord{Time: undoT0, Group: "ops", Rule: "stop-loss", AccountID: w.acct, Level: "ad", ObjectID: w.spender,
			Kind: "pause", Field: state.FieldStatus, Before: state.Status("ACTIVE"), After: state.Status("PAUSED"),
			Result: state.ResultFailed, Error: "Meta refused the change (code 100)"},
		state.AuditRecord{Time: undoT0, Group: "ops", Rule: "stop-loss", AccountID: w.acct, Level: "ad", ObjectID: w.spender,
			Kind: "pause", Field: state.FieldStatus, Before: state.Status("ACTIVE"), After: state.Status("PAUSED"),
			Result: state.ResultSkippedCooldown},
		state.AuditRecord{Time: undoT0, Group: "ops", Rule: "tell", AccountID: w.acct, Level: "ad", ObjectID: w.spender,
			Kind: "notify", Result: state.ResultApplied})
	if err != nil {
		t.Fatal(err)
	}
	audit = len(w.audit())
	for i, want := range []string{"not applied (result failed)", "not applied (result skipped_cooldown)", "changed no field"} {
		res, err := w.undo(ids[i], false)
		w.wantRefused(res, err, want, writes, audit)
	}
	res, err = w.undo(999999, false)
	w.wantRefused(res, err, "there is no action 999999", writes, audit)
}

func TestUndoDryRunWritesNothing(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	act := w.action("scale", state.ResultApplied)
	writes, audit := len(w.fake.Writes()), len(w.audit())
	res, err := w.undo(act.ID, true)
	if err != nil {
		t.Fatalf("dry undo: %v", err)
	}
	if !res.DryRun || res.Applied || res.UndoID != 0 || res.From != "60.00 USD" || res.To != "50.00 USD" || res.HoldUntil.IsZero() {
		t.Errorf("result = %+v", res)
	}
	if n := len(w.fake.Writes()); n != writes {
		t.Errorf("a dry undo wrote to the API")
	}
	if n := len(w.audit()); n != audit {
		t.Errorf("a dry undo added audit records")
	}
	if hs := w.holds(w.adset); len(hs) != 0 {
		t.Errorf("a dry undo set holds: %+v", hs)
	}
	if b := w.object(w.adset).DailyBudget; b != 6000 {
		t.Errorf("budget = %d", b)
	}
	// A dry undo refuses what the real one would.
	must(t, w.fake.SetBudget(w.adset, 5500, 0))
	res, err = w.undo(act.ID, true)
	w.wantRefused(res, err, "someone changed it", writes, audit)
	// And the config's dry_run makes every undo dry.
	must(t, w.fake.SetBudget(w.adset, 6000, 0))
	w.write("rulesd.yaml", strings.Replace(readFile(t, w.cfg), "safety:", "dry_run: true\nsafety:", 1))
	res, err = w.undo(act.ID, false)
	if err != nil || !res.DryRun || !strings.Contains(res.DryRunReason, "config") {
		t.Errorf("undo with dry_run in the config: %+v, %v", res, err)
	}
	if n := len(w.fake.Writes()); n != writes {
		t.Errorf("an undo with dry_run in the config wrote to the API")
	}
}

func TestUndoRefusesUnderKillSwitch(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	act := w.action("stop-loss", state.ResultApplied)
	must(t, w.store().EngageKillSwitch(context.Background(), state.KillSwitch{Scope: state.KillScope{AccountID: w.acct}, Reason: "incident", EngagedAt: undoT0}))
	res, err := w.undo(act.ID, false)
	w.wantRefused(res, err, "kill switch is engaged (account act_1001: incident)", len(w.fake.Writes()), len(w.audit()))
}

func TestUndoWriteThatDoesNotApply(t *testing.T) {
	w := newUndoWorld(t, "")
	w.runOnce(false)
	act := w.action("scale", state.ResultApplied)
	// Meta answers success and changes nothing: the read-back catches it.
	w.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: w.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultNoop}})
	res, err := w.undo(act.ID, false)
	if !errors.Is(err, ErrUndoFailed) || res == nil || res.Applied {
		t.Fatalf("undo = %+v, %v; want a failure", res, err)
	}
	rec, err := w.store().GetAudit(context.Background(), res.UndoID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != KindUndo || rec.Result != state.ResultFailed || !strings.Contains(rec.Error, "did not change") {
		t.Errorf("undo audit record = %+v", rec)
	}
	if hs := w.holds(w.adset); len(hs) != 0 {
		t.Errorf("a failed undo set holds: %+v", hs)
	}
	// The action is still the latest change and can be undone once Meta behaves.
	if _, err := w.undo(act.ID, false); err != nil {
		t.Fatalf("second try: %v", err)
	}
	if b := w.object(w.adset).DailyBudget; b != 5000 {
		t.Errorf("budget = %d", b)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
