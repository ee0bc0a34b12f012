package fakegraph

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPagingWalksAllObjects(t *testing.T) {
	e := newEnv(t, Options{})
	ids, err := e.s.Generate(7, GenSpec{CampaignsPerAccount: 3, AdSetsPerCampaign: 4, AdsPerAdSet: 6})
	if err != nil {
		t.Fatal(err)
	}
	acct := ids[0]
	for _, tc := range []struct {
		edge   string
		kind   Kind
		limit  string
		status string
	}{
		{"ads", KindAd, "7", ""},
		{"adsets", KindAdSet, "5", ""},
		{"campaigns", KindCampaign, "1", ""},
		{"ads", KindAd, "10", `["ACTIVE","PAUSED","ARCHIVED","DELETED","ADSET_PAUSED","CAMPAIGN_PAUSED","PENDING_REVIEW","DISAPPROVED"]`},
	} {
		t.Run(tc.edge+"/"+tc.limit, func(t *testing.T) {
			want := map[string]bool{}
			for _, o := range e.s.Objects(acct, tc.kind) {
				if tc.status != "" || (o.EffectiveStatus != StatusArchived && o.EffectiveStatus != StatusDeleted) {
					want[o.ID] = true
				}
			}
			got := map[string]bool{}
			r := e.get("/v25.0/"+acct+"/"+tc.edge, "limit", tc.limit, "fields", "id,effective_status", "effective_status", tc.status)
			pages := 0
			for {
				if r.err != nil || r.status != http.StatusOK {
					t.Fatalf("page %d: %v %d %s", pages, r.err, r.status, r.raw)
				}
				pages++
				for _, row := range list(t, r.body, "data") {
					if got[row["id"].(string)] {
						t.Fatalf("duplicate %v", row["id"])
					}
					got[row["id"].(string)] = true
				}
				paging, _ := r.body["paging"].(map[string]any)
				next, _ := paging["next"].(string)
				if next == "" {
					break
				}
				if !strings.HasPrefix(next, e.ts.URL+"/v25.0/"+acct+"/"+tc.edge+"?access_token=") {
					t.Fatalf("next = %s", next)
				}
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				r = e.send(req)
			}
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("walked %d objects in %d pages, want %d", len(got), pages, len(want))
			}
			for id := range want {
				if !got[id] {
					t.Fatalf("missing %s", id)
				}
			}
		})
	}
}

func TestFieldsAndBudgetKeys(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	keys := func(m map[string]any) string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		sort.Strings(k)
		return strings.Join(k, ",")
	}
	for _, tc := range []struct {
		name, id, fields, wantKeys string
		check                      map[string]any
	}{
		{"no fields gives only id", f.ad1, "", "id", nil},
		{"requested only", f.ad1, "name,status,adset_id,campaign_id", "adset_id,campaign_id,id,name,status",
			map[string]any{"name": "winner", "adset_id": f.cboSet, "campaign_id": f.cbo}},
		{"cbo campaign budget strings", f.cbo, "daily_budget,lifetime_budget,bid_strategy", "bid_strategy,daily_budget,id,lifetime_budget",
			map[string]any{"daily_budget": "5000", "lifetime_budget": "0"}},
		{"cbo ad set has no budget keys", f.cboSet, "daily_budget,lifetime_budget,budget_remaining", "budget_remaining,id",
			map[string]any{"budget_remaining": "0"}},
		{"plain campaign has no budget keys", f.plain, "daily_budget,lifetime_budget,objective", "id,objective",
			map[string]any{"objective": "OUTCOME_LEADS"}},
		{"ad set budget and bid", f.set, "daily_budget,lifetime_budget,bid_amount,bid_strategy", "bid_amount,bid_strategy,daily_budget,id,lifetime_budget",
			map[string]any{"daily_budget": "2000", "lifetime_budget": "0", "bid_amount": float64(150)}},
		{"expansion", f.ad2, "campaign{objective},adset{name}", "adset,campaign,id", nil},
		{"timestamps", f.ad1, "created_time", "created_time,id", map[string]any{"created_time": "2026-03-12T15:02:47-0700"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get("/v25.0/"+tc.id, "fields", tc.fields)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if got := keys(r.body); got != tc.wantKeys {
				t.Fatalf("keys = %s, want %s (%s)", got, tc.wantKeys, r.raw)
			}
			for k, v := range tc.check {
				if r.body[k] != v {
					t.Fatalf("%s = %#v, want %#v", k, r.body[k], v)
				}
			}
		})
	}
	r := e.get("/v25.0/"+f.ad1, "fields", "name,bogus")
	if c, _ := r.errCode(); c != 100 || r.status != 400 {
		t.Fatalf("unknown field: %d %s", r.status, r.raw)
	}
	r = e.get("/v25.0/"+f.acct, "fields", "account_id,currency,timezone_name,timezone_offset_hours_utc")
	if r.body["account_id"] != strings.TrimPrefix(f.acct, "act_") || r.body["timezone_offset_hours_utc"] != float64(-7) {
		t.Fatalf("account: %s", r.raw)
	}
	r = e.get("/v25.0/"+f.plain+"/adsets", "fields", "id", "summary", "true")
	if len(list(t, r.body, "data")) != 1 || r.body["summary"].(map[string]any)["total_count"] != float64(1) {
		t.Fatalf("campaign edge: %s", r.raw)
	}
	r = e.get("/v25.0/"+f.acct+"/ads", "filtering", `[{"field":"adset.id","operator":"IN","value":["`+f.set+`"]}]`)
	if len(list(t, r.body, "data")) != 2 {
		t.Fatalf("filtering: %s", r.raw)
	}
	r = e.get("/v25.0/" + f.ad1 + "/ads")
	if c, _ := r.errCode(); c != 100 {
		t.Fatalf("ad/ads edge: %s", r.raw)
	}
	r = e.get("/v25.0/999999")
	if c, sub := r.errCode(); c != 100 || sub != 33 {
		t.Fatalf("missing object: %s", r.raw)
	}
}

func TestEffectiveStatus(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	eff := func(id string) string { o, _ := e.s.Object(id); return o.EffectiveStatus }
	if eff(f.ad2) != StatusActive {
		t.Fatal(eff(f.ad2))
	}
	if r := e.post("/v25.0/"+f.set, "status", "PAUSED"); r.status != 200 || r.body["success"] != true {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if eff(f.ad2) != "ADSET_PAUSED" || eff(f.set) != StatusPaused {
		t.Fatal(eff(f.ad2), eff(f.set))
	}
	_ = e.s.SetStatus(f.plain, StatusPaused)
	if eff(f.ad2) != "CAMPAIGN_PAUSED" || eff(f.set) != StatusPaused {
		t.Fatal(eff(f.ad2))
	}
	_ = e.s.SetReviewStatus(f.ad1, "PENDING_REVIEW")
	if eff(f.ad1) != "PENDING_REVIEW" {
		t.Fatal(eff(f.ad1))
	}
	r := e.get("/v25.0/"+f.acct+"/ads", "fields", "effective_status", "effective_status", `["ADSET_PAUSED","CAMPAIGN_PAUSED"]`)
	if len(list(t, r.body, "data")) != 2 {
		t.Fatalf("%s", r.raw)
	}
}

func TestUpdatedSince(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.fixture("USD", "America/Los_Angeles")
	e.clock.Advance(time.Hour)
	e.post("/v25.0/"+f.ad2, "status", "PAUSED")
	r := e.get("/v25.0/"+f.acct+"/ads", "updated_since", strconv.FormatInt(e.clock.Now().Unix(), 10))
	rows := list(t, r.body, "data")
	if len(rows) != 1 || rows[0]["id"] != f.ad2 {
		t.Fatalf("%s", r.raw)
	}
}
