package ruletest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, path string) *File {
	t.Helper()
	f, diags := Load(path)
	if f == nil {
		t.Fatalf("load %s: %v", path, diags)
	}
	return f
}

func run(t *testing.T, f *File) []*Result {
	t.Helper()
	res := f.Run(context.Background(), nil)
	if len(res) != len(f.Tests) {
		t.Fatalf("ran %d of %d tests", len(res), len(f.Tests))
	}
	return res
}

func failureText(r *Result) string {
	var b strings.Builder
	r.Format(&b)
	return b.String()
}

// The example tests of rules/tests must pass: they are the documentation's.
func TestExampleRuleTests(t *testing.T) {
	paths, err := filepath.Glob("../../rules/tests/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	for _, p := range paths {
		for _, r := range run(t, load(t, p)) {
			if !r.Passed() {
				t.Errorf("%s", failureText(r))
			}
		}
	}
}

// pass_test.yaml covers state carried over between steps: the cooldown, a budget a
// person changed (manual hold), a pause the next steps see, purchases from actions.
func TestPassingTests(t *testing.T) {
	f := load(t, "testdata/pass_test.yaml")
	if len(f.Tests) != 2 {
		t.Fatalf("%d tests, want 2", len(f.Tests))
	}
	for _, r := range run(t, f) {
		if !r.Passed() {
			t.Errorf("%s", failureText(r))
		}
	}
}

func TestFailingTestsSayWhy(t *testing.T) {
	res := run(t, load(t, "testdata/fail_test.yaml"))
	if len(res) != 2 || res[0].Passed() || res[1].Passed() {
		t.Fatalf("want two failures, got %+v", res)
	}
	first := res[0].Failure
	if first.Step != 1 || len(first.Missing) != 2 || len(first.Unexpected) != 1 {
		t.Errorf("failure %+v", first)
	}
	out := failureText(res[0])
	for _, want := range []string{
		"FAIL testdata/fail_test.yaml:4:3: expects the wrong thing\n",
		"step 1 at 2026-11-20T10:00:00Z (testdata/fail_test.yaml:10:5)",
		"expected:\n        budgets/raise-winners on 11: change_budget to 70\n        budgets/pause-losers on 12: pause\n",
		"actual:\n        budgets/raise-winners on 11 \"Winner\": change_budget daily_budget 50 → 60 (applied)\n",
		"budgets/raise-winners on 11: change_budget to 70: the rule's decision was applied, daily_budget 50 → 60",
		"values the rule saw: status=\"ACTIVE\" roas=4 spend=20",
		"budgets/pause-losers on 12: pause: the rule's condition (when) is not true",
		"values the rule saw: status=\"ACTIVE\" spend=5 purchases=0",
		"unexpected:\n        budgets/raise-winners on 11 \"Winner\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out = failureText(res[1])
	for _, want := range []string{"expected:\n        none\n", "unexpected:\n        budgets/raise-winners on 11 \"Winner\": change_budget daily_budget 50 → 60 (applied)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunSelectsTestsByName(t *testing.T) {
	f := load(t, "testdata/pass_test.yaml")
	res := f.Run(context.Background(), func(name string) bool { return strings.HasPrefix(name, "purchases") })
	if len(res) != 1 || !res[0].Passed() {
		t.Fatalf("got %+v", res)
	}
}

func diagLines(t *testing.T, path string) []string {
	t.Helper()
	f, diags := Load(path)
	if f != nil {
		t.Fatalf("%s loaded, want errors", path)
	}
	var out []string
	for _, d := range diags {
		out = append(out, d.String())
	}
	return out
}

func wantLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadTestFile(t *testing.T) {
	const p = "testdata/bad_test.yaml"
	wantLines(t, diagLines(t, p), []string{
		p + `:6:34: currency "usd" must be an ISO 4217 code such as USD or EUR`,
		p + `:6:49: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin)`,
		p + `:9:13: level "ads" must be campaign, adset or ad (did you mean "ad"?)`,
		p + `:14:7: unknown window "last_8d" (one of today, yesterday, last_3d, last_7d, last_14d, last_28d, last_30d, lifetime) (did you mean "last_28d"?)`,
		p + `:15:15: no object "99" in this test's objects`,
		p + `:17:14: no rule "raise-winner" in the rule files under test (did you mean "raise-winners"?)`,
		p + `:18:50: rule pause-losers's action is pause, not "unpause"`,
		p + `:19:36: rule pause-losers works on adsets; object "13" is a campaign`,
		p + `:20:64: after: is the budget or bid after a budget or bid action; rule pause-losers's action is pause`,
		p + `:21:65: result "skiped_manual" must be one of applied, dry_run, failed, skipped_cooldown, skipped_conflict, skipped_noop, skipped_pacing, skipped_manual, blocked_guard, blocked_flapping, pending (did you mean "skipped_manual"?)`,
		p + `:22:9: steps must be in time order: 2026-11-20T09:00:00Z is not after the previous step's 2026-11-20T10:00:00Z`,
		p + `:24:9: at "tomorrow" must be an RFC 3339 time such as 2026-11-20T15:00:00Z`,
	})
}

func TestUnknownKeys(t *testing.T) {
	const p = "testdata/badkeys_test.yaml"
	wantLines(t, diagLines(t, p), []string{
		p + `:6:30: unknown key "colour" in object`,
		p + `:8:5: step is missing the required key "expect"`,
		p + `:10:22: unknown key "spnd" in insights (did you mean "spend"?)`,
		p + `:12:13: "expect" must be a list, not "nothing"`,
	})
}

// Errors of the config block point into the test file; a rule file that cannot be
// read points at its name.
func TestBadConfigAndRuleFile(t *testing.T) {
	const p = "testdata/badconfig_test.yaml"
	wantLines(t, diagLines(t, p), []string{
		p + `:1:26: read rule file: open testdata/missing.yaml: no such file or directory`,
		p + `:5:5: account id "acct_8" must look like act_1234567890`,
		p + `:6:11: safety limits must not be negative`,
	})
}

func TestYAMLSyntaxError(t *testing.T) {
	f, diags := Parse("x_test.yaml", []byte("tests: [\n"))
	if f != nil || len(diags) != 1 || !strings.HasPrefix(diags[0].String(), "x_test.yaml:") {
		t.Fatalf("got %v", diags)
	}
}

// A rule error in a rule file is reported at its own position.
func TestRuleFileErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.yaml", "groups:\n- name: g\n  rules:\n  - name: r\n    level: ad\n    window: today\n    when: spendd > 1\n    action: {kind: pause}\n")
	write(t, dir, "r_test.yaml", "rule_files: [r.yaml]\ntests:\n- name: x\n  account: {id: act_1}\n  objects: [{level: ad, id: \"1\"}]\n  steps: [{at: 2026-11-20T10:00:00Z, expect: []}]\n")
	f, diags := Load(filepath.Join(dir, "r_test.yaml"))
	if f != nil || len(diags) == 0 || !strings.HasPrefix(diags[0].String(), filepath.Join(dir, "r.yaml")+":7:") {
		t.Fatalf("got %v", diags)
	}
}

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Pausing a campaign pauses its ads in effect (CAMPAIGN_PAUSED), so an ad rule
// scoped on effective_status leaves them alone; a dry-run rule's decisions count as
// actions; a rule waiting for `for` can be expected as pending.
func TestHierarchyDryRunAndPending(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "r.yaml", `
groups:
- name: g
  rules:
  - name: pause-campaign
    level: campaign
    window: today
    when: spend > 100
    action: {kind: pause}
  - name: pause-ad
    level: ad
    window: today
    where: effective_status == "ACTIVE"
    when: spend > 10
    for: 30m
    action: {kind: pause}
  - name: try-bid
    level: adset
    window: today
    dry_run: true
    when: spend > 10 && adset.effective_status == "CAMPAIGN_PAUSED"
    action: {kind: set_bid, amount: 2.5}
`)
	write(t, dir, "r_test.yaml", `
rule_files: [r.yaml]
tests:
- name: hierarchy
  account: {id: act_1, currency: JPY}
  objects:
  - {level: campaign, id: "1", name: "C"}
  - {level: adset, id: "11", campaign: {id: "1"}, bid_amount: 100}
  - {level: ad, id: "111", adset: {id: "11"}}
  steps:
  - at: 2026-11-20T10:00:00Z
    insights:
      today: {"1": {spend: 200}, "11": {spend: 200}, "111": {spend: 200}}
    expect:
    - {rule: pause-campaign, object: "1", action: pause}
    - {rule: pause-ad, object: "111", action: pause, result: pending}
  - at: 2026-11-20T10:30:00Z
    expect:
    - {rule: try-bid, object: "11", action: set_bid, result: dry_run, after: 3}
`)
	f := load(t, filepath.Join(dir, "r_test.yaml"))
	for _, r := range run(t, f) {
		if !r.Passed() {
			t.Errorf("%s", failureText(r))
		}
	}
}
