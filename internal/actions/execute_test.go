package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/state"
)

var testNow = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// testEnv is a fakegraph behind httptest, a graph.Client pointed at it, and an
// Executor logging to an observer (the client logs there too).
type testEnv struct {
	fake   *fakegraph.Server
	client *graph.Client
	x      *Executor
	logs   *observer.ObservedLogs
	token  string

	acct     string
	campaign string // budget on its ad sets
	adset    string // daily_budget 5000, bid_amount 200
	ad       string // ACTIVE
	cbo      string // campaign with daily_budget 10000
	cboAdSet string // ad set of cbo (no budget of its own)
}

type envOpt struct {
	token       string // the token the fake accepts [fakegraph.DefaultToken]
	clientToken string // the token the client sends [token]
}

func newTestEnv(t *testing.T, o envOpt) *testEnv {
	t.Helper()
	if o.token == "" {
		o.token = fakegraph.DefaultToken
	}
	if o.clientToken == "" {
		o.clientToken = o.token
	}
	fake := fakegraph.New(fakegraph.Options{Now: func() time.Time { return testNow }, Tokens: []string{o.token}})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	client, err := graph.New(graph.Options{
		BaseURL:         srv.URL,
		APIVersion:      "v27.0",
		Token:           graph.NewSecret(o.clientToken),
		Timeout:         5 * time.Second,
		Retry:           graph.RetryPolicy{MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
		MaxThrottleWait: -1,
		Logger:          logger,
		Now:             func() time.Time { return testNow },
		Sleep:           func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Jitter:          func() float64 { return 0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{fake: fake, client: client, x: NewExecutor(client, logger), logs: logs, token: o.clientToken}
	e.acct = fakegraph.Must(fake.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	e.campaign = fakegraph.Must(fake.AddCampaign(fakegraph.Campaign{AccountID: e.acct, Name: "Sales"}))
	e.adset = e.addAdSet(t, 5000, 200)
	e.ad = fakegraph.Must(fake.AddAd(fakegraph.Ad{AdSetID: e.adset, Name: "UGC video"}))
	e.cbo = fakegraph.Must(fake.AddCampaign(fakegraph.Campaign{AccountID: e.acct, Name: "CBO", DailyBudget: 10000}))
	e.cboAdSet = fakegraph.Must(fake.AddAdSet(fakegraph.AdSet{CampaignID: e.cbo, Name: "CBO ad set"}))
	return e
}

func (e *testEnv) addAdSet(t *testing.T, daily, bid int64) string {
	t.Helper()
	as := fakegraph.AdSet{CampaignID: e.campaign, Name: "Ad set", DailyBudget: daily, BidAmount: bid}
	if bid > 0 {
		as.BidStrategy = "LOWEST_COST_WITH_BID_CAP"
	}
	return fakegraph.Must(e.fake.AddAdSet(as))
}

func (e *testEnv) object(t *testing.T, id string) fakegraph.ObjectState {
	t.Helper()
	o, ok := e.fake.Object(id)
	if !ok {
		t.Fatalf("object %s not in the fake", id)
	}
	return o
}

// batchCalls counts the HTTP batch requests the fake received.
func (e *testEnv) batchCalls() int {
	n := 0
	for _, r := range e.fake.Requests() {
		if !r.Batch && r.Method == "POST" && strings.Trim(r.Path, "/") == "" {
			n++
		}
	}
	return n
}

// posts counts the POST operations on one object.
func (e *testEnv) posts(id string) int {
	n := 0
	for _, r := range e.fake.Requests() {
		if r.Batch && r.Method == "POST" && strings.HasSuffix(r.Path, "/"+id) {
			n++
		}
	}
	return n
}

func (e *testEnv) writesTo(id, field string) []fakegraph.WriteRecord {
	var out []fakegraph.WriteRecord
	for _, w := range e.fake.Writes() {
		if w.ObjectID == id && w.Field == field {
			out = append(out, w)
		}
	}
	return out
}

func (e *testEnv) pause(id string) Write {
	return Write{IntentID: 1, AccountID: e.acct, ObjectID: id, Field: state.FieldStatus,
		Before: state.Status("ACTIVE"), Target: state.Status("PAUSED"), Priority: true}
}

func (e *testEnv) budget(id string, before, target int64) Write {
	return Write{IntentID: 2, AccountID: e.acct, ObjectID: id, Field: state.FieldDailyBudget,
		Before: state.Amount(before), Target: state.Amount(target)}
}

func (e *testEnv) apply1(t *testing.T, w Write) Result {
	t.Helper()
	res := e.x.Apply(context.Background(), []Write{w})
	if len(res) != 1 {
		t.Fatalf("%d results for 1 write", len(res))
	}
	if res[0].Write != w {
		t.Errorf("result carries write %+v, want %+v", res[0].Write, w)
	}
	return res[0]
}

func TestApplyWrites(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	writes := []Write{
		e.budget(e.adset, 5000, 6000),
		e.pause(e.ad),
		{IntentID: 3, AccountID: e.acct, ObjectID: e.adset, Field: state.FieldBidAmount, Before: state.Amount(200), Target: state.Amount(250)},
		{IntentID: 4, AccountID: e.acct, ObjectID: e.cbo, Field: state.FieldDailyBudget, Before: state.Amount(10000), Target: state.Amount(8500)},
		{IntentID: 5, AccountID: e.acct, ObjectID: e.campaign, Field: state.FieldStatus, Before: state.Status("ACTIVE"), Target: state.Status("PAUSED"), Priority: true},
	}
	res := e.x.Apply(context.Background(), writes)
	if len(res) != len(writes) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Write != writes[i] {
			t.Errorf("result %d is for %+v, want %+v (order of writes)", i, r.Write, writes[i])
		}
		if !r.Applied || r.Reason != "" || r.Resent || r.Superseded || r.Permanent {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if got := res[0].Observed; got != state.Amount(6000) {
		t.Errorf("budget read back as %v", got)
	}
	if got := res[2].Observed; got != state.Amount(250) {
		t.Errorf("bid read back as %v", got)
	}
	if o := e.object(t, e.adset); o.DailyBudget != 6000 || o.BidAmount != 250 {
		t.Errorf("ad set in the fake: budget %d bid %d", o.DailyBudget, o.BidAmount)
	}
	if o := e.object(t, e.ad); o.Status != "PAUSED" {
		t.Errorf("ad status %s", o.Status)
	}
	if o := e.object(t, e.cbo); o.DailyBudget != 8500 {
		t.Errorf("campaign budget %d", o.DailyBudget)
	}
	if o := e.object(t, e.campaign); o.Status != "PAUSED" {
		t.Errorf("campaign status %s", o.Status)
	}
	// One POST op per write with the absolute value as a form body; pauses in their
	// own batch, sent first; then one batch of GETs reading back the budgets and bid.
	var ops []string
	for _, r := range e.fake.Requests() {
		if r.Batch {
			ops = append(ops, r.Method+" "+strings.TrimPrefix(r.Path, "/v27.0/")+" "+r.Params.Get("status")+r.Params.Get("daily_budget")+r.Params.Get("bid_amount")+r.Params.Get("fields"))
		}
	}
	want := []string{
		"POST " + e.ad + " PAUSED",
		"POST " + e.campaign + " PAUSED",
		"POST " + e.adset + " 6000",
		"POST " + e.adset + " 250",
		"POST " + e.cbo + " 8500",
		"GET " + e.adset + " daily_budget",
		"GET " + e.adset + " bid_amount",
		"GET " + e.cbo + " daily_budget",
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}
	if n := e.batchCalls(); n != 3 {
		t.Errorf("%d batch calls, want 3 (pauses, other writes, read-back)", n)
	}
	// One info line per write.
	lines := e.logs.FilterMessage("write").All()
	if len(lines) != len(writes) {
		t.Fatalf("%d write log lines", len(lines))
	}
	for i, l := range lines {
		m := l.ContextMap()
		if l.Level != zapcore.InfoLevel || m["object_id"] != writes[i].ObjectID || m["field"] != writes[i].Field ||
			m["applied"] != true || m["before"] != writes[i].Before.String() || m["target"] != writes[i].Target.String() {
			t.Errorf("log line %d: %v %v", i, l.Level, m)
		}
	}
}

func TestApply120WritesIn3Batches(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	writes := make([]Write, 120)
	for i := range writes {
		id := fakegraph.Must(e.fake.AddAd(fakegraph.Ad{AdSetID: e.adset, Name: fmt.Sprint("ad ", i)}))
		writes[i] = e.pause(id)
		writes[i].IntentID = int64(i + 1)
	}
	e.fake.ResetLog()
	res := e.x.Apply(context.Background(), writes)
	for i, r := range res {
		if !r.Applied || r.IntentID != int64(i+1) {
			t.Fatalf("result %d: %+v", i, r)
		}
		if o := e.object(t, r.ObjectID); o.Status != "PAUSED" {
			t.Fatalf("ad %s is %s", r.ObjectID, o.Status)
		}
	}
	if n := e.batchCalls(); n != 3 {
		t.Errorf("%d batch calls, want 3", n)
	}
	if c := e.fake.Counters(); c["POST /"] != 3 || c["POST /{ver}/{ad_id}"] != 120 {
		t.Errorf("counters %v", c)
	}
}

func TestApplySuccessButUnchanged(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultNoop}})
	r := e.apply1(t, e.budget(e.adset, 5000, 6000))
	if r.Applied || r.Reason != "Meta answered success but the budget did not change" || r.Permanent || r.Resent || r.Superseded {
		t.Errorf("%+v", r)
	}
	if r.Observed != state.Amount(5000) {
		t.Errorf("observed %v", r.Observed)
	}
	if n := e.posts(e.adset); n != 1 {
		t.Errorf("%d POSTs: a success answer is not re-sent", n)
	}
	if o := e.object(t, e.adset); o.DailyBudget != 5000 {
		t.Errorf("budget %d", o.DailyBudget)
	}
}

func TestApplyAnswerLostAfterApply(t *testing.T) {
	for _, field := range []string{state.FieldDailyBudget, state.FieldStatus} {
		t.Run(field, func(t *testing.T) {
			e := newTestEnv(t, envOpt{})
			w := e.budget(e.adset, 5000, 6000)
			if field == state.FieldStatus {
				w = e.pause(e.adset)
			}
			e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultDropAfterApply}})
			r := e.apply1(t, w)
			if !r.Applied || r.Resent || r.Reason != "" || r.Observed != w.Target {
				t.Errorf("%+v", r)
			}
			if ws := e.writesTo(e.adset, field); len(ws) != 1 {
				t.Errorf("writes %+v, want exactly one", ws)
			}
			if n := e.posts(e.adset); n != 1 {
				t.Errorf("%d POSTs, want 1 (read back, not re-sent)", n)
			}
		})
	}
}

func TestApplyAnswerLostNotApplied(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fakegraph.FaultKind
		field string
	}{
		{"drop budget", fakegraph.FaultDrop, state.FieldDailyBudget},
		{"drop pause", fakegraph.FaultDrop, state.FieldStatus},
		{"5xx budget", fakegraph.Fault5xx, state.FieldDailyBudget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, envOpt{})
			w := e.budget(e.adset, 5000, 6000)
			if tc.field == state.FieldStatus {
				w = e.pause(e.adset)
			}
			e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: tc.fault}})
			r := e.apply1(t, w)
			if !r.Applied || !r.Resent || r.Reason != "" || r.Observed != w.Target || r.Superseded {
				t.Errorf("%+v", r)
			}
			ws := e.writesTo(e.adset, tc.field)
			if len(ws) != 1 || ws[0].New != w.Target.String() {
				t.Errorf("writes %+v, want the target exactly once", ws)
			}
			if n := e.posts(e.adset); n != 2 {
				t.Errorf("%d POSTs, want 2 (the write and one re-send)", n)
			}
			if l := e.logs.FilterMessage("write").All(); len(l) != 1 || l[0].ContextMap()["resent"] != true {
				t.Errorf("log lines %v", l)
			}
		})
	}
}

func TestApplyAnswerLostTwice(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Times: 2, Fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}})
	r := e.apply1(t, e.budget(e.adset, 5000, 6000))
	if r.Applied || !r.Resent || r.Permanent || !strings.Contains(r.Reason, "re-sent once") {
		t.Errorf("%+v", r)
	}
	if n := e.posts(e.adset); n != 2 {
		t.Errorf("%d POSTs, want 2: re-sent once only", n)
	}
}

func TestApplyReadBackFails(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	// The write's answer is lost and so is every read: the outcome is unknown.
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultDropAfterApply}})
	e.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: e.adset, Times: -1, Fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}})
	r := e.apply1(t, e.budget(e.adset, 5000, 6000))
	if r.Applied || r.Resent || r.Permanent || r.Superseded || !strings.Contains(r.Reason, "unknown") {
		t.Errorf("%+v", r)
	}
	if n := e.posts(e.adset); n != 1 {
		t.Errorf("%d POSTs: never re-sent blindly", n)
	}

	// A write Meta confirmed stays applied when only the verification read fails.
	adset2 := e.addAdSet(t, 5000, 0)
	e.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: adset2, Fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}})
	r = e.apply1(t, e.budget(adset2, 5000, 7000))
	if !r.Applied || r.Reason != "" {
		t.Errorf("confirmed write, failed verification: %+v", r)
	}
}

// hookGraph runs a hook after the first Batch call: a person acting between the
// write and its read-back.
type hookGraph struct {
	g     Graph
	calls int
	after func()
}

func (h *hookGraph) Batch(ctx context.Context, ops []graph.BatchOp) ([]graph.BatchResult, error) {
	res, err := h.g.Batch(ctx, ops)
	h.calls++
	if h.calls == 1 && h.after != nil {
		h.after()
	}
	return res, err
}

func TestApplySuperseded(t *testing.T) {
	for _, fault := range []fakegraph.FaultKind{fakegraph.FaultDrop, fakegraph.FaultNoop} {
		t.Run(fault.String(), func(t *testing.T) {
			e := newTestEnv(t, envOpt{})
			x := NewExecutor(&hookGraph{g: e.client, after: func() {
				if err := e.fake.SetBudget(e.adset, 7777, 0); err != nil {
					t.Error(err)
				}
			}}, zap.NewNop())
			e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fault}})
			res := x.Apply(context.Background(), []Write{e.budget(e.adset, 5000, 6000)})
			r := res[0]
			if r.Applied || !r.Superseded || !r.Permanent || r.Resent || r.Observed != state.Amount(7777) ||
				!strings.HasPrefix(r.Reason, "superseded: ") {
				t.Errorf("%+v", r)
			}
			if n := e.posts(e.adset); n != 1 {
				t.Errorf("%d POSTs: a person's change is never overwritten", n)
			}
			if o := e.object(t, e.adset); o.DailyBudget != 7777 {
				t.Errorf("budget %d", o.DailyBudget)
			}
		})
	}
}

func TestApplyMetaRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, e *testEnv) Write
		check   func(r Result) bool
		reason  string // substring
		subcode int
	}{
		{
			name: "budget locked",
			setup: func(t *testing.T, e *testEnv) Write {
				e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.ErrorFault(613, 1487632)})
				return e.budget(e.adset, 5000, 6000)
			},
			check:   func(r Result) bool { return r.Locked && r.Permanent && !r.Auth },
			reason:  "Meta locked this budget for an hour: it was changed too often (code 613/1487632)",
			subcode: 1487632,
		},
		{
			name: "budget locked by the fake after 4 changes",
			setup: func(t *testing.T, e *testEnv) Write {
				for i, b := range []int64{5100, 5200, 5300, 5400} {
					if r := e.apply1Quiet(e.budget(e.adset, 5000+int64(i)*100, b)); !r.Applied {
						t.Fatalf("setup write %d: %+v", i, r)
					}
				}
				return e.budget(e.adset, 5400, 6000)
			},
			check:   func(r Result) bool { return r.Locked && r.Permanent },
			reason:  "(code 613/1487632)",
			subcode: 1487632,
		},
		{
			name:    "budget too low",
			setup:   func(t *testing.T, e *testEnv) Write { return e.budget(e.adset, 5000, 50) },
			check:   func(r Result) bool { return r.Permanent && !r.Locked },
			reason:  "Meta refused: the budget is below the minimum for this currency (code 100/1885272): The budget for this ad set must be at least $1.00 per day.",
			subcode: 1885272,
		},
		{
			name: "budget below spend",
			setup: func(t *testing.T, e *testEnv) Write {
				e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.ErrorFault(100, 1885650)})
				return e.budget(e.adset, 5000, 4000)
			},
			check:   func(r Result) bool { return r.Permanent },
			reason:  "at least 10% above what was already spent (code 100/1885650)",
			subcode: 1885650,
		},
		{
			name:    "ad set budget on its campaign",
			setup:   func(t *testing.T, e *testEnv) Write { return e.budget(e.cboAdSet, 0, 6000) },
			check:   func(r Result) bool { return r.Permanent },
			reason:  "Meta refused: this ad set's budget is on its campaign",
			subcode: 1885621,
		},
		{
			name: "campaign budget conflict 4834002",
			setup: func(t *testing.T, e *testEnv) Write {
				e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.ErrorFault(100, 4834002)})
				return e.budget(e.adset, 5000, 6000)
			},
			check:   func(r Result) bool { return r.Permanent },
			reason:  "this ad set's budget is on its campaign",
			subcode: 4834002,
		},
		{
			name: "permission",
			setup: func(t *testing.T, e *testEnv) Write {
				e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.ad, Fault: fakegraph.ErrorFault(200, 0)})
				return e.pause(e.ad)
			},
			check:  func(r Result) bool { return r.Permanent && !r.Auth },
			reason: "lacks permission for this change (code 200)",
		},
		{
			name: "throttled",
			setup: func(t *testing.T, e *testEnv) Write {
				e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.ad, Fault: fakegraph.ErrorFault(80004, 2446079)})
				return e.pause(e.ad)
			},
			check:   func(r Result) bool { return !r.Permanent && !r.Locked },
			reason:  "not applied: Meta is rate-limiting requests (code 80004/2446079); a later run retries",
			subcode: 2446079,
		},
		{
			name:   "no such object",
			setup:  func(t *testing.T, e *testEnv) Write { return e.pause("999") },
			check:  func(r Result) bool { return r.Permanent },
			reason: "Meta refused the change (code 100/33): Unsupported post request. Object with ID '999' does not exist",
		},
		{
			name:   "not a write",
			setup:  func(t *testing.T, e *testEnv) Write { w := e.budget(e.adset, 5000, 0); return w },
			check:  func(r Result) bool { return r.Permanent },
			reason: "rulesd error: cannot write",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, envOpt{})
			w := tc.setup(t, e)
			e.logs.TakeAll()
			r := e.apply1(t, w)
			if r.Applied || r.Resent || r.Superseded || !tc.check(r) || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("result %+v\nwant reason containing %q", r, tc.reason)
			}
			if strings.Contains(r.Reason, "http") {
				t.Errorf("reason holds a URL: %q", r.Reason)
			}
			lines := e.logs.FilterMessage("write").All()
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			m := lines[0].ContextMap()
			if m["reason"] != r.Reason || m["applied"] != false {
				t.Errorf("log line %v", m)
			}
			if tc.subcode != 0 && (m["error_subcode"] != int64(tc.subcode) || m["fbtrace_id"] == nil || m["code"] == nil) {
				t.Errorf("log line lacks code/subcode/fbtrace_id: %v", m)
			}
		})
	}
}

func (e *testEnv) apply1Quiet(w Write) Result { return e.x.Apply(context.Background(), []Write{w})[0] }

func TestApplyAuthStopsTheRest(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	writes := make([]Write, 60)
	for i := range writes {
		id := fakegraph.Must(e.fake.AddAd(fakegraph.Ad{AdSetID: e.adset, Name: fmt.Sprint("ad ", i)}))
		writes[i] = e.pause(id)
	}
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: writes[0].ObjectID, Fault: fakegraph.ErrorFault(190, 463)})
	e.fake.ResetLog()
	res := e.x.Apply(context.Background(), writes)
	if r := res[0]; r.Applied || !r.Auth || r.Permanent || !strings.Contains(r.Reason, "access token expired (code 190/463)") {
		t.Errorf("refused write: %+v", r)
	}
	// The rest of the first batch request was already on its way with it.
	for _, r := range res[1:50] {
		if !r.Applied {
			t.Errorf("same batch: %+v", r)
		}
	}
	for _, r := range res[50:] {
		if r.Applied || r.Auth || r.Permanent || r.Reason != "not sent: the access token failed" {
			t.Errorf("after the auth failure: %+v", r)
		}
		if o := e.object(t, r.ObjectID); o.Status != "ACTIVE" {
			t.Errorf("%s was written", r.ObjectID)
		}
	}
	if n := e.batchCalls(); n != 1 {
		t.Errorf("%d batch calls, want 1", n)
	}
}

func TestApplyBadToken(t *testing.T) {
	e := newTestEnv(t, envOpt{token: "EAAgoodTOKEN", clientToken: "EAArevokedTOKEN42"})
	writes := make([]Write, 60)
	for i := range writes {
		writes[i] = e.budget(e.adset, 5000, 6000)
	}
	res := e.x.Apply(context.Background(), writes)
	for i, r := range res {
		switch {
		case i < 50 && (!r.Auth || r.Applied || !strings.Contains(r.Reason, "Meta refused the access token")):
			t.Errorf("write %d: %+v", i, r)
		case i >= 50 && (r.Auth || r.Applied || r.Reason != "not sent: the access token failed"):
			t.Errorf("write %d: %+v", i, r)
		}
	}
	if n := e.batchCalls(); n != 1 {
		t.Errorf("%d batch calls: nothing is sent or read after the token failed", n)
	}
	assertNoSecret(t, e, res)
}

func TestReconcile(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	applied := e.addAdSet(t, 6000, 0)
	young := e.addAdSet(t, 5000, 0)
	old := e.addAdSet(t, 5000, 0)
	other := e.addAdSet(t, 7000, 0)
	bid := e.addAdSet(t, 5000, 300)
	intent := func(id int64, obj string, before, target int64, age time.Duration) state.Intent {
		return state.Intent{ID: id, Created: testNow.Add(-age), AccountID: e.acct, Level: "adset", ObjectID: obj,
			Kind: "set_budget", Field: state.FieldDailyBudget, Before: state.Amount(before), Target: state.Amount(target)}
	}
	intents := []state.Intent{
		intent(1, applied, 5000, 6000, time.Minute),
		intent(2, young, 5000, 6000, time.Minute),
		intent(3, old, 5000, 6000, 2*time.Hour),
		intent(4, other, 5000, 6000, time.Minute),
		{ID: 5, Created: testNow.Add(-time.Minute), AccountID: e.acct, Level: "ad", ObjectID: e.ad, Kind: "pause",
			Field: state.FieldStatus, Before: state.Status("ACTIVE"), Target: state.Status("PAUSED")},
		{ID: 6, Created: testNow.Add(-time.Minute), AccountID: e.acct, Level: "adset", ObjectID: bid, Kind: "set_bid",
			Field: state.FieldBidAmount, Before: state.Amount(250), Target: state.Amount(300)},
	}
	res := e.x.Reconcile(context.Background(), intents, 15*time.Minute, testNow)
	if len(res) != len(intents) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.IntentID != intents[i].ID || r.ObjectID != intents[i].ObjectID || r.Target != intents[i].Target || r.Before != intents[i].Before {
			t.Errorf("result %d is for %+v", i, r.Write)
		}
	}
	if r := res[0]; !r.Applied || r.Resent || r.Observed != state.Amount(6000) {
		t.Errorf("target present: %+v", r)
	}
	if r := res[1]; !r.Applied || !r.Resent || r.Observed != state.Amount(6000) {
		t.Errorf("before present, young: %+v", r)
	}
	if r := res[2]; r.Applied || !r.Superseded || r.Resent || !strings.HasPrefix(r.Reason, "superseded: ") {
		t.Errorf("before present, old: %+v", r)
	}
	if r := res[3]; r.Applied || !r.Superseded || r.Observed != state.Amount(7000) || !strings.HasPrefix(r.Reason, "superseded: ") {
		t.Errorf("other value: %+v", r)
	}
	if r := res[4]; !r.Applied || !r.Resent || !r.Priority || r.Observed != state.Status("PAUSED") {
		t.Errorf("pause, young: %+v", r)
	}
	if r := res[5]; !r.Applied || r.Resent {
		t.Errorf("bid as a JSON number: %+v", r)
	}
	if o := e.object(t, young); o.DailyBudget != 6000 {
		t.Errorf("young: budget %d", o.DailyBudget)
	}
	if o := e.object(t, old); o.DailyBudget != 5000 {
		t.Errorf("old: budget %d", o.DailyBudget)
	}
	if o := e.object(t, e.ad); o.Status != "PAUSED" {
		t.Errorf("ad %s", o.Status)
	}
	var posted []string
	for _, r := range e.fake.Requests() {
		if r.Batch && r.Method == "POST" {
			posted = append(posted, strings.TrimPrefix(r.Path, "/v27.0/"))
		}
	}
	if strings.Join(posted, ",") != e.ad+","+young {
		t.Errorf("POSTs to %v, want only the young intents (pause first)", posted)
	}
	if n := len(e.logs.FilterMessage("reconcile").All()); n != len(intents) {
		t.Errorf("%d reconcile log lines", n)
	}
}

func TestReconcileReadFails(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	e.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: e.adset, Fault: fakegraph.ErrorFault(2, 0), Times: -1})
	res := e.x.Reconcile(context.Background(), []state.Intent{{ID: 9, Created: testNow, AccountID: e.acct, ObjectID: e.adset,
		Field: state.FieldDailyBudget, Before: state.Amount(5000), Target: state.Amount(6000)}}, time.Hour, testNow)
	if r := res[0]; r.Applied || r.Superseded || r.Resent || r.Permanent || !strings.Contains(r.Reason, "stays unfinished") {
		t.Errorf("%+v", res[0])
	}
	if n := e.posts(e.adset); n != 0 {
		t.Errorf("%d POSTs", n)
	}
}

// assertNoSecret checks that the token and URLs appear in no reason and no log line.
func assertNoSecret(t *testing.T, e *testEnv, res []Result) {
	t.Helper()
	for _, r := range res {
		if strings.Contains(r.Reason, e.token) || strings.Contains(r.Reason, "://") {
			t.Errorf("reason leaks: %q", r.Reason)
		}
	}
	for _, l := range e.logs.All() {
		text := l.Message + " " + fmt.Sprint(l.ContextMap())
		if strings.Contains(text, e.token) {
			t.Errorf("log line leaks the token: %s", text)
		}
		if l.LoggerName == "" && (l.Message == "write" || l.Message == "reconcile") && strings.Contains(text, "://") {
			t.Errorf("log line holds a URL: %s", text)
		}
	}
}

func TestNoTokenInReasonsOrLogs(t *testing.T) {
	const token = "EAAsecretTOKENvalue0123456789xyz"
	e := newTestEnv(t, envOpt{token: token})
	a2 := e.addAdSet(t, 5000, 0)
	a3 := e.addAdSet(t, 5000, 0)
	a4 := e.addAdSet(t, 5000, 0)
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultNoop}})
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: a2, Fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}})
	res := e.x.Apply(context.Background(), []Write{
		e.budget(e.adset, 5000, 6000),
		e.budget(a2, 5000, 6000),
		e.budget(e.cboAdSet, 0, 6000),
		e.budget(a4, 5000, 50),
		e.pause("999"),
	})
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.ad, Fault: fakegraph.ErrorFault(190, 463)})
	res = append(res, e.x.Apply(context.Background(), []Write{e.pause(e.ad), e.pause(e.campaign)})...)
	if r := res[len(res)-2]; !r.Auth {
		t.Errorf("auth case: %+v", r)
	}
	res = append(res, e.x.Reconcile(context.Background(), []state.Intent{{ID: 1, ObjectID: "998", AccountID: e.acct,
		Field: state.FieldStatus, Before: state.Status("ACTIVE"), Target: state.Status("PAUSED")}}, time.Hour, testNow)...)
	if r := res[len(res)-1]; r.Applied || r.Superseded || !strings.Contains(r.Reason, "code 100/33") {
		t.Errorf("reconcile, no such object: %+v", r)
	}
	// A throttle holds the account: the read-back of a lost answer fails too.
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: a3, Fault: fakegraph.ErrorFault(80004, 2446079)})
	e.fake.Inject(fakegraph.FaultRule{Method: "POST", Path: e.adset, Fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}})
	res = append(res, e.x.Apply(context.Background(), []Write{e.budget(a3, 5000, 6000), e.budget(e.adset, 5000, 6100)})...)
	if r := res[len(res)-1]; r.Applied || !strings.Contains(r.Reason, "unknown") {
		t.Errorf("lost answer, throttled read-back: %+v", r)
	}
	if len(e.logs.All()) == 0 {
		t.Fatal("nothing logged")
	}
	var reasons int
	for _, r := range res {
		if r.Reason != "" {
			reasons++
		}
	}
	if reasons < 8 {
		t.Errorf("only %d reasons to check: %+v", reasons, res)
	}
	assertNoSecret(t, e, res)
}

// stubGraph answers Batch from a function, for cases the fake cannot produce.
type stubGraph func(ops []graph.BatchOp) ([]graph.BatchResult, error)

func (s stubGraph) Batch(_ context.Context, ops []graph.BatchOp) ([]graph.BatchResult, error) {
	return s(ops)
}

func TestApplyGraphOddities(t *testing.T) {
	var calls [][]graph.BatchOp
	g := stubGraph(func(ops []graph.BatchOp) ([]graph.BatchResult, error) {
		calls = append(calls, ops)
		if ops[0].Method == "GET" {
			res := make([]graph.BatchResult, len(ops))
			for i := range res {
				res[i] = graph.BatchResult{Code: 200, Body: []byte(`{"id":"1","daily_budget":"5000"}`)}
			}
			return res, nil
		}
		// The first op not sent, the second without a result at all.
		return []graph.BatchResult{{Err: fmt.Errorf("graph: batch operation 0: %w", graph.ErrNotSent)}}, errors.New("chunk failed")
	})
	x := NewExecutor(g, nil)
	w := Write{AccountID: "act_1", ObjectID: "11", Field: state.FieldDailyBudget, Before: state.Amount(5000), Target: state.Amount(6000)}
	res := x.Apply(context.Background(), []Write{w, w})
	if r := res[0]; r.Applied || r.Permanent || !strings.HasPrefix(r.Reason, "not sent") {
		t.Errorf("not sent: %+v", r)
	}
	// A missing answer counts as lost: read back (5000 = Before), re-sent once
	// (and the stub does not send that either).
	if r := res[1]; r.Applied || !r.Resent || r.Permanent || !strings.HasPrefix(r.Reason, "not sent") {
		t.Errorf("missing answer: %+v", r)
	}
	if len(calls) != 3 {
		t.Errorf("%d calls", len(calls))
	}
	if got := calls[0][0]; got.Method != "POST" || got.Path != "11" || got.Params.Encode() != "daily_budget=6000" || got.Account != "act_1" || got.Idempotent {
		t.Errorf("op %+v", got)
	}
	if got := calls[1][0]; got.Method != "GET" || got.Path != "11" || got.Params.Encode() != "fields=daily_budget" {
		t.Errorf("read-back op %+v", got)
	}
	if res := x.Apply(context.Background(), nil); len(res) != 0 {
		t.Errorf("no writes: %+v", res)
	}
}

func TestDecodeField(t *testing.T) {
	for _, tc := range []struct {
		body, field string
		want        state.Value
		err         bool
	}{
		{`{"id":"1","daily_budget":"6000"}`, state.FieldDailyBudget, state.Amount(6000), false},
		{`{"id":"1","daily_budget":"0"}`, state.FieldDailyBudget, state.Value{}, false},
		{`{"id":"1"}`, state.FieldLifetimeBudget, state.Value{}, false},
		{`{"id":"1","lifetime_budget":25000}`, state.FieldLifetimeBudget, state.Amount(25000), false},
		{`{"id":"1","bid_amount":250}`, state.FieldBidAmount, state.Amount(250), false},
		{`{"id":"1","bid_amount":"250"}`, state.FieldBidAmount, state.Amount(250), false},
		{`{"id":"1","bid_amount":2.5e2}`, state.FieldBidAmount, state.Amount(250), false},
		{`{"id":"1","bid_amount":null}`, state.FieldBidAmount, state.Value{}, false},
		{`{"id":"1","status":"PAUSED"}`, state.FieldStatus, state.Status("PAUSED"), false},
		{`{"id":"1","status":3}`, state.FieldStatus, state.Value{}, true},
		{`{"id":"1","daily_budget":"12.5"}`, state.FieldDailyBudget, state.Value{}, true},
		{`[]`, state.FieldStatus, state.Value{}, true},
		{`not json`, state.FieldStatus, state.Value{}, true},
	} {
		got, err := decodeField([]byte(tc.body), tc.field)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("decodeField(%s, %s) = %v, %v", tc.body, tc.field, got, err)
		}
	}
	if !same(state.FieldDailyBudget, state.Amount(0), state.Value{}) || same(state.FieldStatus, state.Status("ACTIVE"), state.Status("PAUSED")) {
		t.Error("same")
	}
}

func TestCleanMessage(t *testing.T) {
	for in, want := range map[string]string{
		"(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.": "There have been too many calls to this ad-account. Wait a bit and try again.",
		"Unsupported post request. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api":                                                                                        "Unsupported post request.",
		"see http://x.example/?access_token=abc now": "see now",
		"  (#100)   Invalid\n parameter ":            "Invalid parameter",
	} {
		if got := cleanMessage(in); got != want {
			t.Errorf("cleanMessage(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanMessage(strings.Repeat("é", 300)); len(got) > 250 || !strings.HasSuffix(got, "…") {
		t.Errorf("long message: %q", got)
	}
}

func TestApplyCanceled(t *testing.T) {
	e := newTestEnv(t, envOpt{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := e.x.Apply(ctx, []Write{e.pause(e.ad), e.budget(e.adset, 5000, 6000)})
	for _, r := range res {
		if r.Applied || r.Permanent || r.Reason != "not sent: rulesd stopped" {
			t.Errorf("%+v", r)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}
