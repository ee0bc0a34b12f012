package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/state"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// fakeSource serves a fixed Status.
type fakeSource struct {
	mu sync.Mutex
	st Status
}

func (f *fakeSource) Status(context.Context) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSource) set(fn func(*Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

// fakeReloader returns err, after waiting for block when it is not nil.
type fakeReloader struct {
	mu      sync.Mutex
	err     error
	calls   int
	started chan struct{}
	block   chan struct{}
}

func (f *fakeReloader) Reload(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	err, block, started := f.err, f.block, f.started
	f.mu.Unlock()
	if started != nil {
		close(started)
	}
	if block != nil {
		<-block
	}
	return err
}

// sampleStatus has two groups, one with a run and matches, one never run.
func sampleStatus() Status {
	return Status{
		Now:        testNow,
		Ready:      true,
		Reload:     ReloadStatus{OK: true, Time: testNow.Add(-2 * time.Hour)},
		Currencies: map[string]string{"act_1": "USD", "act_2": "JPY"},
		Groups: []GroupView{
			{
				Name: "stop-loss", Schedule: "every 30m", NextRun: testNow.Add(12 * time.Minute),
				Accounts: []string{"act_1", "act_2"},
				LastRun: &RunView{
					ID: "run-42", Start: testNow.Add(-18 * time.Minute), End: testNow.Add(-18*time.Minute + 3200*time.Millisecond),
					Result: "partial", Accounts: map[string]string{"act_1": "success", "act_2": "failed"},
					Errors: []string{"act_2: insights read failed: (#17) User request limit reached"},
				},
				Rules: []RuleView{
					{
						Name: "pause-spend-without-purchase", Group: "stop-loss",
						Description: "Pause ads that spent 2× the target CPA without a purchase",
						Level:       "ad", Window: "last_7d", When: "spend > 2 * vars.target_cpa && purchases == 0",
						Where: `effective_status == "ACTIVE"`, For: "1h", Cooldown: "24h", ActionKind: "pause", Action: "pause",
						InScope: 120, Matches: 2, Pending: 1,
						LastMatches: []MatchView{{
							AccountID: "act_1", ObjectID: "101", ObjectName: "UGC video", Result: state.ResultApplied,
							Before: "ACTIVE", After: "PAUSED",
							Values: map[string]state.Scalar{"spend": state.Number(61.5), "purchases": state.Number(0), "vars.target_cpa": state.Number(25)},
						}},
					},
					{
						Name: "scale-winners", Group: "stop-loss", Level: "adset", Window: "last_3d",
						When: "roas > 3", ActionKind: "change_budget", Action: "change budget by +20%, max 500",
						DryRun: true, InScope: 14,
					},
				},
			},
			{
				Name: "night-watch", Schedule: "0 * * * *", DryRun: true, Accounts: []string{"act_1"},
				Rules: []RuleView{{Name: "notify-cpm-spike", Group: "night-watch", Level: "campaign", Window: "today",
					When: "cpm > 40", ActionKind: "notify", Action: "notify slack #ads"}},
			},
		},
	}
}

// sampleAudit is the audit log the tests seed, oldest first.
func sampleAudit() []state.AuditRecord {
	return []state.AuditRecord{
		{
			Time: testNow.Add(-50 * time.Hour), RunID: "run-1", Group: "stop-loss", Rule: "scale-winners",
			AccountID: "act_1", Level: "adset", ObjectID: "11", ObjectName: "Prospecting US",
			Kind: "change_budget", Field: state.FieldDailyBudget, Before: state.Amount(5000), After: state.Amount(6000),
			Result: state.ResultApplied, Labels: map[string]string{"team": "growth"},
			Values: map[string]state.Scalar{"roas": state.Number(3.4)},
		},
		{
			Time: testNow.Add(-3 * time.Hour), RunID: "run-40", Group: "stop-loss", Rule: "scale-winners",
			AccountID: "act_1", Level: "adset", ObjectID: "12", ObjectName: "Retargeting EU",
			Kind: "change_budget", Field: state.FieldDailyBudget, Before: state.Amount(10000), After: state.Amount(12000),
			Result: state.ResultDryRun, CappedBy: "max", DryRun: true,
			Values: map[string]state.Scalar{"roas": state.Number(4.25)},
		},
		{
			Time: testNow.Add(-18 * time.Minute), RunID: "run-42", Group: "stop-loss", Rule: "pause-spend-without-purchase",
			AccountID: "act_1", Level: "ad", ObjectID: "101", ObjectName: "UGC video",
			Kind: "pause", Field: state.FieldStatus, Before: state.Status("ACTIVE"), After: state.Status("PAUSED"),
			Result: state.ResultApplied,
			Values: map[string]state.Scalar{"spend": state.Number(61.5), "purchases": state.Number(0), "ctr": state.Null()},
		},
		{
			Time: testNow.Add(-17 * time.Minute), RunID: "run-42", Group: "stop-loss", Rule: "pause-spend-without-purchase",
			AccountID: "act_2", Level: "ad", ObjectID: "201", ObjectName: "Brand <b>JP</b>",
			Kind: "pause", Field: state.FieldStatus, Before: state.Status("ACTIVE"),
			Result: state.ResultFailed, Error: "(#100) Invalid parameter",
			Values: map[string]state.Scalar{"spend": state.Number(7000)},
		},
	}
}

// fixture is a Server under test with its collaborators.
type fixture struct {
	srv      *Server
	store    *state.SQLite
	source   *fakeSource
	reloader *fakeReloader
	killed   int // calls of OnKillSwitch
	mu       sync.Mutex
}

// newFixture builds a server over a fresh SQLite store seeded with sampleAudit;
// edit may change the options before New.
func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.AppendAudit(ctx, sampleAudit()...); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, source: &fakeSource{st: sampleStatus()}, reloader: &fakeReloader{}}
	opts := Options{
		Listen: "127.0.0.1:0", Source: f.source, Reloader: f.reloader, Audit: st, Kill: st,
		Ready: st.Ping, Now: func() time.Time { return testNow },
		OnKillSwitch: func() { f.mu.Lock(); f.killed++; f.mu.Unlock() },
	}
	if edit != nil {
		edit(&opts)
	}
	f.srv = New(opts)
	return f
}

// do sends one request to the handler and returns the response and its body.
func (f *fixture) do(t *testing.T, method, target, token string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var errBadRules = errors.New("rules/stop-loss.yaml:12:9: unknown metric \"spnd\" (did you mean spend?)\nrules/scale.yaml:4:3: field schedul not found")

func contains(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("body lacks %q", w)
		}
	}
}
