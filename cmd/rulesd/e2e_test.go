package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
)

// The end-to-end tests run the real binary, built once, against the simulated
// Marketing API on a loopback port.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rulesd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rulesd")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rulesd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2e is one simulated world and a config pointing at it.
type e2e struct {
	t    *testing.T
	fake *fakegraph.Server
	srv  *httptest.Server
	dir  string
	now  time.Time
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	fake := fakegraph.New(fakegraph.Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &e2e{t: t, fake: fake, srv: srv, dir: t.TempDir(), now: now}
}

// write writes a file under the test's directory and returns its path.
func (w *e2e) write(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// config writes rulesd.yaml for the given accounts (YAML list items) and rule files.
func (w *e2e) config(accounts string, extra string) string {
	w.write("token", fakegraph.DefaultToken+"\n")
	return w.write("rulesd.yaml", fmt.Sprintf(`
graph:
  base_url: %s
  api_version: v27.0
  access_token_file: token
accounts:
%s
rule_files: ["rules/*.yaml"]
state: {driver: sqlite, dsn: state.db}
log: {level: debug, format: json}
%s`, w.srv.URL, accounts, extra))
}

// rulesd runs the binary and returns stdout, stderr and the exit code.
func (w *e2e) rulesd(args ...string) (string, string, int) {
	w.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "RULESD_ACCESS_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (w *e2e) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// stopLossWorld: one USD account with three ads: a spender without purchases, a
// buyer, and a paused spender.
func (w *e2e) stopLossWorld() (acct string, ids map[string]string) {
	f := w.fake
	acct = fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	camp := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct, Objective: "OUTCOME_SALES"}))
	as := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	ids = map[string]string{}
	for _, name := range []string{"spender", "buyer", "paused-spender", "quiet"} {
		status := fakegraph.StatusActive
		if name == "paused-spender" {
			status = fakegraph.StatusPaused
		}
		ids[name] = fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as, Name: name, Status: status}))
	}
	for d := -7; d <= -1; d++ {
		day := f.Day(acct, d)
		w.must(f.SetDaily(ids["spender"], day, fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Clicks: 12}))
		w.must(f.SetDaily(ids["paused-spender"], day, fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700}))
		w.must(f.SetDaily(ids["buyer"], day, fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Purchases: 1, PurchaseValue: 50}))
		w.must(f.SetDaily(ids["quiet"], day, fakegraph.DayMetrics{Spend: 0.5, Impressions: 40, Reach: 30}))
	}
	return acct, ids
}

const stopLossRules = `
groups:
- name: stop-loss
  rules:
  - name: pause-spend-without-purchase
    level: ad
    window: last_7d
    where: campaign.objective == "OUTCOME_SALES"
    when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000
    action: {kind: pause}
`

type previewJSON struct {
	Matches []struct {
		Group, Rule, Level, ID, Name, Result string
		AccountID                            string `json:"account_id"`
		Action                               struct {
			Kind, Field   string
			Before, After any
		}
		Values map[string]any
	}
	Errors []struct {
		AccountID string `json:"account_id"`
		Stage     string
		Message   string
	}
}

func TestPreviewJSONEndToEnd(t *testing.T) {
	w := newE2E(t)
	acct, ids := w.stopLossWorld()
	w.write("rules/stop-loss.yaml", stopLossRules)
	cfg := w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), "")
	stdout, stderr, code := w.rulesd("preview", "--config", cfg, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var got previewJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not the JSON of SPEC 6: %v\n%s", err, stdout)
	}
	var matched []string
	for _, m := range got.Matches {
		matched = append(matched, m.Name+":"+m.Result)
	}
	sort.Strings(matched)
	// The paused spender matches too, but pausing it would change nothing.
	want := []string{"paused-spender:skipped_noop", "spender:would_apply"}
	if strings.Join(matched, ",") != strings.Join(want, ",") {
		t.Fatalf("matches = %v, want %v", matched, want)
	}
	for _, m := range got.Matches {
		if m.Name != "spender" {
			continue
		}
		if m.ID != ids["spender"] || m.AccountID != acct || m.Level != "ad" || m.Group != "stop-loss" {
			t.Errorf("match identity wrong: %+v", m)
		}
		if m.Action.Kind != "pause" || m.Action.Field != "status" || m.Action.Before != "ACTIVE" || m.Action.After != "PAUSED" {
			t.Errorf("action = %+v", m.Action)
		}
		if m.Values["spend"] != 70.0 || m.Values["purchases"] != 0.0 || m.Values["account.vars.target_cpa"] != 25.0 || m.Values["campaign.objective"] != "OUTCOME_SALES" {
			t.Errorf("values = %v", m.Values)
		}
	}
	// A preview writes nothing.
	if writes := w.fake.Writes(); len(writes) != 0 {
		t.Errorf("preview wrote %d changes to the API", len(writes))
	}
	// The minimum requests: account, campaigns (for campaign.objective), ads, and one
	// insights read for (ad, last_7d).
	if n := len(w.fake.Requests()); n != 4 {
		for _, r := range w.fake.Requests() {
			t.Log(r.Method, r.Template, r.Params.Encode())
		}
		t.Errorf("preview made %d requests, want 4", n)
	}
	if strings.Contains(stdout+stderr, fakegraph.DefaultToken) {
		t.Error("the access token appears in the output")
	}
}

func TestPreviewReportsAccountErrorsAndShowsOthers(t *testing.T) {
	w := newE2E(t)
	acct, _ := w.stopLossWorld()
	// A second account whose token lacks permission.
	other := fakegraph.Must(w.fake.AddAccount(fakegraph.Account{ID: "act_2002", Currency: "JPY", TimezoneName: "Asia/Tokyo"}))
	w.fake.Inject(fakegraph.FaultRule{Account: other, Times: -1, Fault: fakegraph.ErrorFault(200, 0)})
	w.write("rules/stop-loss.yaml", stopLossRules)
	cfg := w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}\n- {id: %s, vars: {target_cpa: 3000}}", acct, other), "")
	stdout, stderr, code := w.rulesd("preview", "--config", cfg, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (an account failed)\n%s\n%s", code, stdout, stderr)
	}
	var got previewJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Errors) != 1 || got.Errors[0].AccountID != other || got.Errors[0].Stage != "read" {
		t.Fatalf("errors = %+v", got.Errors)
	}
	found := false
	for _, m := range got.Matches {
		found = found || (m.AccountID == acct && m.Name == "spender")
	}
	if !found {
		t.Errorf("the healthy account's matches are missing: %+v", got.Matches)
	}
	// The table form says the same to a person.
	table, _, _ := w.rulesd("preview", "--config", cfg)
	if !strings.Contains(table, "stop-loss/pause-spend-without-purchase") || !strings.Contains(table, "error (read) "+other) {
		t.Errorf("table output:\n%s", table)
	}
}
