package fakegraph

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkInsightsAdPage serves one 500-row ad-level insights page of a 2,000-ad account
// (the daemon's read pattern), straight through ServeHTTP.
func BenchmarkInsightsAdPage(b *testing.B) {
	for _, preset := range []string{"last_7d", "last_30d"} {
		b.Run(preset, func(b *testing.B) {
			c := &clock{t: t0}
			s := New(Options{Now: c.Now, Usage: UsageOptions{InsightsBudget: 1e12}})
			ids, err := s.Generate(1, GenSpec{CampaignsPerAccount: 10, AdSetsPerCampaign: 10, AdsPerAdSet: 20})
			if err != nil {
				b.Fatal(err)
			}
			q := url.Values{"access_token": {DefaultToken}, "level": {"ad"}, "date_preset": {preset}, "limit": {"500"},
				"fields": {"ad_id,adset_id,campaign_id,spend,impressions,reach,clicks,inline_link_clicks,actions,action_values"}}
			target := "/v25.0/" + ids[0] + "/insights?" + q.Encode()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
				if w.Code != 200 || w.Body.Len() < 100000 {
					b.Fatalf("%d %d bytes", w.Code, w.Body.Len())
				}
				b.SetBytes(int64(w.Body.Len()))
			}
		})
	}
}
