package main

import (
	"fmt"
	"strings"
	"testing"
)

// `rulesd explain` (SPEC 6) against the simulated Marketing API: the stop-loss rule
// taken apart for the ad it pauses and for the ad it leaves alone.

func TestExplainEndToEnd(t *testing.T) {
	w := newE2E(t)
	acct, ids := w.stopLossWorld()
	w.write("rules/stop-loss.yaml", stopLossRules)
	cfg := w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), "")

	t.Run("spender matches and would be paused", func(t *testing.T) {
		stdout, stderr, code := w.rulesd("explain", "--config", cfg, "--rule", "pause-spend-without-purchase", "--object", ids["spender"])
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, want := range []string{
			"rule stop-loss/pause-spend-without-purchase (level ad, window last_7d)\n",
			fmt.Sprintf("ad %s \"spender\", status ACTIVE", ids["spender"]),
			"account " + acct + " (USD)",
			"where: campaign.objective == \"OUTCOME_SALES\"   → true\n",
			"  campaign.objective   → \"OUTCOME_SALES\"\n",
			"when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000   → true\n",
			"  spend > 2 * account.vars.target_cpa   → true\n",
			"    spend   → 70\n",
			"    2 * account.vars.target_cpa   → 50\n",
			"      account.vars.target_cpa   → 25\n",
			"  purchases == 0   → true\n",
			"    purchases   → 0\n",
			"  impressions > 1000   → true\n",
			"    impressions   → 7000\n",
			"in scope: yes; matches: yes\n",
			"decision: pause status ACTIVE → PAUSED: would_apply\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
		// Nothing was written to the API.
		if writes := w.fake.Writes(); len(writes) != 0 {
			t.Errorf("explain wrote %d changes to the API", len(writes))
		}
	})

	t.Run("buyer does not match", func(t *testing.T) {
		stdout, stderr, code := w.rulesd("explain", "--config", cfg, "--rule", "stop-loss/pause-spend-without-purchase", "--object", ids["buyer"], "--account", acct)
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, want := range []string{
			"when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000   → false\n",
			"  spend > 2 * account.vars.target_cpa   → true\n",
			"  purchases == 0   → false\n",
			"    purchases   → 7\n",
			"in scope: yes; matches: no\n",
			"decision: none: the rule does not match this object\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("not found and bad usage", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"--rule", "no-such-rule", "--object", ids["spender"]}, 1, `no rule "no-such-rule"`},
			{[]string{"--rule", "pause-spend-without-purchase", "--object", "999999"}, 1, "no ad 999999"},
			{[]string{"--rule", "pause-spend-without-purchase", "--object", ids["spender"], "--account", "act_404"}, 1, "account act_404 is not in the config"},
			{[]string{"--rule", "pause-spend-without-purchase"}, 2, "--rule and --object are required"},
			{[]string{"--object", ids["spender"]}, 2, "--rule and --object are required"},
			{[]string{"--rule", "pause-spend-without-purchase", "--object", ids["spender"], "extra"}, 2, `unexpected argument "extra"`},
			{[]string{"--bogus"}, 2, "flag provided but not defined"},
		} {
			stdout, stderr, code := w.rulesd(append([]string{"explain", "--config", cfg}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("explain %v: exit %d, stderr %q; want exit %d with %q (stdout %q)", c.args, code, stderr, c.code, c.msg, stdout)
			}
		}
	})
}
