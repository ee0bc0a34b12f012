package insights

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/rules"
)

// world is a simulated API with one USD and one JPY account, as tests need it.
type world struct {
	fake   *fakegraph.Server
	client *graph.Client
	now    time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	fake := fakegraph.New(fakegraph.Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := graph.New(graph.Options{BaseURL: srv.URL, APIVersion: "v27.0", Token: graph.NewSecret(fakegraph.DefaultToken)})
	if err != nil {
		t.Fatal(err)
	}
	return &world{fake: fake, client: c, now: now}
}

const readerRules = `
groups:
- name: g
  rules:
  - name: stop-loss
    level: ad
    window: last_7d
    where: campaign.objective == "OUTCOME_SALES"
    when: spend > 50 && purchases == 0 && today.spend >= 0
    action: {kind: pause}
  - name: scale
    level: adset
    window: last_7d
    when: roas > 2 && spend > 10
    action: {kind: change_budget, by: "+20%", max: 500}
`

func TestReadAccount(t *testing.T) {
	w := newWorld(t)
	f := w.fake
	acct := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_100", Currency: "USD", TimezoneName: "America/New_York"}))
	camp := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct, Objective: "OUTCOME_SALES"}))
	cbo := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct, Objective: "OUTCOME_LEADS", DailyBudget: 10000}))
	as := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	as2 := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: cbo}))
	ad1 := fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as, Name: "spender"}))
	ad2 := fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as, Name: "buyer"}))
	fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as2, Name: "quiet"}))
	archived := fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as, Name: "old", Status: fakegraph.StatusArchived}))
	for d := -7; d <= -1; d++ {
		must(t, f.SetDaily(ad1, f.Day(acct, d), fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 600, Clicks: 10}))
		must(t, f.SetDaily(ad2, f.Day(acct, d), fakegraph.DayMetrics{Spend: 5, Impressions: 500, Reach: 300, Purchases: 1, PurchaseValue: 40}))
	}
	must(t, f.SetDaily(ad1, f.Day(acct, 0), fakegraph.DayMetrics{Spend: 3, Impressions: 100}))

	set := loadRules(t, readerRules)
	r, err := NewReader(Options{Graph: w.client, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Read(context.Background(), config.Account{ID: acct, Vars: map[string]float64{"target_cpa": 25}}, w.now, set.Groups[0].Rules)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Account.Currency != "USD" || snap.Account.Location.String() != "America/New_York" {
		t.Errorf("account = %+v", snap.Account)
	}
	ads := snap.Tables[rules.LevelAd]
	if len(ads.Objects) != 3 {
		t.Fatalf("ads = %d, want 3 (archived %s excluded)", len(ads.Objects), archived)
	}
	lay := set.Layout
	get := func(tbl *Table, id string, w rules.Window, m rules.Metric) float64 {
		i, ok := tbl.Index(id)
		if !ok {
			t.Fatalf("object %s not read", id)
		}
		slot, _ := lay.Num(rules.Key{Kind: rules.KeyMetric, Window: w, Metric: m})
		return tbl.Rows[i].Num[slot]
	}
	if got := get(ads, ad1, rules.Last7d, rules.Spend); got != 70 {
		t.Errorf("ad1 last_7d spend = %v, want 70 (7 full days, today excluded)", got)
	}
	if got := get(ads, ad1, rules.Today, rules.Spend); got != 3 {
		t.Errorf("ad1 today spend = %v, want 3", got)
	}
	if got := get(ads, ad2, rules.Last7d, rules.Purchases); got != 7 {
		t.Errorf("ad2 purchases = %v, want 7 (one type counted, not the sum of overlapping types)", got)
	}
	// Evaluate: only the spender matches the stop-loss.
	stop := set.Groups[0].Rules[0]
	var matched []string
	for i := range ads.Objects {
		if _, m := stop.Match(&ads.Rows[i]); m {
			matched = append(matched, ads.Objects[i].Name)
		}
	}
	if strings.Join(matched, ",") != "spender" {
		t.Errorf("stop-loss matched %v, want [spender]", matched)
	}
	adsets := snap.Tables[rules.LevelAdSet]
	i2, _ := adsets.Index(as2)
	if !adsets.Objects[i2].CampaignBudget {
		t.Errorf("ad set in a CBO campaign not marked campaign budget")
	}
	i1, _ := adsets.Index(as)
	if adsets.Objects[i1].DailyBudget != 5000 {
		t.Errorf("daily budget = %d minor units, want 5000", adsets.Objects[i1].DailyBudget)
	}
	// The minimum requests: account; campaigns, adsets, ads (one page each);
	// insights for (ad, last_7d), (ad, today), (adset, last_7d).
	if snap.Requests != 7 {
		t.Errorf("requests = %d, want 7", snap.Requests)
	}
	for _, rec := range w.fake.Requests() {
		if rec.Template == "GET /{ver}/act_{id}/insights" && !strings.Contains(rec.Params.Get("fields"), "_id") {
			t.Errorf("insights request without the id field: %v", rec.Params)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// asyncWorld is one account with a few ads whose last_7d insights the test reads.
func asyncWorld(t *testing.T, w *world) (string, []string) {
	f := w.fake
	acct := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_300", Currency: "JPY", TimezoneName: "Asia/Tokyo"}))
	camp := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct}))
	as := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	var ads []string
	for i := range 4 {
		ad := fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as}))
		ads = append(ads, ad)
		for d := -7; d <= -1; d++ {
			must(t, f.SetDaily(ad, f.Day(acct, d), fakegraph.DayMetrics{Spend: float64(100 * (i + 1)), Impressions: 1000}))
		}
	}
	return acct, ads
}

func TestReadAsyncInsights(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world, cfg *config.Config)
		jobs  []fakegraph.AsyncBehavior
	}{
		{name: "above the object threshold", setup: func(_ *world, cfg *config.Config) { cfg.Graph.AsyncAboveObjects = 2 }},
		{name: "after a sync timeout", setup: func(w *world, _ *config.Config) {
			w.fake.Inject(fakegraph.FaultRule{Method: "GET", Path: "/insights", Times: 1, Fault: fakegraph.ErrorFault(100, 1504018)})
		}},
		{name: "skipped job is resubmitted", setup: func(_ *world, cfg *config.Config) { cfg.Graph.AsyncAboveObjects = 2 },
			jobs: []fakegraph.AsyncBehavior{{Outcome: fakegraph.JobSkipped}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			acct, ads := asyncWorld(t, w)
			cfg := config.Default()
			tc.setup(w, cfg)
			w.fake.QueueAsync(tc.jobs...)
			set := loadRules(t, "groups:\n- name: g\n  rules:\n  - {name: r, level: ad, window: last_7d, when: 'spend > 0', action: {kind: notify}}\n")
			polls := 0
			r, err := NewReader(Options{Graph: w.client, Config: cfg, Sleep: func(context.Context, time.Duration) error { polls++; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := r.Read(context.Background(), config.Account{ID: acct}, w.now, set.Groups[0].Rules)
			if err != nil {
				t.Fatal(err)
			}
			tbl := snap.Tables[rules.LevelAd]
			slot, _ := set.Layout.Num(rules.Key{Kind: rules.KeyMetric, Window: rules.Last7d, Metric: rules.Spend})
			for i, ad := range ads {
				j, _ := tbl.Index(ad)
				if got, want := tbl.Rows[j].Num[slot], float64(700*(i+1)); got != want {
					t.Errorf("ad %d spend = %v, want %v", i, got, want)
				}
			}
			posts := 0
			for _, rec := range w.fake.Requests() {
				if rec.Method == "POST" && strings.HasSuffix(rec.Path, "/insights") {
					posts++
				}
			}
			if want := 1 + len(tc.jobs); posts != want {
				t.Errorf("async jobs started = %d, want %d", posts, want)
			}
			if polls == 0 {
				t.Error("the job was never polled with a wait")
			}
		})
	}
}

func TestReadAsyncJobFailed(t *testing.T) {
	w := newWorld(t)
	acct, _ := asyncWorld(t, w)
	cfg := config.Default()
	cfg.Graph.AsyncAboveObjects = 2
	w.fake.QueueAsync(fakegraph.AsyncBehavior{Outcome: fakegraph.JobFailed})
	set := loadRules(t, "groups:\n- name: g\n  rules:\n  - {name: r, level: ad, window: last_7d, when: 'spend > 0', action: {kind: notify}}\n")
	r, _ := NewReader(Options{Graph: w.client, Config: cfg, Sleep: func(context.Context, time.Duration) error { return nil }})
	_, err := r.Read(context.Background(), config.Account{ID: acct}, w.now, set.Groups[0].Rules)
	if err == nil || !strings.Contains(err.Error(), "Job Failed") {
		t.Fatalf("err = %v, want the failed job named", err)
	}
}

// BenchmarkSnapshotMemory reads one account of 2,000 ads with the 20 benchmark rules
// over three windows and reports the heap a snapshot keeps per object (SPEC 12: at
// most 1 KiB).
func BenchmarkSnapshotMemory(b *testing.B) {
	fake := fakegraph.New(fakegraph.Options{})
	ids, err := fake.Generate(1, fakegraph.GenSpec{Accounts: 1, CampaignsPerAccount: 10, AdSetsPerCampaign: 10, AdsPerAdSet: 20})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, err := graph.New(graph.Options{BaseURL: srv.URL, APIVersion: "v27.0", Token: graph.NewSecret(fakegraph.DefaultToken)})
	if err != nil {
		b.Fatal(err)
	}
	set, l := rules.LoadFiles([]string{"../rules/testdata/bench.yaml"}, rules.Options{})
	if set == nil {
		b.Fatal(l.Err())
	}
	r, _ := NewReader(Options{Graph: c, Config: config.Default()})
	var perObject float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		snap, err := r.Read(context.Background(), config.Account{ID: ids[0]}, time.Now(), set.Groups[0].Rules)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		objects := 0
		for _, t := range snap.Tables {
			objects += len(t.Objects)
		}
		perObject = float64(after.HeapAlloc-before.HeapAlloc) / float64(objects)
		runtime.KeepAlive(snap)
	}
	b.ReportMetric(perObject, "bytes/object")
	if perObject > 1024 {
		b.Errorf("a snapshot keeps %.0f bytes per object, more than 1 KiB", perObject)
	}
}
