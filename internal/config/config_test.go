package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseExampleAndDefaults(t *testing.T) {
	src := `
graph:
  access_token_file: token
accounts:
- id: act_1234567890
  name: Acme US
  labels: {tier: gold}
  vars: {target_cpa: 25}
  safety: {max_daily_budget: 2000}
- act_2233445566
rule_files: ["rules/*.yaml"]
state: {retention: 30d}
safety: {max_actions_per_run: 20, manual_hold: 12h}
notifiers:
- {name: growth-slack, type: slack, webhook_url_file: slack}
- {name: hook, type: webhook, url: "https://example.internal/hook"}
`
	c, l := Parse("/etc/rulesd/rulesd.yaml", []byte(src))
	if c == nil {
		t.Fatal(l.Err())
	}
	if len(c.Accounts) != 2 || c.Accounts[1].ID != "act_2233445566" || c.Accounts[1].Vars != nil {
		t.Errorf("accounts = %+v", c.Accounts)
	}
	a := c.Accounts[0]
	if a.Safety.MaxDailyBudget != 2000 || a.Safety.MaxActionsPerRun != 20 || a.Safety.ManualHold.Std() != 12*time.Hour || a.Safety.MaxBudgetIncreasePctPerDay != 50 {
		t.Errorf("account safety did not inherit the global block and defaults: %+v", a.Safety)
	}
	if c.State.Retention.Std() != 30*24*time.Hour || c.State.Driver != "sqlite" || c.State.DSN != "rulesd.db" {
		t.Errorf("state = %+v", c.State)
	}
	if c.Graph.BaseURL != DefaultBaseURL || c.Graph.APIVersion != DefaultAPIVersion || c.Graph.MaxInFlight != 8 || c.Graph.Timeout.Std() != 30*time.Second {
		t.Errorf("graph defaults = %+v", c.Graph)
	}
	if c.Schedule.Value != DefaultSchedule || c.Timezone.Value != "UTC" || c.Listen != ":8080" {
		t.Errorf("defaults: schedule %q timezone %q listen %q", c.Schedule.Value, c.Timezone.Value, c.Listen)
	}
	if got := c.Metrics.ActionTypes["purchase"]; len(got) != 3 || got[0] != "purchase" {
		t.Errorf("purchase action types = %v", got)
	}
	if c.Resolve("token") != "/etc/rulesd/token" || c.Resolve("/abs") != "/abs" {
		t.Errorf("paths resolve against the config's directory: %q", c.Resolve("token"))
	}
	if strings.Join(c.VarNames(), ",") != "target_cpa" || strings.Join(c.LabelNames(), ",") != "tier" || !c.HasNotifier("hook") {
		t.Error("names of vars, labels or notifiers wrong")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"grpah: {}\n", `c.yaml:1:1: unknown key "grpah" in the config (did you mean "graph"?)`},
		{"graph: {timeout: soon}\n", `c.yaml:1:18: "timeout": invalid duration "soon"`},
		{"accounts: [1234]\n", `c.yaml:1:12: account id "1234" must look like act_1234567890`},
		{"accounts: [act_1, act_1]\n", `account act_1 is listed twice`},
		{"accounts: [{id: act_1, vars: {cpa: high}}]\n", `"cpa" must be a number, not "high"`},
		{"timezone: Europe/Berlim\n", `c.yaml:1:11: unknown time zone "Europe/Berlim"`},
		{"state: {driver: mysql}\n", `state.driver must be sqlite or postgres, not "mysql"`},
		{"notifiers: [{name: a, type: slack}]\n", `needs webhook_url_file`},
		{"notifiers: [{name: a, type: slak, url: x}]\n", `unknown notifier type "slak" (slack or webhook) (did you mean "slack"?)`},
		{"notifiers: [{type: slack}]\n", `notifier is missing the required key "name"`},
		{"metrics: {action_types: {purchases: [x]}}\n", `unknown kind "purchases"`},
		{"log: {format: text}\n", `log.format must be json or console`},
		{"metrics: {action_types: {purchase: []}}\n", `metrics.action_types.purchase must list at least one action type`},
		{"metrics: {action_types: {lead: }}\n", `metrics.action_types.lead must list at least one action type`},
		{"metrics: {action_types: {install: [mobile_app_install, \"\"]}}\n", `metrics.action_types.install lists an empty action type`},
		{"state: {retention: NaNd}\n", `invalid duration "NaNd"`},
		{"safety: {manual_hold: infd}\n", `invalid duration "infd"`},
		{"safety: {manual_hold: 1e300w}\n", `invalid duration "1e300w"`},
		{"graph: [1, 2]\n", `"graph" must be a mapping of keys to values, not a list`},
		{"accounts: [{id: act_1}\n", `c.yaml:1:1: YAML syntax error: did not find expected`},
	}
	for _, tt := range tests {
		c, l := Parse("c.yaml", []byte(tt.src))
		if c != nil {
			t.Errorf("%q loaded; want error %q", tt.src, tt.want)
			continue
		}
		if got := l.Err().Error(); !strings.Contains(got, tt.want) {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestRuleFilePaths(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yaml", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, l := Parse(filepath.Join(dir, "rulesd.yaml"), []byte(`rule_files: ["*.yaml"]`))
	if c == nil {
		t.Fatal(l.Err())
	}
	paths, err := c.RuleFilePaths()
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "a.yaml" || filepath.Base(paths[1]) != "b.yaml" {
		t.Errorf("paths = %v (sorted, relative to the config)", paths)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30m": 30 * time.Minute, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "0.5d": 12 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1h", "-2d", "d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}
