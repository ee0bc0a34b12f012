package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/state/pgtest"
)

// TestReplicasOnPostgres runs two engines ("replicas") on one PostgreSQL database:
// each tick of a (group, account) runs on exactly one of them, and the pause is
// written once.
func TestReplicasOnPostgres(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	w := newWorld(t, "accounts: [act_1001]\nnotifiers: [{name: hook, type: webhook, url: \"http://127.0.0.1:1/\"}]\n", stopLoss)
	ads := w.ads("ad", 3)
	for _, ad := range ads {
		w.spendToday(ad, 20)
	}
	ctx := context.Background()
	var engines []*Engine
	for _, owner := range []string{"replica-a", "replica-b"} {
		st, err := state.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: w.reader, Executor: w.exec, Store: st, Now: w.Now, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
	}
	for tick := 0; tick < 3; tick++ {
		results := make([]string, len(engines))
		var wg sync.WaitGroup
		for i, e := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gr, err := e.RunGroup(ctx, "stop-loss", w.Now())
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = gr.Accounts[0].Result
			}()
		}
		wg.Wait()
		ran := 0
		for _, r := range results {
			if r == "success" {
				ran++
			} else if r != "skipped" {
				t.Errorf("tick %d: result %q", tick, r)
			}
		}
		if ran != 1 {
			t.Errorf("tick %d ran on %d replicas (%v), want exactly 1", tick, ran, results)
		}
		w.advance(mins(30))
	}
	for _, ad := range ads {
		if n := len(w.writes(ad)); n != 1 {
			t.Errorf("%s written %d times, want once", ad, n)
		}
	}
}
