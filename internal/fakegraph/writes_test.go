package fakegraph

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestBudgetRules(t *testing.T) {
	e := newEnv(t, Options{})
	us := e.fixture("USD", "America/Los_Angeles")
	jp := e.fixture("JPY", "Asia/Tokyo")
	for _, tc := range []struct {
		name     string
		id       string
		kv       []string
		code     int
		sub      int
		wantBudg int64
	}{
		{"ad set budget inside CBO", us.cboSet, []string{"daily_budget", "3000"}, 100, 1885621, 0},
		{"campaign budget without CBO", us.plain, []string{"daily_budget", "3000"}, 100, 1885621, 0},
		{"usd below minimum", us.set, []string{"daily_budget", "99"}, 100, 1885272, 2000},
		{"usd at minimum", us.set, []string{"daily_budget", "100"}, 0, 0, 100},
		{"jpy below minimum", jp.set, []string{"daily_budget", "99"}, 100, 1885272, 2000},
		{"jpy at minimum", jp.set, []string{"daily_budget", "100"}, 0, 0, 100},
		{"cbo campaign budget", us.cbo, []string{"daily_budget", "7000"}, 0, 0, 7000},
		{"not a number", us.set, []string{"daily_budget", "12.5"}, 100, 0, 100},
		{"invalid status", us.set, []string{"status", "PAUSE"}, 100, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/v25.0/"+tc.id, tc.kv...)
			code, sub := r.errCode()
			if code != tc.code || sub != tc.sub {
				t.Fatalf("got %d/%d, want %d/%d: %s", code, sub, tc.code, tc.sub, r.raw)
			}
			if code == 0 && r.body["success"] != true {
				t.Fatalf("%s", r.raw)
			}
			if o, _ := e.s.Object(tc.id); o.DailyBudget != tc.wantBudg {
				t.Fatalf("budget now %d, want %d", o.DailyBudget, tc.wantBudg)
			}
		})
	}
	r := e.post("/v25.0/"+us.set, "daily_budget", "5")
	if m := r.body["error"].(map[string]any); m["error_user_title"] != "Budget Is Too Low" || m["error_user_msg"] != "The budget for this ad set must be at least $1.00 per day." {
		t.Fatalf("%s", r.raw)
	}
}

func TestBudgetChangeLimit(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	for i := 1; i <= 4; i++ {
		if r := e.post("/v25.0/"+f.set, "daily_budget", strconv.Itoa(2000+i*100)); r.status != 200 {
			t.Fatalf("change %d: %s", i, r.raw)
		}
		e.clock.Advance(time.Minute)
	}
	if r := e.post("/v25.0/"+f.set, "status", "PAUSED"); r.status != 200 {
		t.Fatalf("status changes are not budget changes: %s", r.raw)
	}
	r := e.post("/v25.0/"+f.set, "daily_budget", "9000")
	if c, sub := r.errCode(); c != 613 || sub != 1487632 {
		t.Fatalf("5th change: %s", r.raw)
	}
	if o, _ := e.s.Object(f.set); o.DailyBudget != 2400 || o.BudgetLockedUntil.IsZero() {
		t.Fatalf("%+v", o)
	}
	// Locked for an hour from the refusal, even after the first changes leave the window.
	e.clock.Advance(59 * time.Minute)
	if c, _ := e.post("/v25.0/"+f.set, "daily_budget", "9000").errCode(); c != 613 {
		t.Fatal("lock lifted early")
	}
	e.clock.Advance(2 * time.Minute)
	if r := e.post("/v25.0/"+f.set, "daily_budget", "9000"); r.status != 200 {
		t.Fatalf("after the lock: %s", r.raw)
	}
	// The write log has every applied change with old and new values.
	var budgets []string
	for _, w := range e.s.Writes() {
		if w.Field == "daily_budget" {
			budgets = append(budgets, w.Old+">"+w.New)
		}
	}
	if len(budgets) != 5 || budgets[0] != "2000>2100" || budgets[4] != "2400>9000" {
		t.Fatalf("write log: %v", budgets)
	}
}

func TestArchivedAndDeleted(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	_ = e.s.SetStatus(f.set, StatusArchived)
	if c, _ := e.post("/v25.0/"+f.set, "daily_budget", "3000").errCode(); c != 100 {
		t.Fatal("archived budget edit accepted")
	}
	if c, _ := e.post("/v25.0/"+f.set, "status", "ACTIVE").errCode(); c != 100 {
		t.Fatal("archived re-activated")
	}
	if r := e.post("/v25.0/"+f.set, "name", "renamed"); r.status != 200 {
		t.Fatalf("rename: %s", r.raw)
	}
	if r := e.do(http.MethodDelete, "/v25.0/"+f.set, nil); r.status != 200 {
		t.Fatalf("delete: %s", r.raw)
	}
	if c, sub := e.post("/v25.0/"+f.set, "status", "PAUSED").errCode(); c != 100 || sub != 1487056 {
		t.Fatalf("deleted edit: %d/%d", c, sub)
	}
	// Deleted objects leave default edges.
	r := e.get("/v25.0/"+f.plain+"/adsets", "fields", "id")
	if len(list(t, r.body, "data")) != 0 {
		t.Fatalf("%s", r.raw)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	e.s.Inject(FaultRule{Path: "/" + f.ad3, Fault: Fault{Kind: FaultDrop}})
	ops := []map[string]string{
		{"method": "POST", "relative_url": f.ad1, "body": "status=PAUSED"},
		{"method": "POST", "relative_url": "v25.0/" + f.cboSet, "body": "daily_budget=5000"},
		{"method": "GET", "relative_url": "v25.0/" + f.ad2 + "?fields=name,status"},
		{"method": "POST", "relative_url": f.ad3, "body": "status=PAUSED"},
		{"method": "GET", "relative_url": "v25.0/" + f.acct + "/insights?fields=spend"},
	}
	raw, _ := json.Marshal(ops)
	r := e.post("/v25.0/", "batch", string(raw), "include_headers", "true")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var items []*struct {
		Code    int
		Headers []struct{ Name, Value string }
		Body    string
	}
	if err := json.Unmarshal(r.raw, &items); err != nil || len(items) != 5 {
		t.Fatalf("%v %s", err, r.raw)
	}
	wantCodes := []int{200, 400, 200, -1, 200}
	for i, it := range items {
		if wantCodes[i] == -1 {
			if it != nil {
				t.Fatalf("item %d should be null", i)
			}
			continue
		}
		if it.Code != wantCodes[i] {
			t.Fatalf("item %d code %d: %s", i, it.Code, it.Body)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(it.Body), &body); err != nil {
			t.Fatalf("item %d body is not a JSON string: %v", i, err)
		}
		hdr := map[string]string{}
		for _, h := range it.Headers {
			hdr[h.Name] = h.Value
		}
		if hdr["Content-Type"] != "text/javascript; charset=UTF-8" || hdr["X-Business-Use-Case-Usage"] == "" {
			t.Fatalf("item %d headers %v", i, hdr)
		}
		if it.Code >= 400 && hdr["Www-Authenticate"] == "" {
			t.Fatalf("error item without WWW-Authenticate: %v", hdr)
		}
	}
	if o, _ := e.s.Object(f.ad1); o.Status != StatusPaused {
		t.Fatal("batch write not applied")
	}
	if o, _ := e.s.Object(f.ad3); o.Status != StatusActive {
		t.Fatal("dropped item applied")
	}
	big := make([]map[string]string, 51)
	for i := range big {
		big[i] = map[string]string{"method": "GET", "relative_url": f.ad1}
	}
	raw, _ = json.Marshal(big)
	if c, _ := e.post("/", "batch", string(raw)).errCode(); c != 100 {
		t.Fatal("51 operations accepted")
	}
	if c := e.s.Counters(); c["POST /{ad_id}"] != 2 || c["POST /{ver}/"] != 1 || c["POST /{ver}/{adset_id}"] != 1 {
		t.Fatalf("counters: %v", e.s.Counters())
	}
}
