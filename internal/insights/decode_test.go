package insights

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/rules"
)

func loadRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, l := rules.Load([]rules.Source{{Name: "r.yaml", Data: []byte(src)}}, rules.Options{})
	if set == nil {
		t.Fatal(l.Err())
	}
	return set
}

const decodeRules = `
groups:
- name: g
  rules:
  - name: r
    level: ad
    window: last_7d
    when: spend > 1 && impressions > 0 && purchases >= 0 && purchase_value >= 0 && leads >= 0 && actions["link_click"] >= 0 && reach >= 0
    action: {kind: notify}
`

func decoderFor(t testing.TB, set *rules.Set, ids ...string) (*Table, *rowDecoder) {
	objs := make([]Object, len(ids))
	for i, id := range ids {
		objs[i] = Object{ID: id}
	}
	tbl := newTable(rules.LevelAd, objs)
	tbl.Rows = set.Layout.NewRows(len(objs))
	r, err := NewReader(Options{Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	return tbl, r.newRowDecoder(set.Layout, tbl, rules.Last7d, set.Groups[0].Rules[0].Reads)
}

func metric(set *rules.Set, row *rules.Row, m rules.Metric) float64 {
	i, _ := set.Layout.Num(rules.Key{Kind: rules.KeyMetric, Window: rules.Last7d, Metric: m})
	return row.Num[i]
}

func TestDecodeInsightsPage(t *testing.T) {
	set := loadRules(t, decodeRules)
	tbl, d := decoderFor(t, set, "101", "102", "103", "104")
	if got, want := d.fields(), "ad_id,action_values,actions,impressions,reach,spend"; got != want {
		t.Errorf("fields = %s, want %s", got, want)
	}
	// Shapes of graph-api.md 13: numbers as strings with no fixed format, empty lists
	// omitted, one purchase under several types in no fixed order, unknown keys.
	body := `{"data": [
	  {"ad_id": "101", "spend": "203.6", "impressions": "3000", "reach": "1500",
	   "actions": [{"action_type": "omni_purchase", "value": "3"}, {"action_type": "link_click", "value": "40"},
	               {"action_type": "purchase", "value": "2"}, {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"},
	               {"action_type": "lead", "value": "1", "7d_click": "1"}],
	   "action_values": [{"action_type": "omni_purchase", "value": "150.5"}, {"action_type": "purchase", "value": "99.99"}],
	   "date_start": "2026-11-13", "date_stop": "2026-11-19"},
	  {"date_start": "2026-11-13", "ad_id": "102", "spend": "0", "impressions": "12", "reach": "10", "date_stop": "2026-11-19"},
	  {"ad_id": "103", "spend": "14.350001", "impressions": "1e3", "reach": "700",
	   "actions": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "1"}]},
	  {"ad_id": "999", "spend": "5"}
	], "paging": {"cursors": {"before": "MA", "after": "Mw"}}}`
	if err := d.page([]byte(body)); err != nil {
		t.Fatal(err)
	}
	row := func(i int) *rules.Row { return &tbl.Rows[i] }
	tests := []struct {
		obj  int
		m    rules.Metric
		want float64
	}{
		{0, rules.Spend, 203.6}, {0, rules.Impressions, 3000}, {0, rules.Reach, 1500},
		{0, rules.Purchases, 2}, {0, rules.PurchaseValue, 99.99}, {0, rules.Leads, 1},
		{1, rules.Spend, 0}, {1, rules.Impressions, 12}, {1, rules.Purchases, 0},
		{2, rules.Spend, 14.350001}, {2, rules.Impressions, 1000}, {2, rules.Purchases, 1}, {2, rules.PurchaseValue, 0},
		{3, rules.Spend, 0}, {3, rules.Impressions, 0}, // no row: every count is 0
	}
	for _, tt := range tests {
		if got := metric(set, row(tt.obj), tt.m); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("object %d %s = %v, want %v", tt.obj, tt.m, got, tt.want)
		}
	}
	i, _ := set.Layout.Num(rules.Key{Kind: rules.KeyAction, Window: rules.Last7d, ActionType: "link_click"})
	if row(0).Num[i] != 40 {
		t.Errorf("actions[link_click] = %v", row(0).Num[i])
	}
}

func TestDecodeMalformed(t *testing.T) {
	set := loadRules(t, decodeRules)
	for _, body := range []string{
		`{"data": [{"ad_id": "101", "spend": "12,5"}]}`,
		`{"data": [{"ad_id": "101", "spend": "1"`,
		`{"data": {"ad_id": "101"}}`,
		`{"paging": {}}`,
		`<html>Service Unavailable</html>`,
		`{"data": [{"ad_id": "101", "actions": [{"action_type": "purchase", "value": "x"}]}]}`,
	} {
		_, d := decoderFor(t, set, "101")
		if err := d.page([]byte(body)); err == nil {
			t.Errorf("page %q decoded without error", body)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for _, s := range []string{"0", "203.6", "14.35", "0.123456", "-0.25", "361324", "5339.5", "1e3", "12345678901234567890", "0.1000000000000000000000001"} {
		got, err := parseNumber([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var want float64
		fmt.Sscan(s, &want)
		if got != want {
			t.Errorf("parseNumber(%s) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "-", "1.2.3", "abc", "NaN", "Inf"} {
		if _, err := parseNumber([]byte(s)); err == nil {
			t.Errorf("parseNumber(%q) succeeded", s)
		}
	}
}

// BenchmarkDecodeInsightsPage decodes a 500-row ad-level page with actions; the
// target is at least 300 MB/s.
func BenchmarkDecodeInsightsPage(b *testing.B) {
	set := loadRules(b, decodeRules)
	ids := make([]string, 500)
	var body strings.Builder
	body.WriteString(`{"data":[`)
	for i := range ids {
		ids[i] = fmt.Sprint(120200000000000 + i)
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"ad_id":"%s","spend":"%d.%02d","impressions":"%d","reach":"%d","actions":[{"action_type":"link_click","value":"%d"},{"action_type":"omni_purchase","value":"3"},{"action_type":"purchase","value":"3"},{"action_type":"offsite_conversion.fb_pixel_purchase","value":"3"},{"action_type":"page_engagement","value":"%d"}],"action_values":[{"action_type":"omni_purchase","value":"120.5"},{"action_type":"purchase","value":"120.5"}],"date_start":"2026-11-13","date_stop":"2026-11-19"}`,
			ids[i], i%300, i%100, 1000+i*7, 800+i*5, i%50, i%20)
	}
	body.WriteString(`],"paging":{"cursors":{"before":"MA","after":"NDk5"},"next":"https://graph.facebook.com/v27.0/act_1/insights?access_token=x&after=NDk5"}}`)
	page := []byte(body.String())
	tbl, d := decoderFor(b, set, ids...)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.page(page); err != nil {
			b.Fatal(err)
		}
	}
	if metric(set, &tbl.Rows[10], rules.Purchases) != 3 {
		b.Fatal("decode went wrong")
	}
}
