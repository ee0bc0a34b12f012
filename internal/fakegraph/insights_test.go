package fakegraph

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestInsightsWireFormat(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	y := e.s.Day(f.acct, -1)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.s.SetDaily(f.ad1, y, DayMetrics{Spend: 20.5, Impressions: 1000, Reach: 800, Clicks: 30, LinkClicks: 20,
		Purchases: 2, PurchaseValue: 120, Actions: map[string]float64{"omni_purchase": 1}}))
	must(e.s.SetDaily(f.ad2, y, DayMetrics{Spend: 60, Impressions: 3000, Reach: 2000}))
	// ad3 has no delivery: no row.
	r := e.get("/v25.0/"+f.acct+"/insights", "level", "ad", "date_preset", "yesterday",
		"fields", "ad_id,spend,impressions,clicks,ctr,cpc,actions,action_values,purchase_roas,cost_per_action_type")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	rows := list(t, r.body, "data")
	if len(rows) != 2 {
		t.Fatalf("rows: %s", r.raw)
	}
	w, l := rows[0], rows[1]
	if w["ad_id"] != f.ad1 || l["ad_id"] != f.ad2 {
		t.Fatalf("order: %s", r.raw)
	}
	for _, k := range []string{"spend", "impressions", "clicks", "ctr", "cpc"} {
		if _, ok := w[k].(string); !ok {
			t.Fatalf("%s not a string: %#v", k, w[k])
		}
	}
	if w["spend"] != "20.5" || w["ctr"] != "3" || w["date_start"] != y || w["date_stop"] != y {
		t.Fatalf("winner row: %s", r.raw)
	}
	if l["clicks"] != "0" {
		t.Fatalf("requested counters come back as \"0\": %v", l["clicks"])
	}
	for _, k := range []string{"actions", "action_values", "purchase_roas", "cost_per_action_type", "cpc", "ctr"} {
		if _, ok := l[k]; ok && k != "ctr" {
			t.Fatalf("empty/undefined %s must be omitted: %s", k, r.raw)
		}
	}
	acts := map[string]string{}
	for _, a := range w["actions"].([]any) {
		m := a.(map[string]any)
		if len(m) != 2 {
			t.Fatalf("attribution keys without asking: %v", m)
		}
		acts[m["action_type"].(string)] = m["value"].(string)
	}
	if acts["purchase"] != "2" || acts["offsite_conversion.fb_pixel_purchase"] != "2" || acts["omni_purchase"] != "3" || acts["link_click"] != "20" {
		t.Fatalf("actions: %v", acts)
	}
	if roas := w["purchase_roas"].([]any)[0].(map[string]any); roas["action_type"] != "omni_purchase" {
		t.Fatalf("roas: %v", roas)
	}
	// Attribution windows appear only when requested.
	r = e.get("/v25.0/"+f.ad1+"/insights", "date_preset", "yesterday", "fields", "actions", "action_attribution_windows", `["7d_click","1d_view"]`)
	a := list(t, r.body, "data")[0]["actions"].([]any)[0].(map[string]any)
	if _, ok := a["7d_click"]; !ok {
		t.Fatalf("windows: %s", r.raw)
	}
	// Unknown field, breakdowns: 100.
	for _, kv := range [][]string{{"fields", "spend,nonsense"}, {"breakdowns", "age"}, {"date_preset", "last_2_weeks"}, {"level", "creative"}} {
		r := e.get("/v25.0/"+f.acct+"/insights", kv...)
		if c, _ := r.errCode(); c != 100 {
			t.Fatalf("%v: %s", kv, r.raw)
		}
	}
}

func TestInsightsPurchaseOrderVaries(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	orders := map[string]bool{}
	for d := 1; d <= 8; d++ {
		date := e.s.Day(f.acct, -d)
		_ = e.s.SetDaily(f.ad1, date, DayMetrics{Spend: 1, Impressions: 10, Purchases: 1, PurchaseValue: 5})
		r := e.get("/v25.0/"+f.ad1+"/insights", "fields", "actions", "time_range", `{"since":"`+date+`","until":"`+date+`"}`)
		var types []string
		for _, a := range list(t, r.body, "data")[0]["actions"].([]any) {
			types = append(types, a.(map[string]any)["action_type"].(string))
		}
		orders[strings.Join(types, ",")] = true
	}
	if len(orders) < 2 {
		t.Fatalf("purchase types always in the same order: %v", orders)
	}
}

func TestInsightsRangesInAccountTimeZone(t *testing.T) {
	e := newEnv(t, Options{})
	us := e.fixture("USD", "America/Los_Angeles") // today 2026-03-12
	jp := e.fixture("JPY", "Asia/Tokyo")          // today 2026-03-13
	for i := 0; i < 10; i++ {
		_ = e.s.SetDaily(us.ad2, e.s.Day(us.acct, -i), DayMetrics{Spend: float64(i + 1), Impressions: 100})
		_ = e.s.SetDaily(jp.ad2, e.s.Day(jp.acct, -i), DayMetrics{Spend: float64(1000 * (i + 1)), Impressions: 100})
	}
	for _, tc := range []struct {
		name, acct, preset, timeRange, since, until, spend string
	}{
		{"us today", us.acct, "today", "", "2026-03-12", "2026-03-12", "1"},
		{"us yesterday", us.acct, "yesterday", "", "2026-03-11", "2026-03-11", "2"},
		{"us last_3d excludes today", us.acct, "last_3d", "", "2026-03-09", "2026-03-11", "9"},
		{"us last_7d", us.acct, "last_7d", "", "2026-03-05", "2026-03-11", "35"},
		{"us time_range inclusive", us.acct, "", `{"since":"2026-03-10","until":"2026-03-12"}`, "2026-03-10", "2026-03-12", "6"},
		{"jp today is a day ahead", jp.acct, "today", "", "2026-03-13", "2026-03-13", "1000"},
		{"jp last_7d", jp.acct, "last_7d", "", "2026-03-06", "2026-03-12", "35000"},
		{"jp maximum starts at first data", jp.acct, "maximum", "", "2026-03-04", "2026-03-13", "55000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get("/v25.0/"+tc.acct+"/insights", "date_preset", tc.preset, "time_range", tc.timeRange, "fields", "spend,account_currency")
			rows := list(t, r.body, "data")
			if len(rows) != 1 {
				t.Fatalf("%s", r.raw)
			}
			if rows[0]["date_start"] != tc.since || rows[0]["date_stop"] != tc.until || rows[0]["spend"] != tc.spend {
				t.Fatalf("got %v..%v spend %v, want %s..%s %s", rows[0]["date_start"], rows[0]["date_stop"], rows[0]["spend"], tc.since, tc.until, tc.spend)
			}
		})
	}
	// Levels aggregate their ads; time_increment=1 gives a row per day.
	r := e.get("/v25.0/"+us.acct+"/insights", "level", "campaign", "date_preset", "last_3d", "time_increment", "1", "fields", "campaign_id,spend")
	rows := list(t, r.body, "data")
	if len(rows) != 3 || rows[0]["campaign_id"] != us.plain || rows[0]["date_start"] != "2026-03-09" || rows[0]["spend"] != "4" {
		t.Fatalf("daily rows: %s", r.raw)
	}
	// Filtering by effective_status on ads.
	_ = e.s.SetStatus(us.ad2, StatusPaused)
	r = e.get("/v25.0/"+us.acct+"/insights", "level", "ad", "date_preset", "last_7d",
		"filtering", `[{"field":"ad.effective_status","operator":"IN","value":["ACTIVE"]}]`)
	if len(list(t, r.body, "data")) != 0 {
		t.Fatalf("filtered: %s", r.raw)
	}
}

func TestInsightsPagingAndTodayGrows(t *testing.T) {
	e := newEnv(t, Options{})
	ids, _ := e.s.Generate(3, GenSpec{Accounts: 1, CampaignsPerAccount: 4, AdSetsPerCampaign: 5, AdsPerAdSet: 10})
	acct := ids[0]
	all := e.get("/v25.0/"+acct+"/insights", "level", "ad", "date_preset", "last_7d", "fields", "ad_id,spend", "limit", "1000")
	total := len(list(t, all.body, "data"))
	if total < 50 {
		t.Fatalf("only %d ad rows", total)
	}
	seen := 0
	r := e.get("/v25.0/"+acct+"/insights", "level", "ad", "date_preset", "last_7d", "fields", "ad_id,spend", "limit", "17")
	for {
		seen += len(list(t, r.body, "data"))
		next, _ := r.body["paging"].(map[string]any)["next"].(string)
		if next == "" {
			break
		}
		r = e.get(strings.TrimPrefix(next[:strings.Index(next, "?")], e.ts.URL), "after", urlParam(next, "after"),
			"level", "ad", "date_preset", "last_7d", "fields", "ad_id,spend", "limit", "17")
	}
	if seen != total {
		t.Fatalf("paged %d rows, want %d", seen, total)
	}
	spendToday := func() float64 {
		r := e.get("/v25.0/"+acct+"/insights", "date_preset", "today", "fields", "spend")
		rows := list(t, r.body, "data")
		if len(rows) == 0 {
			return 0
		}
		v, _ := strconv.ParseFloat(rows[0]["spend"].(string), 64)
		return v
	}
	a := spendToday()
	e.clock.Advance(3 * time.Hour)
	b := spendToday()
	if !(b > a && a > 0) {
		t.Fatalf("today's spend did not grow: %v -> %v", a, b)
	}
	// A paused ad stops growing.
	ad := ""
	for _, o := range e.s.Objects(acct, KindAd) {
		if o.EffectiveStatus == StatusActive {
			if m, _ := e.s.Metrics(o.ID, e.s.Day(acct, 0), e.s.Day(acct, 0)); m.Spend > 0 {
				ad = o.ID
				break
			}
		}
	}
	if r := e.post("/v25.0/"+ad, "status", "PAUSED"); r.status != 200 {
		t.Fatal(string(r.raw))
	}
	m1, _ := e.s.Metrics(ad, e.s.Day(acct, 0), e.s.Day(acct, 0))
	e.clock.Advance(2 * time.Hour)
	m2, _ := e.s.Metrics(ad, e.s.Day(acct, 0), e.s.Day(acct, 0))
	if m1.Spend != m2.Spend {
		t.Fatalf("paused ad kept spending: %v -> %v", m1.Spend, m2.Spend)
	}
}

func urlParam(u, key string) string {
	_, q, _ := strings.Cut(u, "?")
	for _, p := range strings.Split(q, "&") {
		if k, v, _ := strings.Cut(p, "="); k == key {
			return v
		}
	}
	return ""
}

func TestGenerateDeterministicAndVaried(t *testing.T) {
	body := func() string {
		e := newEnv(t, Options{})
		ids, err := e.s.Generate(42, GenSpec{Accounts: 3})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, id := range ids {
			r := e.get("/v25.0/"+id+"/insights", "level", "ad", "date_preset", "last_30d", "limit", "500",
				"fields", "ad_id,spend,impressions,reach,actions,action_values")
			b.Write(r.raw)
		}
		return b.String()
	}
	a, b := body(), body()
	if a != b {
		t.Fatal("same seed and clock gave different data")
	}
	e := newEnv(t, Options{})
	ids, _ := e.s.Generate(1, GenSpec{Accounts: 3, CampaignsPerAccount: 8, AdSetsPerCampaign: 4, AdsPerAdSet: 8})
	statuses, currencies := map[string]bool{}, map[string]bool{}
	cbo, plain, loser, winner, fatigued := 0, 0, 0, 0, 0
	for _, id := range ids {
		a, _ := e.s.Account(id)
		currencies[a.Currency] = true
		for _, o := range e.s.Objects(id, KindCampaign) {
			if o.CampaignBudget {
				cbo++
			} else {
				plain++
			}
		}
		for _, o := range e.s.Objects(id, KindAd) {
			statuses[o.Status] = true
			m, _ := e.s.Metrics(o.ID, e.s.Day(id, -7), e.s.Day(id, -1))
			switch {
			case m.Spend > 0 && m.Purchases == 0 && m.Leads == 0 && m.Installs == 0:
				loser++
			case m.Spend > 0 && m.PurchaseValue/m.Spend > 3:
				winner++
			}
			if m.Reach > 0 && float64(m.Impressions)/float64(m.Reach) > 3 {
				fatigued++
			}
		}
	}
	if len(statuses) != 4 || len(currencies) != 3 || cbo == 0 || plain == 0 || loser == 0 || winner == 0 || fatigued == 0 {
		t.Fatalf("statuses %v currencies %v cbo %d plain %d loser %d winner %d fatigued %d", statuses, currencies, cbo, plain, loser, winner, fatigued)
	}
}

func TestAsyncJob(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	_ = e.s.SetDaily(f.ad1, e.s.Day(f.acct, -1), DayMetrics{Spend: 5, Impressions: 50})
	_ = e.s.SetDaily(f.ad2, e.s.Day(f.acct, -1), DayMetrics{Spend: 7, Impressions: 70})
	submit := func() string {
		r := e.post("/v25.0/"+f.acct+"/insights", "level", "ad", "date_preset", "yesterday", "fields", "ad_id,spend")
		id, ok := r.body["report_run_id"].(string)
		if !ok || r.status != 200 {
			t.Fatalf("submit: %s", r.raw)
		}
		return id
	}
	id := submit()
	var seq []string
	for i := 0; i < 6; i++ {
		if r := e.get("/v25.0/" + id + "/insights"); i < 5 {
			if c, sub := r.errCode(); c != 2601 || sub != 1815107 {
				t.Fatalf("results before completion: %s", r.raw)
			}
		}
		r := e.get("/v25.0/" + id)
		seq = append(seq, r.body["async_status"].(string)+" "+strconv.Itoa(int(r.body["async_percent_completion"].(float64))))
	}
	want := "Job Not Started 0|Job Started 0|Job Running 33|Job Running 66|Job Running 100|Job Completed 100"
	if got := strings.Join(seq, "|"); got != want {
		t.Fatalf("sequence\n got %s\nwant %s", got, want)
	}
	r := e.get("/v25.0/"+id+"/insights", "limit", "1")
	rows := list(t, r.body, "data")
	if len(rows) != 1 || rows[0]["ad_id"] != f.ad1 || r.body["paging"].(map[string]any)["next"] == nil {
		t.Fatalf("results: %s", r.raw)
	}
	e.s.QueueAsync(AsyncBehavior{RunningPolls: 1, Outcome: JobFailed}, AsyncBehavior{NotStartedPolls: 1, Outcome: JobSkipped})
	for _, want := range []string{JobFailed, JobSkipped} {
		id := submit()
		var st map[string]any
		for i := 0; i < 4; i++ {
			st = e.get("/v25.0/" + id).body
		}
		if st["async_status"] != want || st["async_percent_completion"] != float64(0) {
			t.Fatalf("want %s: %v", want, st)
		}
		if c, _ := e.get("/v25.0/" + id + "/insights").errCode(); c != 2601 {
			t.Fatal("results of a failed job")
		}
	}
}

func TestSyncRowLimitTimeout(t *testing.T) {
	e := newEnv(t, Options{SyncRowLimit: 1})
	f := e.fixture("USD", "America/Los_Angeles")
	for _, ad := range []string{f.ad1, f.ad2} {
		_ = e.s.SetDaily(ad, e.s.Day(f.acct, 0), DayMetrics{Spend: 1, Impressions: 1})
	}
	r := e.get("/v25.0/"+f.acct+"/insights", "level", "ad", "date_preset", "today")
	if c, sub := r.errCode(); c != 100 || sub != 1504018 {
		t.Fatalf("%s", r.raw)
	}
	var parsed struct {
		Error struct {
			IsTransient bool   `json:"is_transient"`
			Trace       string `json:"fbtrace_id"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.raw, &parsed)
	if parsed.Error.Trace == "" {
		t.Fatal("no fbtrace_id")
	}
}
