package app

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
)

// BenchmarkPreviewScale is the scale target of SPEC 12: a preview of 100 accounts x
// 2,000 ads, 20 rules, 3 windows against the simulated API with 50 ms latency per
// request. It reports the requests made and the minimum possible.
func BenchmarkPreviewScale(b *testing.B) {
	accounts, latency := 100, 50*time.Millisecond
	if testing.Short() {
		accounts = 5
	}
	fake := fakegraph.New(fakegraph.Options{})
	ids, err := fake.Generate(1, fakegraph.GenSpec{Accounts: accounts, CampaignsPerAccount: 10, AdSetsPerCampaign: 10, AdsPerAdSet: 20})
	if err != nil {
		b.Fatal(err)
	}
	fake.SetLatency(latency)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := b.TempDir()
	// The 20 rules of the evaluation benchmark.
	rules, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "bench.yaml"))
	must(b, err)
	must(b, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644))
	must(b, os.WriteFile(filepath.Join(dir, "token"), []byte(fakegraph.DefaultToken), 0o600))
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "graph: {base_url: %q, access_token_file: token, max_in_flight: 32}\nrule_files: [rules.yaml]\nstate: {dsn: state.db}\nsafety: {max_actions_per_run: 100000}\naccounts:\n", srv.URL)
	for _, id := range ids {
		fmt.Fprintf(&cfg, "- %s\n", id)
	}
	cfgPath := filepath.Join(dir, "rulesd.yaml")
	must(b, os.WriteFile(cfgPath, []byte(cfg.String()), 0o644))
	var res *PreviewResult
	for b.Loop() {
		fake.ResetLog()
		res, err = Preview(context.Background(), PreviewOptions{ConfigPath: cfgPath})
		if err != nil {
			b.Fatal(err)
		}
	}
	if len(res.Errors) > 0 {
		b.Fatalf("preview errors: %+v", res.Errors[0])
	}
	// The minimum: per account the account node, one page of campaigns (for
	// campaign.objective), the ads in pages of 500, and for each of 3 windows the
	// insights rows in pages of 500 (at most one row per live ad).
	minimum := 0
	for _, id := range ids {
		live := 0
		for _, o := range fake.Objects(id, fakegraph.KindAd) {
			if o.Status != fakegraph.StatusArchived && o.Status != fakegraph.StatusDeleted {
				live++
			}
		}
		pages := max(1, (live+499)/500)
		minimum += 1 + 1 + pages + 3*pages
	}
	b.ReportMetric(float64(len(fake.Requests())), "requests/op")
	b.ReportMetric(float64(minimum), "minimum-requests/op")
	b.ReportMetric(float64(len(res.Matches)), "matches/op")
	if len(fake.Requests()) > minimum {
		b.Errorf("%d requests, more than the minimum %d", len(fake.Requests()), minimum)
	}
	if len(res.Matches) == 0 {
		b.Fatal("no matches: the benchmark data is wrong")
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
