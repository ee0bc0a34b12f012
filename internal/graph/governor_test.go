package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gaugeValue reads one series from reg; -1 when absent.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func TestParseUsage(t *testing.T) {
	h := http.Header{}
	h.Set("X-App-Usage", `{"call_count":28,"total_cputime":"25","total_time":25.5}`)
	h.Set("X-Ad-Account-Usage", `{"acc_id_util_pct":9.67,"reset_time_duration":100,"ads_api_access_tier":"standard_access"}`)
	h.Set("X-Business-Use-Case-Usage", `{"123":[{"type":"ads_management","call_count":118,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":3,"ads_api_access_tier":"development_access"},{"type":"ads_insights","call_count":5}],"456":{"type":"ads_insights","call_count":7}}`)
	h.Set("X-FB-Ads-Insights-Throttle", `{"app_id_util_pct":100,"acc_id_util_pct":10,"ads_api_access_tier":"standard_access"}`)
	r := parseUsage(h, "act_123")
	got := map[string]float64{}
	for _, v := range r.values {
		got[v.scope+"|"+v.account+"|"+v.kind] = v.pct
	}
	want := map[string]float64{
		"app||call_count": 28, "app||total_cputime": 25, "app||total_time": 25.5,
		"account|act_123|acc_id_util_pct":           9.67,
		"account|act_123|ads_management_call_count": 118, "account|act_123|ads_management_total_cputime": 20,
		"account|act_123|ads_management_total_time": 20, "account|act_123|ads_insights_call_count": 5,
		"account|act_456|ads_insights_call_count": 7,
		"app||insights_app_id_util_pct":           100, "account|act_123|insights_acc_id_util_pct": 10,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	if r.reset["act_123"] != 100*time.Second || r.regain["act_123"] != 3*time.Minute {
		t.Errorf("reset %v regain %v", r.reset, r.regain)
	}
	// Garbage is ignored, not fatal.
	h2 := http.Header{}
	h2.Set("X-App-Usage", `not json`)
	h2.Set("X-Business-Use-Case-Usage", `{"1":"x"}`)
	if r := parseUsage(h2, "act_1"); !r.empty() {
		t.Errorf("garbage parsed: %+v", r)
	}
}

// usageServer answers with the headers in hdr (per request) and records
// request arrival times on the fake clock.
func TestUsageGovernor(t *testing.T) {
	var hdr atomic.Value // string: X-Ad-Account-Usage value, "" for none
	hdr.Store("")
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if v := hdr.Load().(string); v != "" {
			w.Header().Set("X-Ad-Account-Usage", v)
		}
		writeJSON(w, 200, `{"success":true}`)
	}), nil)
	ctx := context.Background()
	get := func() { t.Helper(); _, err := e.c.Get(ctx, Request{Path: "act_1/ads"}); must(t, err) }
	slept := func(f func()) time.Duration {
		before := e.clock.TotalSlept()
		f()
		return e.clock.TotalSlept() - before
	}

	// Under 75%: no delay.
	hdr.Store(`{"acc_id_util_pct":50}`)
	get()
	if d := slept(get); d != 0 {
		t.Fatalf("50%%: delayed %v", d)
	}
	// 80%: reads are slowed (1/3 of MaxSlowDelay between 75 and 90).
	hdr.Store(`{"acc_id_util_pct":80}`)
	get()
	if d := slept(get); d < time.Second || d > 2*time.Second {
		t.Fatalf("80%%: delayed %v, want ~1.67s", d)
	}
	// A missing header keeps the last value: still slowed, gauge still 0.8.
	hdr.Store("")
	get()
	if d := slept(get); d == 0 {
		t.Fatal("missing header treated as 0%")
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_usage_ratio", map[string]string{"scope": "account", "account": "act_1", "kind": "acc_id_util_pct"}); v != 0.8 {
		t.Fatalf("usage gauge %v, want 0.8", v)
	}
	// Another account is not slowed.
	if d := slept(func() { _, err := e.c.Get(ctx, Request{Path: "act_2/ads"}); must(t, err) }); d != 0 {
		t.Fatalf("other account delayed %v", d)
	}
	// 92% with a reset in 40 s: reads stop until the reset, priority writes go on.
	hdr.Store(`{"acc_id_util_pct":92,"reset_time_duration":40}`)
	get()
	hdr.Store(`{"acc_id_util_pct":10}`)
	if d := slept(func() {
		_, err := e.c.Post(ctx, Request{Path: "9", Account: "act_1", Priority: true})
		must(t, err)
	}); d != 0 {
		t.Fatalf("priority write delayed %v", d)
	}
	// That write's answer said 10%: block over. Back to 92%.
	hdr.Store(`{"acc_id_util_pct":92,"reset_time_duration":40}`)
	get()
	n := calls.Load()
	if d := slept(get); d < 40*time.Second || d > 41*time.Second {
		t.Fatalf("92%%: read waited %v, want the 40 s reset", d)
	}
	if calls.Load() != n+1 {
		t.Fatal("read not sent after the wait")
	}
	// An ordinary write stops at 90% too; with MaxThrottleWait exceeded it fails fast.
	hdr.Store(`{"acc_id_util_pct":97}`)
	get()
	e.c.maxThrottleWait = 10 * time.Second
	n = calls.Load()
	_, err := e.c.Get(ctx, Request{Path: "act_1/ads"})
	if ge, ok := AsError(err); !ok || ge.Kind() != KindThrottled || calls.Load() != n {
		t.Fatalf("err=%v sent=%v", err, calls.Load() != n)
	}
	if !strings.Contains(err.Error(), "97%") {
		t.Errorf("error %q does not name the usage", err)
	}
	// 97% stops priority writes too.
	_, err = e.c.Post(ctx, Request{Path: "9", Account: "act_1", Priority: true})
	if KindOf(err) != KindThrottled {
		t.Fatalf("priority write at 97%%: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccountThrottleWaitsOnlyThatAccount(t *testing.T) {
	clock := newClock(false)
	var aCalls, bCalls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "act_111") {
			if aCalls.Add(1) == 1 {
				w.Header().Set("X-Business-Use-Case-Usage", `{"111":[{"type":"ads_management","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":1}]}`)
				writeJSON(w, 400, `{"error":{"message":"(#80004) There have been too many calls to this ad-account.","type":"OAuthException","code":80004,"error_subcode":2446079,"fbtrace_id":"T80004"}}`)
				return
			}
		} else {
			bCalls.Add(1)
		}
		writeJSON(w, 200, `{"data":[]}`)
	}), func(o *Options) { o.Now, o.Sleep = clock.Now, clock.Sleep })
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { _, err := e.c.Get(ctx, Request{Path: "act_111/insights"}); done <- err }()
	waitFor(t, "account A to wait", func() bool { return clock.Waiters() == 1 })
	if s := clock.Sleeps(); s[0] != time.Minute {
		t.Fatalf("A waits %v, want 1m (estimated_time_to_regain_access is minutes)", s[0])
	}
	// B goes on without any wait while A is throttled.
	for range 3 {
		if _, err := e.c.Get(ctx, Request{Path: "act_222/insights"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(clock.Sleeps()) != 1 || bCalls.Load() != 3 {
		t.Fatalf("B delayed: sleeps %v", clock.Sleeps())
	}
	select {
	case err := <-done:
		t.Fatalf("A returned before the wait: %v", err)
	default:
	}
	clock.Advance(59 * time.Second)
	if clock.Waiters() != 1 {
		t.Fatal("A woke early")
	}
	clock.Advance(time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A did not finish after the wait")
	}
	if aCalls.Load() != 2 {
		t.Fatalf("A sent %d times", aCalls.Load())
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_throttled_total", map[string]string{"account": "act_111"}); v != 1 {
		t.Fatalf("throttled_total %v", v)
	}
	if e.logs.FilterMessage("graph throttled").Len() != 1 {
		t.Error("throttle not logged")
	}
}

func TestThrottleWaitsFromHeadersAndFallback(t *testing.T) {
	cases := []struct {
		name   string
		header [2]string
		body   string
		want   time.Duration
	}{
		{"reset_time_duration seconds", [2]string{"X-Ad-Account-Usage", `{"acc_id_util_pct":100,"reset_time_duration":30}`}, errBody(17, 2446079, ""), 30 * time.Second},
		{"613/1487742 no header: 60s", [2]string{}, errBody(613, 1487742, ""), 60 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					if tc.header[0] != "" {
						w.Header().Set(tc.header[0], tc.header[1])
					}
					writeJSON(w, 400, tc.body)
					return
				}
				writeJSON(w, 200, `{}`)
			}), func(o *Options) { o.Jitter = func() float64 { return 0 } })
			if _, err := e.c.Get(context.Background(), Request{Path: "act_5/adsets"}); err != nil {
				t.Fatal(err)
			}
			if s := e.clock.Sleeps(); len(s) != 1 || s[0] != tc.want {
				t.Fatalf("sleeps %v, want [%v]", s, tc.want)
			}
		})
	}
}

func TestThrottleBeyondMaxWaitReturnsError(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-Business-Use-Case-Usage", `{"5":[{"type":"ads_insights","call_count":100,"estimated_time_to_regain_access":30}]}`)
		writeJSON(w, 400, errBody(80000, 2446079, ""))
	}), func(o *Options) { o.MaxThrottleWait = 10 * time.Minute })
	_, err := e.c.Get(context.Background(), Request{Path: "act_5/insights"})
	ge, ok := AsError(err)
	if !ok || ge.Code != 80000 || ge.ThrottleScope() != ScopeAccount || calls.Load() != 1 || len(e.clock.Sleeps()) != 0 {
		t.Fatalf("err=%v calls=%d sleeps=%v", err, calls.Load(), e.clock.Sleeps())
	}
	// The next call for that account fails fast without reaching the server.
	_, err = e.c.Get(context.Background(), Request{Path: "act_5/campaigns"})
	if KindOf(err) != KindThrottled || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
	if u := e.c.Usage("act_5"); u.BlockedUntil.IsZero() || u.Percent != 100 {
		t.Fatalf("usage %+v", u)
	}
}

func TestAppThrottlePausesAllAccounts(t *testing.T) {
	var calls atomic.Int32
	var throttle atomic.Bool
	throttle.Store(true)
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if throttle.CompareAndSwap(true, false) {
			writeJSON(w, 403, `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"fbtrace_id":"T4"}}`)
			return
		}
		writeJSON(w, 200, `{}`)
	}), func(o *Options) { o.MaxThrottleWait = -1; o.Jitter = func() float64 { return 0 } })
	_, err := e.c.Get(context.Background(), Request{Path: "act_1/ads"})
	if ge, ok := AsError(err); !ok || ge.ThrottleScope() != ScopeApp {
		t.Fatalf("err=%v", err)
	}
	// Another account is paused too, and nothing is sent.
	_, err = e.c.Get(context.Background(), Request{Path: "act_2/ads"})
	if KindOf(err) != KindThrottled || calls.Load() != 1 {
		t.Fatalf("other account: err=%v calls=%d", err, calls.Load())
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_throttled_total", map[string]string{"account": "app"}); v != 1 {
		t.Fatalf("throttled_total{account=app} %v", v)
	}
	// With waiting allowed, the other account waits the 60 s fallback and then succeeds.
	e.c.maxThrottleWait = 5 * time.Minute
	if _, err := e.c.Get(context.Background(), Request{Path: "act_3/ads"}); err != nil {
		t.Fatal(err)
	}
	if s := e.clock.Sleeps(); len(s) != 1 || s[0] != 60*time.Second {
		t.Fatalf("sleeps %v", s)
	}
}

func TestBudgetLockIsNotRetriedNorPausesAccount(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 400, errBody(613, 1487632, ""))
			return
		}
		writeJSON(w, 200, `{"success":true}`)
	}), nil)
	_, err := e.c.Post(context.Background(), Request{Path: "777", Account: "act_1", Params: map[string][]string{"daily_budget": {"100"}}})
	ge, ok := AsError(err)
	if !ok || !ge.IsBudgetLocked() || errors.Is(err, ErrAnswerLost) {
		t.Fatalf("err=%v", err)
	}
	if _, err := e.c.Post(context.Background(), Request{Path: "778", Account: "act_1"}); err != nil || len(e.clock.Sleeps()) != 0 {
		t.Fatalf("account paused after a budget lock: %v %v", err, e.clock.Sleeps())
	}
}

func TestInsightsTimeoutNotRetried(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 500, errBody(2, 1504038, ""))
	}), nil)
	_, err := e.c.Get(context.Background(), Request{Path: "act_1/insights"})
	if ge, ok := AsError(err); !ok || !ge.IsInsightsTimeout() || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
}
