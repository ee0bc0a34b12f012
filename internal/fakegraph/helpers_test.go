package fakegraph

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is 2026-03-12 15:02:47 in Los Angeles (PDT), 2026-03-13 07:02:47 in Tokyo.
var t0 = time.Date(2026, 3, 12, 22, 2, 47, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     testing.TB
	s     *Server
	ts    *httptest.Server
	clock *clock
	token string
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	c := &clock{t: t0}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	tok := DefaultToken
	if len(opts.Tokens) > 0 {
		tok = opts.Tokens[0]
	}
	return &env{t: t, s: s, ts: ts, clock: c, token: tok}
}

type result struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	err    error // transport error
}

func (r result) errCode() (code, sub int) {
	e, _ := r.body["error"].(map[string]any)
	if e == nil {
		return 0, 0
	}
	c, _ := e["code"].(float64)
	s, _ := e["error_subcode"].(float64)
	return int(c), int(s)
}

func (e *env) do(method, path string, params url.Values) result {
	e.t.Helper()
	if params == nil {
		params = url.Values{}
	}
	if !params.Has("access_token") {
		params.Set("access_token", e.token)
	}
	var req *http.Request
	var err error
	if method == http.MethodGet || method == http.MethodDelete {
		req, err = http.NewRequest(method, e.ts.URL+path+"?"+params.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, e.ts.URL+path, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) result {
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: raw, err: err}
	if err == nil {
		r.err = json.Unmarshal(raw, &r.body)
	}
	return r
}

func (e *env) get(path string, kv ...string) result {
	e.t.Helper()
	return e.do(http.MethodGet, path, pairs(kv))
}

func (e *env) post(path string, kv ...string) result {
	e.t.Helper()
	return e.do(http.MethodPost, path, pairs(kv))
}

func pairs(kv []string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// fixture is a small hand-built account used by several tests.
type fixture struct {
	acct, cbo, plain, cboSet, set, ad1, ad2, ad3 string
}

func (e *env) fixture(currency, tz string) fixture {
	s := e.s
	var f fixture
	f.acct = Must(s.AddAccount(Account{Currency: currency, TimezoneName: tz}))
	f.cbo = Must(s.AddCampaign(Campaign{AccountID: f.acct, DailyBudget: 5000, CreatedTime: t0.Add(-90 * 24 * time.Hour)}))
	f.plain = Must(s.AddCampaign(Campaign{AccountID: f.acct, Objective: "OUTCOME_LEADS", CreatedTime: t0.Add(-90 * 24 * time.Hour)}))
	f.cboSet = Must(s.AddAdSet(AdSet{CampaignID: f.cbo}))
	f.set = Must(s.AddAdSet(AdSet{CampaignID: f.plain, DailyBudget: 2000, BidAmount: 150, BidStrategy: "COST_CAP"}))
	f.ad1 = Must(s.AddAd(Ad{AdSetID: f.cboSet, Name: "winner"}))
	f.ad2 = Must(s.AddAd(Ad{AdSetID: f.set, Name: "loser"}))
	f.ad3 = Must(s.AddAd(Ad{AdSetID: f.set, Name: "idle"}))
	return f
}

func list(t testing.TB, body map[string]any, key string) []map[string]any {
	t.Helper()
	raw, _ := body[key].([]any)
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i], _ = r.(map[string]any)
	}
	return out
}
