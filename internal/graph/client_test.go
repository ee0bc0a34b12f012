package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPagesFollowsNextWithOurToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var srvURL string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := params(r)
		mu.Lock()
		seen = append(seen, r.URL.Path+" after="+p.Get("after")+" token="+p.Get("access_token"))
		mu.Unlock()
		if r.URL.Path != "/v27.0/act_123/insights" {
			writeJSON(w, 404, `{"error":{"message":"unknown path","code":803}}`)
			return
		}
		if p.Get("access_token") != testToken || p.Get("level") != "ad" {
			writeJSON(w, 400, errBody(190, 0, ""))
			return
		}
		switch p.Get("after") {
		case "":
			// next with escaped slashes, as Graph writes them, and another token.
			next := strings.ReplaceAll(srvURL+"/v27.0/act_123/insights?access_token="+otherToken+"&level=ad&limit=2&after=P1", "/", `\/`)
			writeJSON(w, 200, `{"data":[{"ad_id":"1"},{"ad_id":"2"}],"paging":{"cursors":{"before":"B0","after":"P1"},"next":"`+next+`"}}`)
		case "P1":
			// next pointing at graph.facebook.com: the host is pinned to BaseURL.
			writeJSON(w, 200, `{"paging":{"cursors":{"before":"P1","after":"P2"},"next":"https://graph.facebook.com/v27.0/act_123/insights?access_token=`+otherToken+`&level=ad&after=P2"},"data":[{"ad_id":"3","nested":{"paging":{"next":"http://evil"}}}]}`)
		case "P2":
			writeJSON(w, 200, `{"data":[{"ad_id":"5"}],"paging":{"cursors":{"before":"P2","after":"P3"}}}`)
		default:
			writeJSON(w, 400, errBody(100, 0, ""))
		}
	})
	e := newEnv(t, h, nil)
	srvURL = e.srv.URL
	var pages []string
	err := e.c.Pages(context.Background(), Request{Path: "act_123/insights", Params: mustParams(t, map[string]any{"level": "ad", "limit": 2})},
		func(body []byte) error {
			pages = append(pages, string(body))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 {
		t.Fatalf("got %d pages, want 3: %v", len(pages), seen)
	}
	for _, s := range seen {
		if !strings.HasSuffix(s, "token="+testToken) {
			t.Errorf("request %q did not carry our token", s)
		}
	}
	if strings.Contains(strings.Join(seen, "\n"), otherToken) {
		t.Error("the token from paging.next was sent")
	}
}

func mustParams(t *testing.T, m map[string]any) map[string][]string {
	t.Helper()
	v, err := Params(m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPagesEndings(t *testing.T) {
	cases := []struct {
		name, body string
	}{
		{"empty data, no paging", `{"data":[]}`},
		{"empty data, cursors", `{"data":[],"paging":{"cursors":{"before":"MAZDZD","after":"MAZDZD"}}}`},
		{"cursors-only last page", `{"data":[{"id":"1"}],"paging":{"cursors":{"before":"a","after":"b"},"previous":"https://graph.facebook.com/v27.0/x?access_token=` + otherToken + `"}}`},
		{"whitespace", " \n{ \"data\" : [ ] , \"paging\" : { } }\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeJSON(w, 200, tc.body)
			}), nil)
			n := 0
			err := e.c.Pages(context.Background(), Request{Path: "act_1/campaigns"}, func([]byte) error { n++; return nil })
			if err != nil || n != 1 || calls.Load() != 1 {
				t.Fatalf("err=%v pages=%d calls=%d", err, n, calls.Load())
			}
		})
	}
}

func TestPagesStopsOnRepeatedNextAndCallbackError(t *testing.T) {
	var srvURL string
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"data":[1],"paging":{"next":"`+srvURL+`/v27.0/act_1/ads?after=X"}}`)
	}), nil)
	srvURL = e.srv.URL
	n := 0
	err := e.c.Pages(context.Background(), Request{Path: "act_1/ads"}, func([]byte) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "repeats") || n != 2 {
		t.Fatalf("err=%v n=%d", err, n)
	}
	stop := errors.New("stop")
	err = e.c.Pages(context.Background(), Request{Path: "act_1/ads"}, func([]byte) error { return stop })
	if err != stop {
		t.Fatalf("err=%v, want the callback's error", err)
	}
}

func TestErrorEnvelopeDecoding(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(t *testing.T, e *Error)
	}{
		{"error_data as string", `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":1885272,"error_user_title":"Budget Is Too Low","error_user_msg":"The budget must be at least $1.00","is_transient":false,"fbtrace_id":"AbC","error_data":"{\"blame_field_specs\":[[\"daily_budget\"]]}"}}`,
			func(t *testing.T, e *Error) {
				if e.Code != 100 || e.Subcode != 1885272 || e.FBTraceID != "AbC" || e.Type != "OAuthException" ||
					e.UserTitle != "Budget Is Too Low" || !e.IsBudgetTooLow() || e.Kind() != KindInvalidRequest {
					t.Errorf("%+v", e)
				}
				if len(e.BlameFieldSpecs) != 1 || e.BlameFieldSpecs[0][0] != "daily_budget" {
					t.Errorf("blame %v", e.BlameFieldSpecs)
				}
				if string(e.ErrorData) != `{"blame_field_specs":[["daily_budget"]]}` {
					t.Errorf("error_data %s", e.ErrorData)
				}
			}},
		{"error_data as object, codes as strings", `{"error":{"message":"m","code":"613","error_subcode":"1487632","error_data":{"blame_field_specs":[["a","b"]]},"fbtrace_id":"x"}}`,
			func(t *testing.T, e *Error) {
				if e.Code != 613 || e.Subcode != 1487632 || !e.IsBudgetLocked() || e.ThrottleScope() != ScopeObject {
					t.Errorf("%+v", e)
				}
				if len(e.BlameFieldSpecs) != 1 || e.BlameFieldSpecs[0][1] != "b" {
					t.Errorf("blame %v", e.BlameFieldSpecs)
				}
			}},
		{"top-level blame_field_specs, is_transient", `{"error":{"message":"m","code":1,"is_transient":true,"blame_field_specs":[["x"]]}}`,
			func(t *testing.T, e *Error) {
				if !e.IsTransient || e.Kind() != KindTransient || len(e.BlameFieldSpecs) != 1 {
					t.Errorf("%+v", e)
				}
			}},
		{"error_data empty string", `{"error":{"message":"m","code":100,"error_data":""}}`,
			func(t *testing.T, e *Error) {
				if e.ErrorData != nil {
					t.Errorf("error_data %q", e.ErrorData)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := decodeEnvelope([]byte(tc.body))
			if !ok {
				t.Fatal("not decoded")
			}
			tc.check(t, e)
		})
	}
	if _, ok := decodeEnvelope([]byte(`{"data":[]}`)); ok {
		t.Error("a data body decoded as an error")
	}
}

func TestClassification(t *testing.T) {
	cases := []struct {
		code, sub int
		transient bool
		kind      Kind
		scope     Scope
		helper    string
	}{
		{1, 0, false, KindTransient, ScopeNone, ""},
		{2, 0, false, KindTransient, ScopeNone, ""},
		{-2, 2490547, false, KindTransient, ScopeNone, ""},
		{999, 0, true, KindTransient, ScopeNone, ""},
		{2, 1504038, false, KindTransient, ScopeNone, "insights_timeout"},
		{100, 1504018, false, KindInvalidRequest, ScopeNone, "insights_timeout"},
		{2, 1504041, false, KindInvalidRequest, ScopeNone, ""},
		{4, 0, false, KindThrottled, ScopeApp, ""},
		{4, 1504022, false, KindThrottled, ScopeApp, ""},
		{17, 0, true, KindThrottled, ScopeApp, ""},
		{17, 2446079, false, KindThrottled, ScopeAccount, ""},
		{613, 1487742, false, KindThrottled, ScopeAccount, ""},
		{613, 5044001, false, KindThrottled, ScopeAccount, ""},
		{613, 1487632, false, KindThrottled, ScopeObject, "budget_locked"},
		{80000, 0, false, KindThrottled, ScopeAccount, ""},
		{80004, 2446079, false, KindThrottled, ScopeAccount, ""},
		{80014, 0, false, KindThrottled, ScopeAccount, ""},
		{341, 0, false, KindThrottled, ScopeApp, ""},
		{190, 463, false, KindAuth, ScopeNone, ""},
		{190, 0, false, KindAuth, ScopeNone, ""},
		{102, 0, false, KindAuth, ScopeNone, ""},
		{10, 0, false, KindPermission, ScopeNone, ""},
		{200, 0, false, KindPermission, ScopeNone, ""},
		{278, 0, false, KindPermission, ScopeNone, ""},
		{294, 0, false, KindPermission, ScopeNone, ""},
		{100, 0, false, KindInvalidRequest, ScopeNone, ""},
		{100, 1885272, false, KindInvalidRequest, ScopeNone, "budget_too_low"},
		{100, 1885650, false, KindInvalidRequest, ScopeNone, "budget_too_low"},
		{1487901, 0, false, KindOther, ScopeNone, "budget_too_low"},
		{100, 1885621, false, KindInvalidRequest, ScopeNone, "cbo_conflict"},
		{100, 4834002, false, KindInvalidRequest, ScopeNone, "cbo_conflict"},
		{2500, 0, false, KindInvalidRequest, ScopeNone, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%d", tc.code, tc.sub), func(t *testing.T) {
			e := &Error{Code: tc.code, Subcode: tc.sub, IsTransient: tc.transient}
			if e.Kind() != tc.kind || e.ThrottleScope() != tc.scope {
				t.Errorf("kind %v scope %v, want %v %v", e.Kind(), e.ThrottleScope(), tc.kind, tc.scope)
			}
			helpers := map[string]bool{
				"insights_timeout": e.IsInsightsTimeout(),
				"budget_locked":    e.IsBudgetLocked(),
				"budget_too_low":   e.IsBudgetTooLow(),
				"cbo_conflict":     e.IsCampaignBudgetConflict(),
			}
			for name, got := range helpers {
				if got != (name == tc.helper) {
					t.Errorf("%s = %v", name, got)
				}
			}
		})
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name  string
		first func(w http.ResponseWriter)
	}{
		{"http 503", func(w http.ResponseWriter) { writeJSON(w, 503, "<html>Service Unavailable</html>") }},
		{"http 500 with code 2", func(w http.ResponseWriter) { writeJSON(w, 500, errBody(2, 0, "")) }},
		{"is_transient", func(w http.ResponseWriter) { writeJSON(w, 400, errBody(1, 0, `"is_transient":true`)) }},
		{"code -2", func(w http.ResponseWriter) { writeJSON(w, 400, errBody(-2, 0, "")) }},
		{"dropped connection", hijackClose},
		{"truncated body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"data":[`))
		}},
		{"200 with Service Unavailable", func(w http.ResponseWriter) { writeJSON(w, 200, "Service Unavailable") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					tc.first(w)
					return
				}
				writeJSON(w, 200, `{"id":"1"}`)
			}), nil)
			body, err := e.c.Get(context.Background(), Request{Path: "1"})
			if err != nil || string(body) != `{"id":"1"}` {
				t.Fatalf("body=%s err=%v", body, err)
			}
			if calls.Load() != 2 {
				t.Fatalf("calls=%d, want 2", calls.Load())
			}
			if s := e.clock.Sleeps(); len(s) != 1 || s[0] < 500*time.Millisecond || s[0] > time.Second {
				t.Fatalf("backoff sleeps %v, want one in [0.5s,1s]", s)
			}
			if e.logs.FilterMessage("graph request retried").Len() != 1 {
				t.Error("retry not logged at warn")
			}
		})
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 500, errBody(2, 0, ""))
	}), func(o *Options) {
		o.Retry = RetryPolicy{MaxAttempts: 4, BaseBackoff: time.Second, MaxBackoff: 3 * time.Second}
	})
	_, err := e.c.Get(context.Background(), Request{Path: "act_9/ads"})
	if KindOf(err) != KindTransient || calls.Load() != 4 {
		t.Fatalf("err=%v kind=%v calls=%d", err, KindOf(err), calls.Load())
	}
	s := e.clock.Sleeps()
	if len(s) != 3 || s[1] < time.Second || s[2] > 3*time.Second {
		t.Fatalf("sleeps %v: want exponential backoff capped at 3s", s)
	}
}

func TestWriteAnswerLostIsNotRetried(t *testing.T) {
	cases := []struct {
		name  string
		first func(w http.ResponseWriter)
	}{
		{"dropped connection", hijackClose},
		{"http 502", func(w http.ResponseWriter) { writeJSON(w, 502, "bad gateway") }},
		{"transient code 2", func(w http.ResponseWriter) { writeJSON(w, 400, errBody(2, 0, "")) }},
		{"malformed 200", func(w http.ResponseWriter) { writeJSON(w, 200, `{"success":tr`) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					tc.first(w)
					return
				}
				writeJSON(w, 200, `{"success":true}`)
			}), nil)
			_, err := e.c.Post(context.Background(), Request{Path: "2345", Params: map[string][]string{"status": {"PAUSED"}}})
			if !errors.Is(err, ErrAnswerLost) || KindOf(err) != KindAnswerUnknown {
				t.Fatalf("err=%v kind=%v, want answer lost", err, KindOf(err))
			}
			if calls.Load() != 1 {
				t.Fatalf("write sent %d times", calls.Load())
			}
			// An idempotent write may be resent.
			body, err := e.c.Post(context.Background(), Request{Path: "2345", Idempotent: true})
			if err != nil || string(body) != `{"success":true}` {
				t.Fatalf("idempotent write: %s %v", body, err)
			}
		})
	}
}

func TestWriteNotSentIsRetried(t *testing.T) {
	// A connection refused never reached the server: safe to resend a write.
	e := newEnv(t, http.NotFoundHandler(), nil)
	e.srv.Close()
	_, err := e.c.Post(context.Background(), Request{Path: "1"})
	if errors.Is(err, ErrAnswerLost) || KindOf(err) != KindTransient {
		t.Fatalf("err=%v kind=%v", err, KindOf(err))
	}
	if len(e.clock.Sleeps()) != 2 {
		t.Fatalf("sleeps %v, want 2 retries", e.clock.Sleeps())
	}
}

func TestAuthExpired(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if fail.Load() {
			writeJSON(w, 400, `{"error":{"message":"Error validating access token: Session has expired on Friday, 20-Nov-26 09:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"FBT463"}}`)
			return
		}
		writeJSON(w, 200, `{"id":"act_1"}`)
	}), nil)
	_, err := e.c.Get(context.Background(), Request{Path: "act_1"})
	ge, ok := AsError(err)
	if !ok || ge.Kind() != KindAuth || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
	msg := err.Error()
	for _, want := range []string{"access token expired", "code 190", "subcode 463", "fbtrace_id FBT463", "GET /act_{id}", "act_1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_auth_ok", map[string]string{"token": "token-file"}); v != 0 {
		t.Errorf("auth_ok = %v, want 0", v)
	}
	fail.Store(false)
	if _, err := e.c.Get(context.Background(), Request{Path: "act_1"}); err != nil {
		t.Fatal(err)
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_auth_ok", map[string]string{"token": "token-file"}); v != 1 {
		t.Errorf("auth_ok = %v, want 1", v)
	}
}

func TestMalformedAnswers(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		kind       Kind
		want       string
	}{
		{"truncated JSON", `{"data":[{"id":"1"`, 200, KindBadResponse, "malformed JSON"},
		{"HTML page", `<html><body>oops</body></html>`, 200, KindBadResponse, "malformed JSON"},
		{"Service Unavailable in 200", `Service Unavailable`, 200, KindTransient, "Service Unavailable"},
		{"404 without envelope", `not found`, 404, KindBadResponse, "HTTP 404"},
		{"trailing garbage", `{"id":"1"} x`, 200, KindBadResponse, "malformed JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) }), nil)
			_, err := e.c.Get(context.Background(), Request{Path: "123"})
			if KindOf(err) != tc.kind || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("err=%v kind=%v", err, KindOf(err))
			}
		})
	}
}

func TestErrorIn200Answer(t *testing.T) {
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, errBody(100, 33, "")) }), nil)
	_, err := e.c.Get(context.Background(), Request{Path: "123"})
	if ge, ok := AsError(err); !ok || ge.Code != 100 || ge.Subcode != 33 {
		t.Fatalf("err=%v", err)
	}
}

func TestAppSecretProof(t *testing.T) {
	// RFC-style HMAC-SHA256 vector: key "key", message "The quick brown fox jumps over the lazy dog".
	if got := AppSecretProof(NewSecret("key"), NewSecret("The quick brown fox jumps over the lazy dog")); got != "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Fatalf("proof %s", got)
	}
	want := AppSecretProof(NewSecret(testSecret), NewSecret(testToken))
	var got []string
	var mu sync.Mutex
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+params(r).Get("appsecret_proof"))
		mu.Unlock()
		writeJSON(w, 200, `{"success":true}`)
	}), func(o *Options) { o.AppSecret = NewSecret(testSecret) })
	if _, err := e.c.Get(context.Background(), Request{Path: "1", Params: map[string][]string{"appsecret_proof": {"forged"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Post(context.Background(), Request{Path: "1"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "GET "+want || got[1] != "POST "+want {
		t.Fatalf("proofs %v, want %s", got, want)
	}
}

func TestPostEncoding(t *testing.T) {
	var form map[string][]string
	var ctype string
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctype = r.Header.Get("Content-Type")
		_ = r.ParseForm()
		form = r.PostForm
		writeJSON(w, 200, `{"success":true}`)
	}), nil)
	p := mustParams(t, map[string]any{
		"status":            "PAUSED",
		"daily_budget":      6000,
		"execution_options": []string{"validate_only"},
		"is_autobid":        true,
		"targeting":         map[string]any{"geo_locations": map[string]any{"countries": []string{"US"}}, "age_min": 18},
	})
	if _, err := e.c.Post(context.Background(), Request{Path: "123", Params: p}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"status": "PAUSED", "daily_budget": "6000", "execution_options": `["validate_only"]`, "is_autobid": "true",
		"targeting": `{"age_min":18,"geo_locations":{"countries":["US"]}}`, "access_token": testToken,
	}
	for k, v := range want {
		if got := strings.Join(form[k], ","); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if ctype != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", ctype)
	}
}

func TestMaxInFlight(t *testing.T) {
	var cur, peak atomic.Int32
	release := make(chan struct{})
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
		writeJSON(w, 200, `{}`)
	}), func(o *Options) { o.MaxInFlight = 3 })
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.c.Get(context.Background(), Request{Path: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "3 requests in flight", func() bool { return cur.Load() == 3 })
	time.Sleep(20 * time.Millisecond) // give a 4th request the chance to (wrongly) arrive
	close(release)
	wg.Wait()
	if peak.Load() != 3 {
		t.Fatalf("peak in flight %d, want 3", peak.Load())
	}
}

func TestContextCancelReturnsPromptly(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}), func(o *Options) { o.Timeout = time.Minute })
	t.Run("in flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.c.Get(ctx, Request{Path: "act_1/insights"})
		if !errors.Is(err, context.Canceled) || KindOf(err) != KindCanceled || time.Since(start) > 2*time.Second {
			t.Fatalf("err=%v kind=%v after %v", err, KindOf(err), time.Since(start))
		}
		if strings.Contains(err.Error(), "http://") || strings.Contains(err.Error(), testToken) {
			t.Fatalf("error leaks the URL: %v", err)
		}
	})
	t.Run("write in flight is answer-lost", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		_, err := e.c.Post(ctx, Request{Path: "55"})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrAnswerLost) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("during a throttle wait", func(t *testing.T) {
		clock := newClock(false)
		e2 := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, errBody(80004, 2446079, ""))
		}), func(o *Options) { o.Now, o.Sleep = clock.Now, clock.Sleep })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := e2.c.Get(ctx, Request{Path: "act_7/ads"}); done <- err }()
		waitFor(t, "the throttle wait", func() bool { return clock.Waiters() == 1 })
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err=%v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Get did not return after cancel")
		}
	})
}

func TestPerAttemptTimeout(t *testing.T) {
	var calls atomic.Int32
	block := make(chan struct{})
	defer close(block)
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 || r.Method == http.MethodPost {
			select {
			case <-block:
			case <-r.Context().Done():
			}
			return
		}
		writeJSON(w, 200, `{"id":"1"}`)
	}), func(o *Options) { o.Timeout = 50 * time.Millisecond })
	if _, err := e.c.Get(context.Background(), Request{Path: "1"}); err != nil {
		t.Fatalf("timed-out read not retried: %v", err)
	}
	_, err := e.c.Post(context.Background(), Request{Path: "1"})
	if !errors.Is(err, ErrAnswerLost) || !errors.Is(err, context.DeadlineExceeded) || KindOf(err) != KindAnswerUnknown {
		t.Fatalf("timed-out write: %v", err)
	}
}
