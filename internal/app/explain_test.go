package app

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// `rulesd explain` (SPEC 6): one rule on one object, with the values and the decision
// the engine would record, against the simulated API of the undo tests.

func (w *undoWorld) explain(rule, object, account string) (*ExplainResult, error) {
	return Explain(context.Background(), ExplainOptions{ConfigPath: w.cfg, Rule: rule, Object: object, Account: account, Now: w.clock.Now})
}

func TestExplainDecisionAndGuards(t *testing.T) {
	w := newUndoWorld(t, "")
	res, err := w.explain("scale", w.adset, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Group != "ops" || res.Rule != "scale" || res.Level != "adset" || res.Window != "last_7d" || res.AccountID != w.acct ||
		res.Currency != "USD" || res.Object.ID != w.adset || res.Object.Name != "prospecting" || !res.At.Equal(undoT0) {
		t.Errorf("result = %+v", res)
	}
	e := res.Explanation
	if e.Err != nil || !e.InScope || !e.Match || e.When == nil || e.When.Source != "spend > 1" || e.When.Truth != rules.True {
		t.Fatalf("explanation = %+v", e)
	}
	if s := e.When.Terms[0]; s.Source != "spend" || s.Num != 70 {
		t.Errorf("spend term = %+v", s)
	}
	want := ExplainDecision{Kind: "change_budget", Field: "daily_budget", Before: 50.0, After: 60.0, Result: engine.ResultWouldApply}
	if len(res.Decisions) != 1 || res.Decisions[0] != want {
		t.Errorf("decisions = %+v, want %+v", res.Decisions, want)
	}
	if n := len(w.fake.Writes()); n != 0 {
		t.Errorf("explain wrote %d changes", n)
	}

	// After the run changed the budget, the cooldown holds the next change back; the
	// explanation says so, with the reason.
	w.runOnce(false)
	w.clock.Set(undoT0.Add(time.Hour))
	writes := len(w.fake.Writes())
	res, err = w.explain("ops/scale", w.adset, w.acct)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Explanation.Match || len(res.Decisions) != 1 {
		t.Fatalf("decisions = %+v", res.Decisions)
	}
	if d := res.Decisions[0]; d.Result != state.ResultSkippedCooldown || d.Reason == "" {
		t.Errorf("decision = %+v, want skipped_cooldown with its reason", d)
	}
	// The paused ad: the pause would change nothing.
	res, err = w.explain("stop-loss", w.spender, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Object.Status != "PAUSED" || !res.Explanation.Match || len(res.Decisions) != 1 {
		t.Fatalf("result = %+v", res)
	}
	if d := res.Decisions[0]; d.Result == engine.ResultWouldApply {
		t.Errorf("decision = %+v: pausing a paused ad is no write", d)
	}
	if n := len(w.fake.Writes()); n != writes {
		t.Errorf("explain wrote %d changes", n-writes)
	}
}

func TestExplainFindsTheObjectInTheFirstAccountHoldingIt(t *testing.T) {
	w := newUndoWorld(t, "")
	empty := fakegraph.Must(w.fake.AddAccount(fakegraph.Account{ID: "act_2002", Currency: "EUR", TimezoneName: "Europe/Berlin"}))
	broken := fakegraph.Must(w.fake.AddAccount(fakegraph.Account{ID: "act_3003", Currency: "USD", TimezoneName: "UTC"}))
	later := fakegraph.Must(w.fake.AddAccount(fakegraph.Account{ID: "act_4004", Currency: "USD", TimezoneName: "UTC"}))
	w.fake.Inject(fakegraph.FaultRule{Account: broken, Times: -1, Fault: fakegraph.ErrorFault(200, 0)})
	cfg, err := os.ReadFile(w.cfg)
	must(t, err)
	accounts := "accounts:\n- {id: " + empty + "}\n- {id: " + broken + "}\n- {id: " + w.acct + "}\n- {id: " + later + "}\n"
	w.write("rulesd.yaml", strings.Replace(string(cfg), "accounts:\n- {id: "+w.acct+"}\n", accounts, 1))

	res, err := w.explain("stop-loss", w.spender, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.AccountID != w.acct || !res.Explanation.Match || len(res.Skipped) != 1 || res.Skipped[0] != broken {
		t.Errorf("account %s, match %v, skipped %v", res.AccountID, res.Explanation.Match, res.Skipped)
	}
	for _, r := range w.fake.Requests() {
		if r.Account == later {
			t.Fatalf("read %s after the object was found: %s", later, r.Template)
		}
	}

	// Only the account asked for: a failed read is an error, not a skip.
	if _, err := w.explain("stop-loss", w.spender, broken); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("explain in the broken account: err = %v, want a read error", err)
	}
	if _, err := w.explain("stop-loss", w.spender, empty); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no ad "+w.spender+" in account "+empty) {
		t.Errorf("explain in the empty account: err = %v", err)
	}
	// An id of another level is not an ad.
	if _, err := w.explain("stop-loss", w.adset, ""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "reading failed for "+broken) {
		t.Errorf("an ad set as an ad: err = %v", err)
	}
}

func TestExplainRuleNames(t *testing.T) {
	w := newUndoWorld(t, "")
	w.write("rules/more.yaml", `groups:
- name: more
  accounts: [act_1001]
  rules:
  - name: scale
    level: campaign
    window: today
    when: spend > 1
    action: {kind: notify}
`)
	if _, err := w.explain("scale", w.adset, ""); err == nil || !strings.Contains(err.Error(), "ops/scale") || !strings.Contains(err.Error(), "more/scale") {
		t.Errorf("an ambiguous name: err = %v", err)
	}
	if _, err := w.explain("ops/scale", w.adset, ""); err != nil {
		t.Errorf("ops/scale: %v", err)
	}
	for _, c := range []struct{ rule, object, account, want string }{
		{"nope", w.adset, "", `no rule "nope"`},
		{"ops/nope", w.adset, "", `no rule "ops/nope"`},
		{"ops/scale", "1", "", "no adset 1 in the accounts of group ops"},
		{"ops/scale", w.adset, "act_404", "account act_404 is not in the config"},
	} {
		_, err := w.explain(c.rule, c.object, c.account)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("explain %s %s %s: err = %v, want %q", c.rule, c.object, c.account, err, c.want)
		}
	}
}
