package fakegraph

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func bucEntry(t *testing.T, r result, acct, typ string) map[string]any {
	t.Helper()
	var buc map[string][]map[string]any
	if err := json.Unmarshal([]byte(r.header.Get("X-Business-Use-Case-Usage")), &buc); err != nil {
		t.Fatalf("BUC header %q: %v", r.header.Get("X-Business-Use-Case-Usage"), err)
	}
	for _, e := range buc[strings.TrimPrefix(acct, "act_")] {
		if e["type"] == typ {
			return e
		}
	}
	t.Fatalf("no %s entry in %v", typ, buc)
	return nil
}

func TestUsageHeadersAndThrottling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mgmtCode int
		path     string
		typ      string
		code     int
		sub      int
	}{
		{"management 80004", 0, "", "ads_management", 80004, 2446079},
		{"management 17", 17, "", "ads_management", 17, 2446079},
		{"management 613", 613, "", "ads_management", 613, 1487742},
		{"insights 80000", 0, "/insights", "ads_insights", 80000, 2446079},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{Usage: UsageOptions{ManagementBudget: 10, InsightsBudget: 10, ManagementCode: tc.mgmtCode}})
			f := e.fixture("USD", "America/Los_Angeles")
			last := -1.0
			for i := 0; i < 10; i++ {
				r := e.get("/v25.0/" + f.acct + tc.path)
				if r.status != 200 {
					t.Fatalf("call %d: %s", i, r.raw)
				}
				cc := bucEntry(t, r, f.acct, tc.typ)["call_count"].(float64)
				if cc <= last {
					t.Fatalf("usage did not grow: %v after %v", cc, last)
				}
				last = cc
				if r.header.Get("X-App-Usage") == "" || (tc.path != "") != (r.header.Get("X-FB-Ads-Insights-Throttle") != "") {
					t.Fatalf("headers: %v", r.header)
				}
			}
			r := e.get("/v25.0/" + f.acct + tc.path)
			if c, sub := r.errCode(); r.status != 400 || c != tc.code || sub != tc.sub {
				t.Fatalf("over budget: %d %s", r.status, r.raw)
			}
			if e := r.body["error"].(map[string]any); e["type"] != "OAuthException" || e["error_user_title"] != nil && tc.code != 613 {
				t.Fatalf("throttle body: %s", r.raw)
			}
			if m := bucEntry(t, r, f.acct, tc.typ)["estimated_time_to_regain_access"].(float64); m < 1 || m > 5 {
				t.Fatalf("regain %v", m)
			}
			if !e.s.Usage(f.acct).Throttled {
				t.Fatal("Usage() does not say throttled")
			}
			e.clock.Advance(5*time.Minute + time.Second)
			if r := e.get("/v25.0/" + f.acct + tc.path); r.status != 200 {
				t.Fatalf("did not recover: %s", r.raw)
			}
		})
	}
	// Writes cost 3 points.
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	e.post("/v25.0/"+f.ad1, "status", "PAUSED")
	if u := e.s.Usage(f.acct); u.Management != 3.0/9000*100 {
		t.Fatalf("write points: %+v", u)
	}
	// App-wide budget gives code 4.
	e = newEnv(t, Options{Usage: UsageOptions{AppBudget: 2}})
	f = e.fixture("USD", "America/Los_Angeles")
	e.get("/v25.0/" + f.ad1)
	e.get("/v25.0/" + f.ad2)
	if c, _ := e.get("/v25.0/" + f.ad3).errCode(); c != 4 {
		t.Fatal("no app limit")
	}
}

func TestThrottleAccount(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	other := e.fixture("EUR", "Europe/Berlin")
	e.s.ThrottleAccount(f.acct, 10*time.Minute)
	r := e.get("/v25.0/"+f.acct+"/insights", "fields", "spend")
	if c, _ := r.errCode(); c != 80000 {
		t.Fatalf("%s", r.raw)
	}
	if m := bucEntry(t, r, f.acct, "ads_insights")["estimated_time_to_regain_access"]; m != float64(10) {
		t.Fatalf("regain %v", m)
	}
	if c, _ := e.post("/v25.0/"+f.ad1, "status", "PAUSED").errCode(); c != 80004 {
		t.Fatal("writes not throttled")
	}
	if r := e.get("/v25.0/" + other.ad1); r.status != 200 {
		t.Fatal("other account throttled")
	}
	e.clock.Advance(11 * time.Minute)
	if r := e.get("/v25.0/" + f.ad1); r.status != 200 {
		t.Fatal("throttle did not end")
	}
}

func TestScriptedErrors(t *testing.T) {
	cases := []struct{ code, sub, status int }{
		{4, 0, 400}, {17, 2446079, 400}, {613, 1487742, 400}, {613, 1487632, 400}, {80000, 2446079, 400},
		{80004, 2446079, 400}, {190, 463, 400}, {190, 0, 400}, {200, 0, 400}, {100, 1885272, 400},
		{100, 1885621, 400}, {2, 0, 400}, {1, 0, 500}, {100, 1504018, 400},
	}
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	for _, tc := range cases {
		e.s.Inject(FaultRule{Method: "GET", Path: f.acct + "/insights", Times: 2, Fault: ErrorFault(tc.code, tc.sub)})
		for i := 0; i < 2; i++ {
			r := e.get("/v25.0/"+f.acct+"/insights", "fields", "spend")
			code, sub := r.errCode()
			if r.status != tc.status || code != tc.code || sub != tc.sub {
				t.Fatalf("%d/%d: got %d %d/%d %s", tc.code, tc.sub, r.status, code, sub, r.raw)
			}
			tr := r.body["error"].(map[string]any)["is_transient"] == true
			if want := tc.code == 1 || tc.code == 2; want && !tr {
				t.Fatalf("%d not transient: %s", tc.code, r.raw)
			}
		}
		if r := e.get("/v25.0/"+f.acct+"/insights", "fields", "spend"); r.status != 200 {
			t.Fatalf("fault outlived its count: %s", r.raw)
		}
	}
	if e.s.PendingFaults() != 0 {
		t.Fatal("rules left")
	}
	// Only matching requests consume the rule.
	e.s.Inject(FaultRule{Method: "POST", Account: f.acct, Fault: ErrorFault(190, 463)})
	if r := e.get("/v25.0/" + f.ad1); r.status != 200 {
		t.Fatal("GET consumed a POST rule")
	}
	if c, sub := e.post("/v25.0/"+f.ad1, "status", "PAUSED").errCode(); c != 190 || sub != 463 {
		t.Fatal("POST rule did not fire")
	}
	if o, _ := e.s.Object(f.ad1); o.Status != StatusActive {
		t.Fatal("error fault applied the write")
	}
}

func TestFaultKinds(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	status := func(id string) string { o, _ := e.s.Object(id); return o.Status }

	e.s.Inject(FaultRule{Path: f.ad1, Fault: Fault{Kind: FaultDrop}})
	if r := e.post("/v25.0/"+f.ad1, "status", "PAUSED"); r.err == nil || r.status != 0 {
		t.Fatalf("drop: got an answer %d", r.status)
	}
	if status(f.ad1) != StatusActive {
		t.Fatal("drop applied the write")
	}

	e.s.Inject(FaultRule{Path: f.ad1, Fault: Fault{Kind: FaultDropAfterApply}})
	if r := e.post("/v25.0/"+f.ad1, "status", "PAUSED"); r.status != 0 {
		t.Fatalf("drop after apply answered %d", r.status)
	}
	if status(f.ad1) != StatusPaused {
		t.Fatal("drop after apply did not apply")
	}

	e.s.Inject(FaultRule{Path: f.set, Fault: Fault{Kind: FaultNoop}})
	if r := e.post("/v25.0/"+f.set, "daily_budget", "4000"); r.status != 200 || r.body["success"] != true {
		t.Fatalf("noop: %s", r.raw)
	}
	if o, _ := e.s.Object(f.set); o.DailyBudget != 2000 {
		t.Fatal("noop changed the budget")
	}

	e.s.Inject(FaultRule{Path: f.ad2, Fault: Fault{Kind: FaultMalformed}})
	if r := e.get("/v25.0/"+f.ad2, "fields", "name,status"); r.status != 200 || r.err == nil {
		t.Fatalf("malformed parsed fine: %s", r.raw)
	}

	e.s.Inject(FaultRule{Path: f.ad2, Fault: Fault{Kind: Fault5xx}})
	if r := e.get("/v25.0/" + f.ad2); r.status != http.StatusBadGateway {
		t.Fatalf("5xx: %d", r.status)
	}

	e.s.Inject(FaultRule{Path: f.ad2, Fault: Fault{Kind: FaultDelay, Delay: 20 * time.Millisecond}})
	start := time.Now()
	if r := e.get("/v25.0/" + f.ad2); r.status != 200 || time.Since(start) < 20*time.Millisecond {
		t.Fatal("delay")
	}

	e.s.SetLatency(15 * time.Millisecond)
	start = time.Now()
	e.get("/v25.0/" + f.ad2)
	if time.Since(start) < 15*time.Millisecond {
		t.Fatal("latency not applied")
	}
	e.s.ClearFaults()

	// Rates are drawn from the seeded source: the same seed gives the same outcomes.
	outcomes := func() string {
		e := newEnv(t, Options{Seed: 99})
		f := e.fixture("USD", "America/Los_Angeles")
		e.s.SetFaultRates(FaultRates{Drop: 0.2, Status5xx: 0.2, Malformed: 0.2})
		var b strings.Builder
		for i := 0; i < 40; i++ {
			r := e.get("/v25.0/" + f.ad1)
			switch {
			case r.status == 0:
				b.WriteByte('D')
			case r.status == 502:
				b.WriteByte('5')
			case r.err != nil:
				b.WriteByte('M')
			default:
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a := outcomes()
	if a != outcomes() || !strings.Contains(a, "D") || !strings.Contains(a, "5") || !strings.Contains(a, "M") || !strings.Contains(a, ".") {
		t.Fatalf("rates: %s", a)
	}
	var logged int
	for _, rec := range e.s.Requests() {
		if rec.Fault != "" {
			logged++
		}
	}
	if logged < 6 {
		t.Fatalf("faults not logged: %d", logged)
	}
}

func TestAuth(t *testing.T) {
	const secret = "s3cret"
	// Fixture accounts are numbered from act_100000000000001 on a fresh server.
	e := newEnv(t, Options{Tokens: []string{"good", "limited"}, AppSecret: secret,
		AccountTokens: map[string][]string{"act_100000000000002": {"good"}}})
	f := e.fixture("USD", "America/Los_Angeles")
	other := e.fixture("USD", "America/Los_Angeles")
	proof := AppSecretProof(secret, "good")
	for _, tc := range []struct {
		name   string
		params url.Values
		path   string
		code   int
	}{
		{"ok", url.Values{"access_token": {"good"}, "appsecret_proof": {proof}}, f.ad1, 0},
		{"missing proof", url.Values{"access_token": {"good"}}, f.ad1, 100},
		{"wrong proof", url.Values{"access_token": {"good"}, "appsecret_proof": {AppSecretProof("x", "good")}}, f.ad1, 100},
		{"wrong token", url.Values{"access_token": {"bad"}, "appsecret_proof": {AppSecretProof(secret, "bad")}}, f.ad1, 190},
		{"no token", url.Values{"access_token": {""}}, f.ad1, 104},
		{"account not permitted", url.Values{"access_token": {"limited"}, "appsecret_proof": {AppSecretProof(secret, "limited")}}, other.acct + "/insights", 200},
		{"permitted", url.Values{"access_token": {"good"}, "appsecret_proof": {proof}}, other.acct + "/insights", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodGet, "/v25.0/"+tc.path, tc.params)
			if c, _ := r.errCode(); c != tc.code {
				t.Fatalf("code %d, want %d: %s", c, tc.code, r.raw)
			}
		})
	}
	// Bearer header works too; logs never hold the token.
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v25.0/"+f.ad1+"?appsecret_proof="+proof, nil)
	req.Header.Set("Authorization", "Bearer good")
	if r := e.send(req); r.status != 200 {
		t.Fatalf("bearer: %s", r.raw)
	}
	for _, rec := range e.s.Requests() {
		if v := rec.Params.Get("access_token"); v != "" && v != Redacted {
			t.Fatalf("token in log: %v", rec.Params)
		}
	}
	e2 := newEnv(t, Options{MinVersion: 24})
	f2 := e2.fixture("USD", "America/Los_Angeles")
	if c, _ := e2.get("/v23.0/" + f2.ad1).errCode(); c != 2635 {
		t.Fatal("old version accepted")
	}
	if r := e2.get("/v27.0/" + f2.ad1); r.status != 200 {
		t.Fatal("new version refused")
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Options{})
	ids, _ := e.s.Generate(5, GenSpec{Accounts: 2})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			acct := ids[g%2]
			ads := e.s.Objects(acct, KindAd)
			for i := 0; i < 10; i++ {
				switch i % 4 {
				case 0:
					e.get("/v25.0/"+acct+"/insights", "level", "ad", "date_preset", "last_7d")
				case 1:
					e.post("/v25.0/"+ads[(g+i)%len(ads)].ID, "status", "PAUSED")
				case 2:
					e.get("/v25.0/"+acct+"/adsets", "fields", "daily_budget,effective_status")
				default:
					e.clock.Advance(time.Minute)
					_ = e.s.AddDaily(ads[i%len(ads)].ID, e.s.Day(acct, 0), DayMetrics{Spend: 1, Impressions: 10})
				}
			}
		}(g)
	}
	wg.Wait()
	if len(e.s.Requests()) != 8*8 {
		t.Fatalf("requests logged: %d", len(e.s.Requests()))
	}
}
