// Package statetest is the behavioural test suite of state.Store. Every
// implementation runs the same suite, so SQLite today and PostgreSQL later promise
// the engine exactly the same semantics. It uses nothing but the interface.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/state"
)

// t0 is the suite's reference time. Whole seconds, so that a backend storing
// microseconds round-trips every time the suite uses.
var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// Run runs the suite. open must return a new, empty store for each call; the suite
// closes it at the end of the subtest that opened it.
func Run(t *testing.T, open func(t *testing.T) state.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"Ping", testPing},
		{"AuditRoundTrip", testAuditRoundTrip},
		{"AuditQuery", testAuditQuery},
		{"AuditLast", testAuditLast},
		{"AuditRetention", testAuditRetention},
		{"Pending", testPending},
		{"PendingBulk", testPendingBulk},
		{"Cooldowns", testCooldowns},
		{"History", testHistory},
		{"HistoryDryRunApart", testHistoryDryRunApart},
		{"Holds", testHolds},
		{"Intents", testIntents},
		{"KillSwitch", testKillSwitch},
		{"Runs", testRuns},
		{"Leases", testLeases},
		{"LeasesConcurrent", func(t *testing.T, s state.Store) { testLeasesRace(t, s, s) }},
		{"Concurrent", testConcurrent},
		{"ContextCancelled", testContextCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// RunShared checks that two handles on one database — two replicas — share their
// state and never both win a lease. a and b must be open on the same, empty database.
func RunShared(t *testing.T, a, b state.Store) {
	t.Run("Leases", func(t *testing.T) { testLeasesRace(t, a, b) })
	t.Run("SharedState", func(t *testing.T) {
		ctx := context.Background()
		must(t, a.EngageKillSwitch(ctx, state.KillSwitch{Reason: "incident", EngagedAt: t0}))
		got, err := b.KillSwitchesFor(ctx, "g", "act_1")
		must(t, err)
		if len(got) != 1 || got[0].Reason != "incident" {
			t.Fatalf("kill switch engaged through a, seen through b: %+v", got)
		}
		ids, err := b.RecordIntents(ctx, []state.Intent{intent("act_1", "o1", 6000)})
		must(t, err)
		open, err := a.UnfinishedIntents(ctx, "act_1")
		must(t, err)
		if len(open) != 1 || open[0].ID != ids[0] {
			t.Fatalf("intent recorded through b, unfinished through a: %+v", open)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testPing(t *testing.T, s state.Store) {
	must(t, s.Ping(ctxT(t)))
}

// record returns a complete audit record, every field set.
func record(at time.Time, rule, account, object, result string) state.AuditRecord {
	return state.AuditRecord{
		Time:       at,
		RunID:      "run-" + at.Format("1504"),
		Group:      "stop-loss",
		Rule:       rule,
		AccountID:  account,
		Level:      "adset",
		ObjectID:   object,
		ObjectName: "name of " + object,
		Kind:       "change_budget",
		Field:      state.FieldDailyBudget,
		Before:     state.Amount(5000),
		After:      state.Amount(6000),
		Result:     result,
		CappedBy:   "max",
		Error:      "",
		Labels:     map[string]string{"owner": "growth"},
		Values:     map[string]state.Scalar{"spend": state.Number(60.5), "cpa": state.Null()},
	}
}

// sameAudit compares records, times by instant.
func sameAudit(t *testing.T, got, want state.AuditRecord) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("record %d: time %v, want %v", want.ID, got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if len(want.Labels) == 0 && len(got.Labels) == 0 {
		got.Labels, want.Labels = nil, nil
	}
	if len(want.Values) == 0 && len(got.Values) == 0 {
		got.Values, want.Values = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record round trip:\n got %+v\nwant %+v", got, want)
	}
}

func testAuditRoundTrip(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	full := record(t0, "r1", "act_1", "o1", state.ResultApplied)
	full.Values = map[string]state.Scalar{
		"spend":            state.Number(60.5),
		"purchases":        state.Number(0),
		"impressions":      state.Number(3000),
		"cpa":              state.Null(),
		"nan":              state.Number(math.NaN()), // the engine's missing value
		"name":             state.Text("UGC video"),
		"empty":            state.Text(""),
		"effective_status": state.Text("ACTIVE"),
	}
	status := record(t0.Add(time.Second), "r2", "act_1", "o2", state.ResultDryRun)
	status.Kind, status.Field = "pause", state.FieldStatus
	status.Before, status.After = state.Status("ACTIVE"), state.Status("PAUSED")
	status.DryRun = true
	notify := record(t0.Add(2*time.Second), "r3", "act_1", "o3", state.ResultFailed)
	notify.Kind, notify.Field, notify.CappedBy = "notify", "", ""
	notify.Before, notify.After = state.Value{}, state.Value{}
	notify.Error = "amount is missing"
	notify.Labels, notify.Values = nil, nil

	ids, err := s.AppendAudit(ctx, full, status, notify)
	must(t, err)
	if len(ids) != 3 || ids[0] == 0 || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("ids = %v, want three distinct", ids)
	}
	for i, want := range []state.AuditRecord{full, status, notify} {
		want.ID = ids[i]
		if i == 0 {
			want.Values["nan"] = state.Null() // NaN is stored as null
		}
		got, err := s.GetAudit(ctx, ids[i])
		must(t, err)
		sameAudit(t, got, want)
	}
	if _, err := s.GetAudit(ctx, ids[2]+1000); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("GetAudit(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.AppendAudit(ctx, state.AuditRecord{Result: state.ResultApplied}); err == nil {
		t.Error("AppendAudit without a time succeeded")
	}
	if ids, err := s.AppendAudit(ctx); err != nil || len(ids) != 0 {
		t.Errorf("AppendAudit() = %v, %v; want nothing", ids, err)
	}
}

func testAuditQuery(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	var recs []state.AuditRecord
	for i := range 30 {
		r := record(t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("r%d", i%3), fmt.Sprintf("act_%d", i%2), fmt.Sprintf("o%d", i%5), state.ResultApplied)
		if i%4 == 0 {
			r.Result = state.ResultSkippedCooldown
		}
		r.DryRun = i%10 == 9
		recs = append(recs, r)
	}
	// Two records at the same instant: newest first falls back to the id.
	same := record(t0.Add(29*time.Minute), "r2", "act_1", "o4", state.ResultApplied)
	recs = append(recs, same)
	// Appended out of time order: ordering is by time, not by id.
	recs = append(recs, record(t0.Add(-time.Hour), "r0", "act_0", "o0", state.ResultApplied))
	ids, err := s.AppendAudit(ctx, recs...)
	must(t, err)
	for i := range recs {
		recs[i].ID = ids[i]
	}

	yes := true
	cases := []struct {
		name string
		q    state.AuditQuery
		keep func(r state.AuditRecord) bool
	}{
		{"all", state.AuditQuery{Limit: 1000}, func(state.AuditRecord) bool { return true }},
		{"rule", state.AuditQuery{Rule: "r1", Limit: 1000}, func(r state.AuditRecord) bool { return r.Rule == "r1" }},
		{"object", state.AuditQuery{ObjectID: "o3", Limit: 1000}, func(r state.AuditRecord) bool { return r.ObjectID == "o3" }},
		{"account", state.AuditQuery{AccountID: "act_0", Limit: 1000}, func(r state.AuditRecord) bool { return r.AccountID == "act_0" }},
		{"result", state.AuditQuery{Result: state.ResultSkippedCooldown, Limit: 1000}, func(r state.AuditRecord) bool { return r.Result == state.ResultSkippedCooldown }},
		{"dry run", state.AuditQuery{DryRun: &yes, Limit: 1000}, func(r state.AuditRecord) bool { return r.DryRun }},
		{"since", state.AuditQuery{Since: t0.Add(20 * time.Minute), Limit: 1000}, func(r state.AuditRecord) bool { return !r.Time.Before(t0.Add(20 * time.Minute)) }},
		{"until", state.AuditQuery{Until: t0.Add(5 * time.Minute), Limit: 1000}, func(r state.AuditRecord) bool { return r.Time.Before(t0.Add(5 * time.Minute)) }},
		{"combined", state.AuditQuery{Rule: "r0", AccountID: "act_1", Since: t0.Add(10 * time.Minute), Limit: 1000},
			func(r state.AuditRecord) bool {
				return r.Rule == "r0" && r.AccountID == "act_1" && !r.Time.Before(t0.Add(10*time.Minute))
			}},
		{"limit", state.AuditQuery{Limit: 3}, func(state.AuditRecord) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []state.AuditRecord
			for _, r := range recs {
				if tc.keep(r) {
					want = append(want, r)
				}
			}
			sort.SliceStable(want, func(i, j int) bool {
				if !want[i].Time.Equal(want[j].Time) {
					return want[i].Time.After(want[j].Time)
				}
				return want[i].ID > want[j].ID
			})
			if tc.q.Limit < len(want) {
				want = want[:tc.q.Limit]
			}
			got, err := s.QueryAudit(ctx, tc.q)
			must(t, err)
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID {
					t.Fatalf("record %d: id %d, want %d (newest first)", i, got[i].ID, want[i].ID)
				}
			}
			if len(got) > 0 {
				sameAudit(t, got[0], want[0])
			}
		})
	}

	t.Run("default limit", func(t *testing.T) {
		more := make([]state.AuditRecord, state.DefaultAuditLimit+10)
		for i := range more {
			more[i] = record(t0.Add(time.Duration(i)*time.Second), "bulk", "act_9", "o", state.ResultApplied)
		}
		_, err := s.AppendAudit(ctx, more...)
		must(t, err)
		got, err := s.QueryAudit(ctx, state.AuditQuery{Rule: "bulk"})
		must(t, err)
		if len(got) != state.DefaultAuditLimit {
			t.Errorf("got %d records, want DefaultAuditLimit %d", len(got), state.DefaultAuditLimit)
		}
	})
}

func testAuditLast(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	skip := state.ResultSkippedCooldown
	var recs []state.AuditRecord
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Hour)
		recs = append(recs,
			record(at, "r1", "act_1", "o1", skip),
			record(at.Add(time.Minute), "r1", "act_1", "o2", skip),
			record(at, "r2", "act_1", "o1", skip),                // another rule
			record(at, "r1", "act_1", "o1", state.ResultApplied), // another result
		)
	}
	dry := record(t0.Add(10*time.Hour), "r1", "act_1", "o1", skip) // dry run, newer
	dry.DryRun = true
	// Inserted last but older: the newest by time wins, not the last inserted.
	recs = append(recs, dry, record(t0.Add(-time.Hour), "r1", "act_1", "o2", skip))
	_, err := s.AppendAudit(ctx, recs...)
	must(t, err)

	key := state.AuditKey{Group: "stop-loss", Rule: "r1", Result: skip}
	got, err := s.LastAudit(ctx, key, []string{"o1", "o2", "o3"})
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("LastAudit = %d objects, want 2: %+v", len(got), got)
	}
	if r := got["o1"]; !r.Time.Equal(t0.Add(3*time.Hour)) || r.Result != skip || r.Rule != "r1" || r.DryRun {
		t.Errorf("o1: %+v, want the live skip of 13:00", r)
	}
	if r := got["o2"]; !r.Time.Equal(t0.Add(3*time.Hour + time.Minute)) {
		t.Errorf("o2: time %v, want 13:01", r.Time)
	}
	key.DryRun = true
	got, err = s.LastAudit(ctx, key, []string{"o1", "o2"})
	must(t, err)
	if len(got) != 1 || !got["o1"].Time.Equal(t0.Add(10*time.Hour)) {
		t.Errorf("dry-run LastAudit = %+v, want only the dry o1 record", got)
	}
	got, err = s.LastAudit(ctx, key, nil)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("LastAudit(no objects) = %v, want empty", got)
	}
}

func testAuditRetention(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	var recs []state.AuditRecord
	for d := range 10 {
		recs = append(recs, record(t0.AddDate(0, 0, -d), "r1", "act_1", "o1", state.ResultApplied))
	}
	ids, err := s.AppendAudit(ctx, recs...)
	must(t, err)
	n, err := s.PruneAudit(ctx, t0.AddDate(0, 0, -4)) // keeps days 0..4
	must(t, err)
	if n != 5 {
		t.Errorf("PruneAudit deleted %d, want 5", n)
	}
	got, err := s.QueryAudit(ctx, state.AuditQuery{Limit: 100})
	must(t, err)
	if len(got) != 5 || !got[4].Time.Equal(t0.AddDate(0, 0, -4)) {
		t.Errorf("after retention: %d records, oldest %v", len(got), got[len(got)-1].Time)
	}
	if _, err := s.GetAudit(ctx, ids[9]); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("pruned record still found: %v", err)
	}
	// Ids are never reused, so `rulesd undo` of a pruned id cannot reach a new record.
	maxID := ids[0]
	for _, id := range ids {
		maxID = max(maxID, id)
	}
	_, err = s.PruneAudit(ctx, t0.Add(time.Hour))
	must(t, err)
	newIDs, err := s.AppendAudit(ctx, record(t0, "r1", "act_1", "o1", state.ResultApplied))
	must(t, err)
	if newIDs[0] <= maxID {
		t.Errorf("id %d reused after retention (max before %d)", newIDs[0], maxID)
	}
}

func testPending(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	a := state.RuleScope{Group: "g", Rule: "r", AccountID: "act_1"}
	b := state.RuleScope{Group: "g", Rule: "r", AccountID: "act_2"}
	other := state.RuleScope{Group: "g", Rule: "other", AccountID: "act_1"}
	must(t, s.PutPending(ctx, a, []state.Pending{
		{ObjectID: "o1", Since: t0, LastEval: t0},
		{ObjectID: "o2", Since: t0, LastEval: t0.Add(30 * time.Minute)},
		{ObjectID: "o3", Since: t0.Add(time.Hour), LastEval: t0.Add(time.Hour)},
	}))
	must(t, s.PutPending(ctx, b, []state.Pending{{ObjectID: "o1", Since: t0, LastEval: t0}}))
	must(t, s.PutPending(ctx, other, []state.Pending{{ObjectID: "o1", Since: t0, LastEval: t0}}))

	got, err := s.GetPending(ctx, a, []string{"o1", "o2", "o9"})
	must(t, err)
	if len(got) != 2 || !got["o2"].Since.Equal(t0) || !got["o2"].LastEval.Equal(t0.Add(30*time.Minute)) || got["o2"].ObjectID != "o2" {
		t.Fatalf("GetPending = %+v", got)
	}
	// Upsert: a later evaluation bumps LastEval and keeps the Since the engine passes.
	must(t, s.PutPending(ctx, a, []state.Pending{{ObjectID: "o1", Since: t0, LastEval: t0.Add(time.Hour)}}))
	got, err = s.GetPending(ctx, a, []string{"o1"})
	must(t, err)
	if p := got["o1"]; !p.Since.Equal(t0) || !p.LastEval.Equal(t0.Add(time.Hour)) {
		t.Errorf("after upsert: %+v", p)
	}
	list, err := s.ListPending(ctx, a)
	must(t, err)
	if len(list) != 3 {
		t.Errorf("ListPending = %d, want 3", len(list))
	}
	if got, err := s.GetPending(ctx, a, nil); err != nil || len(got) != 0 {
		t.Errorf("GetPending(no objects) = %v, %v; want empty", got, err)
	}

	// Reset of some objects leaves the rest, and other scopes.
	must(t, s.DeletePending(ctx, a, []string{"o3"}))
	must(t, s.DeletePending(ctx, a, nil))
	list, err = s.ListPending(ctx, a)
	must(t, err)
	if len(list) != 2 {
		t.Errorf("after DeletePending: %d, want 2", len(list))
	}

	// Lapse: only LastEval before the cutoff, only in scope.
	n, err := s.LapsePending(ctx, a, t0.Add(45*time.Minute))
	must(t, err)
	if n != 1 {
		t.Errorf("LapsePending = %d, want 1 (o2)", n)
	}
	if got, _ := s.GetPending(ctx, a, []string{"o1", "o2"}); len(got) != 1 || got["o1"].ObjectID != "o1" {
		t.Errorf("after lapse: %+v, want o1 only", got)
	}
	if got, _ := s.GetPending(ctx, b, []string{"o1"}); len(got) != 1 {
		t.Errorf("lapse reached another account: %+v", got)
	}

	// A reload changing the rule resets it in every account, not other rules.
	must(t, s.ResetPending(ctx, "g", "r"))
	for _, sc := range []state.RuleScope{a, b} {
		if list, _ := s.ListPending(ctx, sc); len(list) != 0 {
			t.Errorf("after reset, %+v still pending: %+v", sc, list)
		}
	}
	if list, _ := s.ListPending(ctx, other); len(list) != 1 {
		t.Errorf("reset reached another rule: %+v", list)
	}
	n, err = s.PrunePending(ctx, t0.Add(time.Minute))
	must(t, err)
	if n != 1 {
		t.Errorf("PrunePending = %d, want 1", n)
	}
	if err := s.PutPending(ctx, a, []state.Pending{{ObjectID: "o1"}}); err == nil {
		t.Error("PutPending without times succeeded")
	}
}

func testPendingBulk(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	scope := state.RuleScope{Group: "g", Rule: "r", AccountID: "act_1"}
	const n = 2000
	states := make([]state.Pending, n)
	ids := make([]string, 0, n+1)
	for i := range states {
		id := fmt.Sprintf("2384%08d", i)
		states[i] = state.Pending{ObjectID: id, Since: t0.Add(time.Duration(i) * time.Second), LastEval: t0.Add(time.Hour)}
		ids = append(ids, id)
	}
	must(t, s.PutPending(ctx, scope, states))
	got, err := s.GetPending(ctx, scope, append(ids, "unknown"))
	must(t, err)
	if len(got) != n {
		t.Fatalf("GetPending = %d objects, want %d", len(got), n)
	}
	if p := got[ids[1234]]; !p.Since.Equal(t0.Add(1234 * time.Second)) {
		t.Errorf("object 1234: %+v", p)
	}
	must(t, s.DeletePending(ctx, scope, ids[:1500]))
	got, err = s.GetPending(ctx, scope, ids)
	must(t, err)
	if len(got) != 500 {
		t.Errorf("after bulk delete: %d, want 500", len(got))
	}
}

func testCooldowns(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	must(t, s.SetCooldowns(ctx, []state.Cooldown{
		{Group: "g", Rule: "r", ObjectID: "o1", Until: t0.Add(time.Hour)},
		{Group: "g", Rule: "r", ObjectID: "o2", Until: t0.Add(-time.Minute)}, // over
		{Group: "g", Rule: "r", ObjectID: "o3", DryRun: true, Until: t0.Add(24 * time.Hour)},
		{Group: "g", Rule: "r2", ObjectID: "o4", Until: t0.Add(time.Hour)},
		{Group: "g2", Rule: "r", ObjectID: "o4", Until: t0.Add(time.Hour)},
	}))
	ids := []string{"o1", "o2", "o3", "o4"}
	live, err := s.ActiveCooldowns(ctx, "g", "r", false, ids, t0)
	must(t, err)
	if len(live) != 1 || !live["o1"].Equal(t0.Add(time.Hour)) {
		t.Errorf("live cooldowns = %v, want o1 until 11:00", live)
	}
	dry, err := s.ActiveCooldowns(ctx, "g", "r", true, ids, t0)
	must(t, err)
	if len(dry) != 1 || !dry["o3"].Equal(t0.Add(24*time.Hour)) {
		t.Errorf("dry-run cooldowns = %v, want o3 only", dry)
	}
	// Until is exclusive: at the end of the cooldown the rule may act again.
	if got, _ := s.ActiveCooldowns(ctx, "g", "r", false, ids, t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("cooldown still active at its end: %v", got)
	}
	// A new cooldown replaces the old, even a shorter one.
	must(t, s.SetCooldowns(ctx, []state.Cooldown{{Group: "g", Rule: "r", ObjectID: "o1", Until: t0.Add(time.Minute)}}))
	live, err = s.ActiveCooldowns(ctx, "g", "r", false, ids, t0)
	must(t, err)
	if !live["o1"].Equal(t0.Add(time.Minute)) {
		t.Errorf("after replace: %v", live)
	}
	n, err := s.PruneCooldowns(ctx, t0)
	must(t, err)
	if n != 1 {
		t.Errorf("PruneCooldowns = %d, want 1 (o2)", n)
	}
	if got, err := s.ActiveCooldowns(ctx, "g", "r", false, nil, t0); err != nil || len(got) != 0 {
		t.Errorf("ActiveCooldowns(no objects) = %v, %v", got, err)
	}
}

// change returns an applied budget change of object by rule at at.
func change(at time.Time, rule, object, field string, before, after state.Value) state.Change {
	return state.Change{Time: at, RunID: "run", Group: "g", Rule: rule, AccountID: "act_1",
		ObjectID: object, Field: field, Before: before, After: after}
}

// outcome wraps c in an outcome with a matching audit record.
func outcome(c state.Change) state.Outcome {
	r := record(c.Time, c.Rule, c.AccountID, c.ObjectID, state.ResultApplied)
	r.Group, r.Field, r.Before, r.After, r.DryRun = c.Group, c.Field, c.Before, c.After, c.DryRun
	if c.DryRun {
		r.Result = state.ResultDryRun
	}
	return state.Outcome{Audit: r, Change: &c}
}

func testHistory(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	db := state.FieldDailyBudget
	changes := []state.Change{
		change(t0, "up", "o1", db, state.Amount(5000), state.Amount(6000)),
		change(t0.Add(10*time.Minute), "down", "o1", db, state.Amount(6000), state.Amount(5100)),
		change(t0.Add(20*time.Minute), "pause", "o1", state.FieldStatus, state.Status("ACTIVE"), state.Status("PAUSED")),
		change(t0.Add(5*time.Minute), "up", "o2", db, state.Amount(1000), state.Amount(1200)),
	}
	other := change(t0, "up", "o9", db, state.Amount(1), state.Amount(2))
	other.AccountID = "act_2"
	var outs []state.Outcome
	for _, c := range append(changes, other) {
		outs = append(outs, outcome(c))
	}
	auditIDs, err := s.RecordOutcomes(ctx, outs)
	must(t, err)

	got, err := s.RecentChanges(ctx, false, "act_1", t0.Add(5*time.Minute))
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("RecentChanges = %d, want 3", len(got))
	}
	wantOrder := []string{"o2", "o1", "o1"} // oldest first
	for i, c := range got {
		if c.ObjectID != wantOrder[i] || c.ID == 0 || c.AuditID == 0 {
			t.Errorf("change %d: %+v", i, c)
		}
	}
	if c := got[1]; c.Rule != "down" || c.Before != state.Amount(6000) || c.After != state.Amount(5100) ||
		!c.Time.Equal(t0.Add(10*time.Minute)) || c.AuditID != auditIDs[1] || c.Group != "g" || c.RunID != "run" || c.AccountID != "act_1" {
		t.Errorf("change round trip: %+v (audit id want %d)", c, auditIDs[1])
	}
	h := state.ChangesByObject(got)["o1"]
	if n := state.CountChanges(h, t0, db); n != 1 {
		t.Errorf("CountChanges over the stored history = %d, want 1", n)
	}

	lw, err := s.LastWrites(ctx, false, []string{"o1", "o2", "o9", "o404"})
	must(t, err)
	byKey := map[string]state.LastWrite{}
	for _, w := range lw {
		byKey[w.ObjectID+"/"+w.Field] = w
	}
	if len(lw) != 4 {
		t.Fatalf("LastWrites = %+v, want 4 (o1 budget, o1 status, o2, o9)", lw)
	}
	if w := byKey["o1/"+db]; w.Value != state.Amount(5100) || w.Rule != "down" || w.AuditID != auditIDs[1] ||
		!w.Time.Equal(t0.Add(10*time.Minute)) || w.AccountID != "act_1" || w.Group != "g" {
		t.Errorf("o1 budget last write = %+v", w)
	}
	if w := byKey["o1/status"]; w.Value != state.Status("PAUSED") {
		t.Errorf("o1 status last write = %+v", w)
	}
	// A reconciled intent completing late with an older change does not hide the newer.
	_, err = s.RecordOutcomes(ctx, []state.Outcome{outcome(change(t0.Add(time.Minute), "late", "o1", db, state.Amount(5000), state.Amount(7000)))})
	must(t, err)
	lw, err = s.LastWrites(ctx, false, []string{"o1"})
	must(t, err)
	for _, w := range lw {
		if w.Field == db && w.Value != state.Amount(5100) {
			t.Errorf("an older change replaced the last write: %+v", w)
		}
	}

	// Retention of the audit log keeps the history but forgets the audit id.
	_, err = s.PruneAudit(ctx, t0.Add(time.Hour))
	must(t, err)
	lw, err = s.LastWrites(ctx, false, []string{"o2"})
	must(t, err)
	if len(lw) != 1 || lw[0].AuditID != 0 || lw[0].Value != state.Amount(1200) {
		t.Errorf("after audit retention: %+v, want the write without its audit id", lw)
	}
	n, err := s.PruneHistory(ctx, t0.Add(10*time.Minute))
	must(t, err)
	if n != 4 {
		t.Errorf("PruneHistory = %d, want 4 changes", n)
	}
	got, err = s.RecentChanges(ctx, false, "act_1", time.Time{})
	must(t, err)
	if len(got) != 2 {
		t.Errorf("after PruneHistory: %d changes, want 2", len(got))
	}
	if lw, _ := s.LastWrites(ctx, false, []string{"o2"}); len(lw) != 1 {
		t.Errorf("PruneHistory removed a last write: %+v", lw)
	}
}

// testHistoryDryRunApart checks SPEC 4.7: nothing a dry run records is seen by a live
// run.
func testHistoryDryRunApart(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	db := state.FieldDailyBudget
	live := change(t0, "r", "o1", db, state.Amount(5000), state.Amount(6000))
	dry := change(t0.Add(time.Minute), "r", "o1", db, state.Amount(6000), state.Amount(9000))
	dry.DryRun = true
	_, err := s.RecordOutcomes(ctx, []state.Outcome{outcome(live), outcome(dry)})
	must(t, err)
	must(t, s.SetCooldowns(ctx, []state.Cooldown{{Group: "g", Rule: "r", ObjectID: "o1", DryRun: true, Until: t0.Add(time.Hour)}}))
	must(t, s.SetHolds(ctx, []state.Hold{{ObjectID: "o1", Field: db, Reason: state.HoldManual, DryRun: true, Until: t0.Add(time.Hour)}}))

	for _, dryRun := range []bool{false, true} {
		want := live
		if dryRun {
			want = dry
		}
		ch, err := s.RecentChanges(ctx, dryRun, "act_1", time.Time{})
		must(t, err)
		if len(ch) != 1 || ch[0].After != want.After || ch[0].DryRun != dryRun {
			t.Errorf("dry=%v: changes %+v", dryRun, ch)
		}
		lw, err := s.LastWrites(ctx, dryRun, []string{"o1"})
		must(t, err)
		if len(lw) != 1 || lw[0].Value != want.After || lw[0].DryRun != dryRun {
			t.Errorf("dry=%v: last writes %+v", dryRun, lw)
		}
		cd, err := s.ActiveCooldowns(ctx, "g", "r", dryRun, []string{"o1"}, t0)
		must(t, err)
		holds, err := s.ActiveHolds(ctx, dryRun, []string{"o1"}, t0)
		must(t, err)
		if wantN := map[bool]int{false: 0, true: 1}[dryRun]; len(cd) != wantN || len(holds) != wantN {
			t.Errorf("dry=%v: %d cooldowns, %d holds; want %d each", dryRun, len(cd), len(holds), wantN)
		}
	}
}

func testHolds(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	must(t, s.SetHolds(ctx, []state.Hold{
		{ObjectID: "o1", Field: state.FieldStatus, Reason: state.HoldManual, Until: t0.Add(24 * time.Hour)},
		{ObjectID: "o1", Field: state.FieldStatus, Reason: state.HoldFlapping, Until: t0.Add(12 * time.Hour)},
		{ObjectID: "o1", Field: state.FieldDailyBudget, Reason: state.HoldLocked, Until: t0.Add(-time.Minute)},
		{ObjectID: "o2", Field: state.FieldBidAmount, Reason: state.HoldManual, Until: t0.Add(time.Hour)},
	}))
	got, err := s.ActiveHolds(ctx, false, []string{"o1", "o3"}, t0)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("ActiveHolds = %+v, want manual and flapping on o1", got)
	}
	reasons := map[string]time.Time{}
	for _, h := range got {
		if h.ObjectID != "o1" || h.Field != state.FieldStatus || h.DryRun {
			t.Errorf("unexpected hold %+v", h)
		}
		reasons[h.Reason] = h.Until
	}
	if !reasons[state.HoldManual].Equal(t0.Add(24*time.Hour)) || !reasons[state.HoldFlapping].Equal(t0.Add(12*time.Hour)) {
		t.Errorf("holds = %v", reasons)
	}
	// Replacing a hold of one reason leaves the other.
	must(t, s.SetHolds(ctx, []state.Hold{{ObjectID: "o1", Field: state.FieldStatus, Reason: state.HoldManual, Until: t0.Add(time.Hour)}}))
	got, err = s.ActiveHolds(ctx, false, []string{"o1"}, t0.Add(2*time.Hour))
	must(t, err)
	if len(got) != 1 || got[0].Reason != state.HoldFlapping {
		t.Errorf("after replace, at 12:00: %+v, want flapping only", got)
	}
	n, err := s.PruneHistory(ctx, t0)
	must(t, err)
	if n != 1 {
		t.Errorf("PruneHistory = %d, want 1 ended hold", n)
	}
	if err := s.SetHolds(ctx, []state.Hold{{ObjectID: "o1", Field: state.FieldStatus, Until: t0}}); err == nil {
		t.Error("SetHolds without a reason succeeded")
	}
}

func intent(account, object string, target int64) state.Intent {
	return state.Intent{Created: t0, RunID: "run-1", Group: "g", Rule: "r", AccountID: account, Level: "adset",
		ObjectID: object, ObjectName: "name " + object, Kind: "change_budget", Field: state.FieldDailyBudget,
		Before: state.Amount(5000), Target: state.Amount(target)}
}

func testIntents(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	pause := intent("act_2", "o3", 0)
	pause.Kind, pause.Field, pause.Before, pause.Target = "pause", state.FieldStatus, state.Status("ACTIVE"), state.Status("PAUSED")
	in := []state.Intent{intent("act_1", "o1", 6000), intent("act_1", "o2", 7000), pause}
	ids, err := s.RecordIntents(ctx, in)
	must(t, err)
	if len(ids) != 3 || ids[0] >= ids[1] || ids[1] >= ids[2] {
		t.Fatalf("ids = %v, want increasing", ids)
	}
	all, err := s.UnfinishedIntents(ctx, "")
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("UnfinishedIntents = %d, want 3", len(all))
	}
	for i := range in {
		want := in[i]
		want.ID = ids[i]
		got := all[i]
		if !got.Created.Equal(want.Created) {
			t.Errorf("intent %d created %v", i, got.Created)
		}
		got.Created, want.Created = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("intent round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	act1, err := s.UnfinishedIntents(ctx, "act_1")
	must(t, err)
	if len(act1) != 2 || act1[0].ObjectID != "o1" || act1[1].ObjectID != "o2" {
		t.Errorf("UnfinishedIntents(act_1) = %+v", act1)
	}

	// Complete o1 as applied (with its change) and o3 as superseded (without).
	c := change(t0.Add(time.Second), "r", "o1", state.FieldDailyBudget, state.Amount(5000), state.Amount(6000))
	applied := outcome(c)
	applied.IntentID = ids[0]
	superseded := state.Outcome{IntentID: ids[2], Audit: record(t0.Add(time.Second), "r", "act_2", "o3", state.ResultFailed)}
	superseded.Audit.Error = "superseded"
	auditIDs, err := s.RecordOutcomes(ctx, []state.Outcome{applied, superseded})
	must(t, err)
	all, err = s.UnfinishedIntents(ctx, "")
	must(t, err)
	if len(all) != 1 || all[0].ID != ids[1] {
		t.Errorf("after completion: %+v, want o2 only", all)
	}
	if r, err := s.GetAudit(ctx, auditIDs[1]); err != nil || r.Error != "superseded" {
		t.Errorf("superseded audit: %+v, %v", r, err)
	}

	// Completing twice stores nothing, not even the other outcomes of the batch.
	before, err := s.QueryAudit(ctx, state.AuditQuery{Limit: 1000})
	must(t, err)
	second := outcome(change(t0.Add(2*time.Second), "r", "o2", state.FieldDailyBudget, state.Amount(5000), state.Amount(7000)))
	second.IntentID = ids[1]
	again := applied
	if _, err := s.RecordOutcomes(ctx, []state.Outcome{second, again}); !errors.Is(err, state.ErrIntentCompleted) {
		t.Fatalf("completing an intent twice: error %v, want ErrIntentCompleted", err)
	}
	unknown := applied
	unknown.IntentID = ids[2] + 1000
	if _, err := s.RecordOutcomes(ctx, []state.Outcome{unknown}); !errors.Is(err, state.ErrIntentCompleted) {
		t.Errorf("completing an unknown intent: error %v, want ErrIntentCompleted", err)
	}
	after, err := s.QueryAudit(ctx, state.AuditQuery{Limit: 1000})
	must(t, err)
	if len(after) != len(before) {
		t.Errorf("a failed batch appended %d audit records", len(after)-len(before))
	}
	if ch, _ := s.RecentChanges(ctx, false, "act_1", time.Time{}); len(ch) != 1 {
		t.Errorf("a failed batch recorded changes: %+v", ch)
	}
	if open, _ := s.UnfinishedIntents(ctx, "act_1"); len(open) != 1 {
		t.Errorf("a failed batch completed an intent: %+v", open)
	}

	bad := intent("act_1", "o5", 0)
	bad.Target = state.Value{}
	if _, err := s.RecordIntents(ctx, []state.Intent{bad}); err == nil {
		t.Error("RecordIntents with an absent target succeeded")
	}
	// Retention removes completed intents only.
	n, err := s.PruneIntents(ctx, t0.Add(time.Hour))
	must(t, err)
	if n != 2 {
		t.Errorf("PruneIntents = %d, want the 2 completed", n)
	}
	if open, _ := s.UnfinishedIntents(ctx, ""); len(open) != 1 {
		t.Errorf("PruneIntents removed an unfinished intent: %+v", open)
	}
}

func testKillSwitch(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	engaged := func(group, account string) int {
		t.Helper()
		ks, err := s.KillSwitchesFor(ctx, group, account)
		must(t, err)
		return len(ks)
	}
	if engaged("g", "act_1") != 0 {
		t.Fatal("a new store has an engaged kill switch")
	}
	must(t, s.EngageKillSwitch(ctx, state.KillSwitch{Scope: state.KillScope{AccountID: "act_1"}, Reason: "feed broken", By: "ops", EngagedAt: t0}))
	must(t, s.EngageKillSwitch(ctx, state.KillSwitch{Scope: state.KillScope{Group: "scale"}, Reason: "review", EngagedAt: t0}))
	must(t, s.EngageKillSwitch(ctx, state.KillSwitch{Scope: state.KillScope{Group: "night", AccountID: "act_2"}, EngagedAt: t0}))
	for _, tc := range []struct {
		group, account string
		want           int
	}{
		{"g", "act_1", 1},     // account
		{"g", "act_2", 0},     // nothing
		{"scale", "act_2", 1}, // group
		{"scale", "act_1", 2}, // group and account
		{"night", "act_2", 1}, // group in account
		{"night", "act_3", 0},
	} {
		if got := engaged(tc.group, tc.account); got != tc.want {
			t.Errorf("KillSwitchesFor(%s, %s) = %d, want %d", tc.group, tc.account, got, tc.want)
		}
	}
	must(t, s.EngageKillSwitch(ctx, state.KillSwitch{Reason: "all stop", By: "ops", EngagedAt: t0.Add(time.Minute)}))
	if engaged("g", "act_2") != 1 || engaged("any", "act_9") != 1 {
		t.Error("the global switch does not stop every group and account")
	}
	list, err := s.ListKillSwitches(ctx)
	must(t, err)
	if len(list) != 4 {
		t.Fatalf("ListKillSwitches = %+v, want 4", list)
	}
	if k := list[0]; k.Scope != (state.KillScope{}) || k.Reason != "all stop" || k.By != "ops" || !k.EngagedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("global switch = %+v", k)
	}
	// Engaging again replaces the reason.
	must(t, s.EngageKillSwitch(ctx, state.KillSwitch{Reason: "still stopped", EngagedAt: t0.Add(2 * time.Minute)}))
	list, _ = s.ListKillSwitches(ctx)
	if len(list) != 4 || list[0].Reason != "still stopped" {
		t.Errorf("after re-engage: %+v", list)
	}
	// Releasing all releases exactly the global switch.
	ok, err := s.ReleaseKillSwitch(ctx, state.KillScope{})
	must(t, err)
	if !ok || engaged("g", "act_2") != 0 || engaged("g", "act_1") != 1 {
		t.Errorf("release all: ok=%v, and the account switch must stay", ok)
	}
	ok, err = s.ReleaseKillSwitch(ctx, state.KillScope{})
	must(t, err)
	if ok {
		t.Error("releasing a released switch reported it engaged")
	}
	for _, sc := range []state.KillScope{{AccountID: "act_1"}, {Group: "scale"}, {Group: "night", AccountID: "act_2"}} {
		if ok, err := s.ReleaseKillSwitch(ctx, sc); err != nil || !ok {
			t.Errorf("release %+v: %v, %v", sc, ok, err)
		}
	}
	if list, _ := s.ListKillSwitches(ctx); len(list) != 0 {
		t.Errorf("after releasing everything: %+v", list)
	}
}

func testRuns(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	start := state.RunRecord{Group: "g", AccountID: "act_1", RunID: "run-1", Scheduled: t0, Started: t0.Add(time.Second), Result: "running"}
	must(t, s.RecordRun(ctx, start))
	end := start
	end.Ended, end.Result, end.Error = t0.Add(5*time.Second), "partial", "1 failed action"
	end.Counts = map[string]int64{"objects": 2000, "matches": 12, "applied": 11, "failed": 1}
	must(t, s.RecordRun(ctx, end))
	must(t, s.RecordRun(ctx, state.RunRecord{Group: "a", AccountID: "act_2", RunID: "run-2", Scheduled: t0, Started: t0, Result: "running"}))
	runs, err := s.LastRuns(ctx)
	must(t, err)
	if len(runs) != 2 || runs[0].Group != "a" || runs[1].Group != "g" {
		t.Fatalf("LastRuns = %+v, want a then g", runs)
	}
	got := runs[1]
	if !got.Ended.Equal(end.Ended) || !got.Started.Equal(end.Started) || !got.Scheduled.Equal(t0) {
		t.Errorf("times: %+v", got)
	}
	got.Scheduled, got.Started, got.Ended = end.Scheduled, end.Started, end.Ended
	if !reflect.DeepEqual(got, end) {
		t.Errorf("run round trip:\n got %+v\nwant %+v", got, end)
	}
	if !runs[0].Ended.IsZero() {
		t.Errorf("a running run has an end: %v", runs[0].Ended)
	}
}

func testLeases(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	try := func(group, account string, tick time.Time, owner string, want bool) {
		t.Helper()
		got, err := s.TryAcquire(ctx, group, account, tick, owner)
		must(t, err)
		if got != want {
			t.Errorf("TryAcquire(%s, %s, %s, %s) = %v, want %v", group, account, tick.Format("15:04"), owner, got, want)
		}
	}
	try("g", "act_1", t0, "a", true)
	try("g", "act_1", t0, "b", false)                     // same tick, other replica
	try("g", "act_1", t0, "a", true)                      // the holder asking again
	try("g", "act_2", t0, "b", true)                      // another account
	try("h", "act_1", t0, "b", true)                      // another group
	try("g", "act_1", t0.Add(30*time.Minute), "b", true)  // next tick: a died, b takes over
	try("g", "act_1", t0, "a", false)                     // a late replica cannot go back
	try("g", "act_1", t0.Add(30*time.Minute), "a", false) // nor share the new tick
	try("g", "act_1", t0.Add(15*time.Minute), "c", false) // nor take an older one
	try("g", "act_1", t0.Add(time.Hour), "a", true)
	if _, err := s.TryAcquire(ctx, "g", "act_1", t0.Add(2*time.Hour), ""); err == nil {
		t.Error("TryAcquire without an owner succeeded")
	}
}

// testLeasesRace has replicas race for the same ticks, half through a and half
// through b, and checks each tick has exactly one winner.
func testLeasesRace(t *testing.T, a, b state.Store) {
	ctx := ctxT(t)
	const replicas, ticks = 6, 25
	winners := make([][]string, ticks)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for r := range replicas {
		s := a
		if r%2 == 1 {
			s = b
		}
		owner := fmt.Sprintf("replica-%d", r)
		wg.Go(func() {
			<-start
			for i := range ticks {
				tick := t0.Add(time.Duration(i) * time.Minute)
				for _, acct := range []string{"act_1", "act_2"} {
					ok, err := s.TryAcquire(ctx, "g", acct, tick, owner)
					if err != nil {
						t.Errorf("%s: %v", owner, err)
						return
					}
					if ok && acct == "act_1" {
						mu.Lock()
						winners[i] = append(winners[i], owner)
						mu.Unlock()
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	// Each replica tries the ticks in order, so whoever tries a tick first finds only
	// older ones claimed and wins it: exactly one winner per tick.
	for i, w := range winners {
		if len(w) != 1 {
			t.Errorf("tick %d won by %v, want exactly one replica", i, w)
		}
	}
	last, err := a.TryAcquire(ctx, "g", "act_1", t0.Add(ticks*time.Minute), "late")
	must(t, err)
	if !last {
		t.Error("a fresh tick after the race was not granted")
	}
}

// testConcurrent runs every kind of write and read at once (run it with -race).
func testConcurrent(t *testing.T, s state.Store) {
	ctx := ctxT(t)
	const workers, rounds = 8, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			scope := state.RuleScope{Group: "g", Rule: fmt.Sprintf("r%d", w), AccountID: "act_1"}
			for i := range rounds {
				at := t0.Add(time.Duration(i) * time.Minute)
				obj := fmt.Sprintf("o%d-%d", w, i)
				steps := []func() error{
					func() error {
						_, err := s.AppendAudit(ctx, record(at, scope.Rule, "act_1", obj, state.ResultSkippedCooldown))
						return err
					},
					func() error {
						return s.PutPending(ctx, scope, []state.Pending{{ObjectID: obj, Since: at, LastEval: at}})
					},
					func() error {
						_, err := s.GetPending(ctx, scope, []string{obj})
						return err
					},
					func() error {
						ids, err := s.RecordIntents(ctx, []state.Intent{intent("act_1", obj, 6000)})
						if err != nil {
							return err
						}
						o := outcome(change(at, scope.Rule, obj, state.FieldDailyBudget, state.Amount(5000), state.Amount(6000)))
						o.IntentID = ids[0]
						_, err = s.RecordOutcomes(ctx, []state.Outcome{o})
						return err
					},
					func() error {
						_, err := s.QueryAudit(ctx, state.AuditQuery{Rule: scope.Rule, Limit: 5})
						return err
					},
					func() error {
						_, err := s.KillSwitchesFor(ctx, "g", "act_1")
						return err
					},
				}
				for _, step := range steps {
					if err := step(); err != nil {
						t.Errorf("worker %d round %d: %v", w, i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	recs, err := s.QueryAudit(ctx, state.AuditQuery{Limit: 10 * workers * rounds})
	must(t, err)
	if len(recs) != 2*workers*rounds {
		t.Errorf("%d audit records, want %d", len(recs), 2*workers*rounds)
	}
	if open, _ := s.UnfinishedIntents(ctx, ""); len(open) != 0 {
		t.Errorf("%d intents left unfinished", len(open))
	}
	ch, err := s.RecentChanges(ctx, false, "act_1", time.Time{})
	must(t, err)
	if len(ch) != workers*rounds {
		t.Errorf("%d changes, want %d", len(ch), workers*rounds)
	}
}

func testContextCancelled(t *testing.T, s state.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AppendAudit(ctx, record(t0, "r", "act_1", "o1", state.ResultApplied)); err == nil {
		t.Error("AppendAudit with a cancelled context succeeded")
	}
	if _, err := s.QueryAudit(ctx, state.AuditQuery{}); err == nil {
		t.Error("QueryAudit with a cancelled context succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with a cancelled context succeeded")
	}
	recs, err := s.QueryAudit(context.Background(), state.AuditQuery{})
	must(t, err)
	if len(recs) != 0 {
		t.Errorf("a cancelled append stored %d records", len(recs))
	}
}
