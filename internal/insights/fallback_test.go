package insights

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/rules"
)

// scriptedGraph answers the account, object and insights reads of one account from
// fixed pages; the synchronous insights read returns syncPages and then err.
type scriptedGraph struct {
	syncPages  []string
	syncErr    error
	asyncPages []string
}

func (g *scriptedGraph) Get(_ context.Context, r graph.Request) ([]byte, error) {
	switch r.Path {
	case "act_1":
		return []byte(`{"id":"act_1","currency":"USD","timezone_name":"UTC"}`), nil
	case "77":
		return []byte(`{"id":"77","async_status":"Job Completed","async_percent_completion":100}`), nil
	}
	return nil, errors.New("unexpected GET " + r.Path)
}

func (g *scriptedGraph) Post(_ context.Context, r graph.Request) ([]byte, error) {
	return []byte(`{"report_run_id":"77"}`), nil
}

func (g *scriptedGraph) Pages(_ context.Context, r graph.Request, fn func([]byte) error) error {
	pages, end := []string{`{"data":[{"id":"101","status":"ACTIVE"},{"id":"102","status":"ACTIVE"}]}`}, error(nil)
	switch r.Path {
	case "act_1/insights":
		pages, end = g.syncPages, g.syncErr
	case "77/insights":
		pages = g.asyncPages
	}
	for _, p := range pages {
		if err := fn([]byte(p)); err != nil {
			return err
		}
	}
	return end
}

// TestAsyncFallbackReplacesPartialRead: when a synchronous read times out after some
// pages, the async job's answer is the whole truth for the window.
func TestAsyncFallbackReplacesPartialRead(t *testing.T) {
	set := loadRules(t, `
groups:
- name: g
  rules:
  - name: r
    level: ad
    window: last_7d
    when: spend > 0 && purchases >= 0 && purchase_value >= 0 && actions["link_click"] >= 0 && action_values["omni_purchase"] >= 0
    action: {kind: notify}
`)
	g := &scriptedGraph{
		syncPages: []string{`{"data":[{"ad_id":"101","spend":"10",
			"actions":[{"action_type":"purchase","value":"2"},{"action_type":"link_click","value":"9"}],
			"action_values":[{"action_type":"purchase","value":"50"},{"action_type":"omni_purchase","value":"50"}]},
			{"ad_id":"102","spend":"3"}],"paging":{"cursors":{"after":"Mg"},"next":"https://graph.facebook.com/v27.0/act_1/insights?after=Mg"}}`},
		syncErr: &graph.Error{Code: 100, Subcode: 1504018, Message: "timeout"},
		// The job reports 101 without any action, and 102 not at all.
		asyncPages: []string{`{"data":[{"ad_id":"101","spend":"11"}]}`},
	}
	r, err := NewReader(Options{Graph: g, Config: config.Default(), Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Read(context.Background(), config.Account{ID: "act_1"}, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), set.Groups[0].Rules)
	if err != nil {
		t.Fatal(err)
	}
	tbl := snap.Tables[rules.LevelAd]
	get := func(id string, k rules.Key) float64 {
		i, _ := tbl.Index(id)
		slot, ok := set.Layout.Num(k)
		if !ok {
			t.Fatalf("no slot for %+v", k)
		}
		return tbl.Rows[i].Num[slot]
	}
	w := rules.Last7d
	tests := []struct {
		id   string
		key  rules.Key
		want float64
	}{
		{"101", rules.Key{Kind: rules.KeyMetric, Window: w, Metric: rules.Spend}, 11},
		{"101", rules.Key{Kind: rules.KeyMetric, Window: w, Metric: rules.Purchases}, 0},
		{"101", rules.Key{Kind: rules.KeyMetric, Window: w, Metric: rules.PurchaseValue}, 0},
		{"101", rules.Key{Kind: rules.KeyAction, Window: w, ActionType: "link_click"}, 0},
		{"101", rules.Key{Kind: rules.KeyActionValue, Window: w, ActionType: "omni_purchase"}, 0},
		{"102", rules.Key{Kind: rules.KeyMetric, Window: w, Metric: rules.Spend}, 0},
	}
	for _, tt := range tests {
		if got := get(tt.id, tt.key); got != tt.want {
			t.Errorf("%s %+v = %v, want %v (from the async job, not the abandoned sync read)", tt.id, tt.key, got, tt.want)
		}
	}
}
