package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/fakegraph"
)

// Hot reload (issue 5, item 2), in process: app.Run serves on a loopback port against
// the simulated Marketing API, and the test drives runs through Options.Tick.

// reloadT0 is the first run's time: a weekday afternoon, far from midnight in the
// account's time zone, so that runs an hour apart read the same days.
var reloadT0 = time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)

// waitFor bounds every wait of these tests.
const waitFor = 10 * time.Second

const stopLossYAML = `groups:
- name: stop-loss
  schedule: "*/30 * * * *"
  rules:
  - name: pause-spend-without-purchase
    level: ad
    window: last_7d
    when: spend > 2 * account.vars.target_cpa && purchases == 0 && impressions > 1000
%s    action: {kind: pause}
`

// watchYAML is a second group; cond is its rule's condition.
const watchYAML = `groups:
- name: watch
  schedule: "*/30 * * * *"
  rules:
  - name: %s
    level: adset
    window: last_7d
    when: %s
    action: {kind: pause}
`

// brokenWatchYAML names a metric that does not exist, on line 8.
var brokenWatchYAML = fmt.Sprintf(watchYAML, "huge-spend", "spnd > 1000000")

// errPos matches a problem reported as FILE:LINE:COL.
var errPos = regexp.MustCompile(`watch\.yaml:\d+:\d+: `)

// clk is the simulated clock shared by rulesd and the fake API.
type clk struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clk) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clk) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// daemon is one simulated world and a rulesd running over it.
type daemon struct {
	t       *testing.T
	dir     string
	cfg     string
	fake    *fakegraph.Server
	clock   *clk
	acct    string
	spender string // the ad the stop-loss rule pauses
	base    string // http://127.0.0.1:PORT
	logs    *observer.ObservedLogs
	tick    chan time.Time
	reload  chan struct{}
	runs    chan engine.AccountRun
}

// newWorld lays out the simulated account (one ad that spends without buying, one
// that buys) and a config reading rules/*.yaml.
func newWorld(t *testing.T) *daemon {
	t.Helper()
	c := &clk{t: reloadT0}
	fake := fakegraph.New(fakegraph.Options{Now: c.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	d := &daemon{t: t, dir: t.TempDir(), fake: fake, clock: c}
	d.acct = fakegraph.Must(fake.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	camp := fakegraph.Must(fake.AddCampaign(fakegraph.Campaign{AccountID: d.acct, Objective: "OUTCOME_SALES"}))
	as := fakegraph.Must(fake.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	d.spender = fakegraph.Must(fake.AddAd(fakegraph.Ad{AdSetID: as, Name: "spender", Status: fakegraph.StatusActive}))
	buyer := fakegraph.Must(fake.AddAd(fakegraph.Ad{AdSetID: as, Name: "buyer", Status: fakegraph.StatusActive}))
	for day := -7; day <= -1; day++ {
		date := fake.Day(d.acct, day)
		must(t, fake.SetDaily(d.spender, date, fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Clicks: 12}))
		must(t, fake.SetDaily(buyer, date, fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Purchases: 1, PurchaseValue: 50}))
	}
	d.write("token", fakegraph.DefaultToken)
	d.cfg = d.write("rulesd.yaml", fmt.Sprintf(`graph: {base_url: %q, api_version: v27.0, access_token_file: token, timeout: 10s}
accounts:
- {id: %s, vars: {target_cpa: 25}}
rule_files: ["rules/*.yaml"]
state: {driver: sqlite, dsn: state.db}
listen: "127.0.0.1:0"
`, srv.URL, d.acct))
	return d
}

// write writes a file under the test's directory and returns its path.
func (d *daemon) write(name, content string) string {
	d.t.Helper()
	p := filepath.Join(d.dir, name)
	must(d.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(d.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// start runs the daemon until the end of the test; with watch false the rule files
// are not watched, so only the test's reloads count.
func (d *daemon) start(watch bool) {
	t := d.t
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	d.logs = logs
	d.tick = make(chan time.Time)
	d.reload = make(chan struct{})
	d.runs = make(chan engine.AccountRun, 100)
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{
			ConfigPath: d.cfg, Logger: zap.New(core), Now: d.clock.Now, Tick: d.tick, Reload: d.reload,
			OnRun:    func(r engine.AccountRun) { d.runs <- r },
			OnListen: func(a string) { addr <- a },
			noWatch:  !watch,
		})
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of its context's end")
		}
	})
	select {
	case a := <-addr:
		d.base = "http://" + a
	case err := <-done:
		t.Fatalf("Run returned before listening: %v", err)
	case <-time.After(waitFor):
		t.Fatal("rulesd did not listen within 10s")
	}
}

// runAt runs every group at at and waits for its n account runs.
func (d *daemon) runAt(at time.Time, n int) []engine.AccountRun {
	d.t.Helper()
	d.clock.Set(at)
	select {
	case d.tick <- at:
	case <-time.After(waitFor):
		d.t.Fatal("the daemon took no tick within 10s")
	}
	var out []engine.AccountRun
	for len(out) < n {
		select {
		case r := <-d.runs:
			out = append(out, r)
		case <-time.After(waitFor):
			d.t.Fatalf("%d of %d account runs finished within 10s", len(out), n)
		}
	}
	return out
}

// do sends a request and returns the status code and body.
func (d *daemon) do(method, path string) (int, string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, nil)
	must(d.t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(d.t, err)
	return resp.StatusCode, string(b)
}

// rulesJSON is what the tests read of GET /api/v1/rules.
type rulesJSON struct {
	Reload struct {
		OK     bool     `json:"ok"`
		Errors []string `json:"errors"`
	} `json:"reload"`
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Name string `json:"name"`
			When string `json:"when"`
		} `json:"rules"`
	} `json:"groups"`
}

// rules returns GET /api/v1/rules.
func (d *daemon) rules() rulesJSON {
	d.t.Helper()
	code, body := d.do("GET", "/api/v1/rules")
	if code != http.StatusOK {
		d.t.Fatalf("GET /api/v1/rules: %d %s", code, body)
	}
	var r rulesJSON
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		d.t.Fatalf("GET /api/v1/rules: %v\n%s", err, body)
	}
	return r
}

// names lists the loaded rules as GROUP/RULE, sorted.
func (r rulesJSON) names() []string {
	var out []string
	for _, g := range r.Groups {
		for _, x := range g.Rules {
			out = append(out, g.Name+"/"+x.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (r rulesJSON) has(name string) bool {
	for _, n := range r.names() {
		if n == name {
			return true
		}
	}
	return false
}

// eventually polls GET /api/v1/rules every 20 ms until ok holds, for at most 10 s.
func (d *daemon) eventually(what string, ok func(rulesJSON) bool) rulesJSON {
	d.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		r := d.rules()
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not within 10s: %s; rules %v, reload %+v", what, r.names(), r.Reload)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the value of an unlabelled metric at /metrics.
func (d *daemon) metric(name string) string {
	d.t.Helper()
	code, body := d.do("GET", "/metrics")
	if code != http.StatusOK {
		d.t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	d.t.Fatalf("no %s at /metrics", name)
	return ""
}

// writes lists the fake API's writes as "ID FIELD OLD->NEW".
func (d *daemon) writes() []string {
	var out []string
	for _, w := range d.fake.Writes() {
		out = append(out, fmt.Sprintf("%s %s %s->%s", w.ObjectID, w.Field, w.Old, w.New))
	}
	return out
}

// wantBrokenReported checks that a failed reload shows at /metrics, in
// /api/v1/rules, at the top of the status page and in the log.
func (d *daemon) wantBrokenReported() {
	t := d.t
	t.Helper()
	if v := d.metric("rulesd_config_last_reload_successful"); v != "0" {
		t.Errorf("rulesd_config_last_reload_successful = %s after a failed reload, want 0", v)
	}
	r := d.rules()
	if r.Reload.OK || len(r.Reload.Errors) == 0 || !errPos.MatchString(strings.Join(r.Reload.Errors, "\n")) {
		t.Errorf("GET /api/v1/rules reload = %+v, want the failure with FILE:LINE:COL", r.Reload)
	}
	code, page := d.do("GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	page = html.UnescapeString(page)
	banner := strings.Index(page, "The last reload failed")
	if banner < 0 || !strings.Contains(page, `unknown name spnd`) || !errPos.MatchString(page) {
		t.Errorf("the status page does not say why the reload failed:\n%s", page)
	}
	if first := strings.Index(page, "stop-loss"); banner > first {
		t.Errorf("the reload error is not at the top of the status page (at %d, the first group at %d)", banner, first)
	}
	if d.logs.FilterMessageSnippet("reload failed").Len() == 0 {
		t.Error("the failed reload is not in the log")
	}
}

func TestReloadEndpoint(t *testing.T) {
	d := newWorld(t)
	d.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	d.start(false)
	if got := d.rules().names(); strings.Join(got, ",") != "stop-loss/pause-spend-without-purchase" {
		t.Fatalf("rules at start: %v", got)
	}
	if v := d.metric("rulesd_config_last_reload_successful"); v != "1" {
		t.Errorf("rulesd_config_last_reload_successful = %s at start, want 1", v)
	}

	// A good change: a new group.
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend", "spend > 1000000"))
	if code, body := d.do("POST", "/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload of a good change: %d %s", code, body)
	}
	if r := d.rules(); !r.has("watch/huge-spend") || !r.has("stop-loss/pause-spend-without-purchase") || !r.Reload.OK {
		t.Fatalf("after a good reload: rules %v, reload %+v", r.names(), r.Reload)
	}

	// A broken change is refused with every problem, and the previous rules stay.
	d.write("rules/watch.yaml", brokenWatchYAML)
	code, body := d.do("POST", "/-/reload")
	if code != http.StatusBadRequest || !errPos.MatchString(body) || !strings.Contains(body, `unknown name spnd`) {
		t.Fatalf("POST /-/reload of a broken file: %d %q, want 400 with FILE:LINE:COL: unknown name", code, body)
	}
	d.wantBrokenReported()
	if r := d.rules(); strings.Join(r.names(), ",") != "stop-loss/pause-spend-without-purchase,watch/huge-spend" {
		t.Errorf("after a failed reload the rules are %v, want the previous ones", r.names())
	}

	// The previous rules still run and act.
	runs := d.runAt(reloadT0, 2)
	for _, r := range runs {
		if r.Err != nil {
			t.Errorf("run of %s: %v", r.Group, r.Err)
		}
	}
	if got, want := strings.Join(d.writes(), ","), d.spender+" status ACTIVE->PAUSED"; got != want {
		t.Errorf("writes after the failed reload = %q, want %q", got, want)
	}
	code, body = d.do("GET", "/api/v1/actions?rule=stop-loss/pause-spend-without-purchase")
	var acts struct {
		Actions []struct {
			ObjectID string `json:"object_id"`
			Result   string `json:"result"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(body), &acts); code != http.StatusOK || err != nil ||
		len(acts.Actions) != 1 || acts.Actions[0].ObjectID != d.spender || acts.Actions[0].Result != "applied" {
		t.Errorf("GET /api/v1/actions: %d %s, want the applied pause of %s", code, body, d.spender)
	}

	// Fixing the file clears the error.
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend-2", "spend > 2000000"))
	if code, body := d.do("POST", "/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload after the fix: %d %s", code, body)
	}
	if r := d.rules(); !r.Reload.OK || !r.has("watch/huge-spend-2") || r.has("watch/huge-spend") {
		t.Errorf("after the fix: rules %v, reload %+v", r.names(), r.Reload)
	}
	if v := d.metric("rulesd_config_last_reload_successful"); v != "1" {
		t.Errorf("rulesd_config_last_reload_successful = %s after the fix, want 1", v)
	}
	if _, page := d.do("GET", "/"); strings.Contains(page, "The last reload failed") {
		t.Error("the status page still shows the reload error after a good reload")
	}
}

func TestReloadOnFileChange(t *testing.T) {
	d := newWorld(t)
	d.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	d.start(true)

	// A new file and a changed file are seen without a signal.
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend", "spend > 1000000"))
	d.eventually("the new rule file is loaded", func(r rulesJSON) bool { return r.has("watch/huge-spend") })
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "renamed", "spend > 1000000"))
	d.eventually("the changed rule file is loaded", func(r rulesJSON) bool {
		return r.has("watch/renamed") && !r.has("watch/huge-spend")
	})

	// A broken file written to disk is rejected; the previous rules keep running and
	// the page says why.
	d.write("rules/watch.yaml", brokenWatchYAML)
	r := d.eventually("the broken rule file is rejected", func(r rulesJSON) bool { return !r.Reload.OK })
	if strings.Join(r.names(), ",") != "stop-loss/pause-spend-without-purchase,watch/renamed" {
		t.Errorf("after a broken file on disk the rules are %v, want the previous ones", r.names())
	}
	d.wantBrokenReported()
	d.runAt(reloadT0, 2)
	if got, want := strings.Join(d.writes(), ","), d.spender+" status ACTIVE->PAUSED"; got != want {
		t.Errorf("writes after the rejected file = %q, want %q", got, want)
	}
}

// configMap lays out a directory as a Kubernetes ConfigMap volume does, and swaps
// its content as the kubelet does.
type configMap struct {
	t   *testing.T
	dir string
	cur string // the timestamped directory ..data points at
}

// newConfigMap makes dir/..TS/rules.yaml, dir/..data -> ..TS and
// dir/rules.yaml -> ..data/rules.yaml.
func newConfigMap(t *testing.T, dir, ts, content string) *configMap {
	t.Helper()
	c := &configMap{t: t, dir: dir}
	must(t, os.MkdirAll(dir, 0o755))
	c.writeVersion(ts, content)
	must(t, os.Symlink(ts, filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")))
	c.cur = ts
	return c
}

func (c *configMap) writeVersion(ts, content string) {
	c.t.Helper()
	must(c.t, os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	must(c.t, os.WriteFile(filepath.Join(c.dir, ts, "rules.yaml"), []byte(content), 0o644))
}

// swap writes a new timestamped directory, points ..data at it atomically (a new
// symlink renamed over the old one) and removes the old directory.
func (c *configMap) swap(ts, content string) {
	c.t.Helper()
	c.writeVersion(ts, content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	must(c.t, os.Symlink(ts, tmp))
	must(c.t, os.Rename(tmp, filepath.Join(c.dir, "..data")))
	must(c.t, os.RemoveAll(filepath.Join(c.dir, c.cur)))
	c.cur = ts
}

func TestReloadConfigMapSymlinkSwap(t *testing.T) {
	d := newWorld(t)
	cm := newConfigMap(t, filepath.Join(d.dir, "rules"), "..2026_11_27_01.1", fmt.Sprintf(stopLossYAML, ""))
	d.start(true)
	if got := d.rules().names(); strings.Join(got, ",") != "stop-loss/pause-spend-without-purchase" {
		t.Fatalf("rules at start: %v", got)
	}

	both := fmt.Sprintf(stopLossYAML, "") + strings.TrimPrefix(fmt.Sprintf(watchYAML, "huge-spend", "spend > 1000000"), "groups:\n")
	cm.swap("..2026_11_27_02.1", both)
	d.eventually("the swapped ConfigMap is loaded", func(r rulesJSON) bool { return r.has("watch/huge-spend") && r.Reload.OK })

	// A broken swap is rejected and reported; the rules of the last good swap stay.
	cm.swap("..2026_11_27_03.1", fmt.Sprintf(stopLossYAML, "")+strings.TrimPrefix(brokenWatchYAML, "groups:\n"))
	r := d.eventually("the broken swap is rejected", func(r rulesJSON) bool { return !r.Reload.OK })
	if strings.Join(r.names(), ",") != "stop-loss/pause-spend-without-purchase,watch/huge-spend" {
		t.Errorf("after a broken swap the rules are %v, want the previous ones", r.names())
	}
	if !regexp.MustCompile(`rules\.yaml:\d+:\d+: .*unknown name spnd`).MatchString(strings.Join(r.Reload.Errors, "\n")) {
		t.Errorf("reload errors = %q, want FILE:LINE:COL: unknown name", r.Reload.Errors)
	}
	if v := d.metric("rulesd_config_last_reload_successful"); v != "0" {
		t.Errorf("rulesd_config_last_reload_successful = %s after a broken swap, want 0", v)
	}
	if _, page := d.do("GET", "/"); !strings.Contains(html.UnescapeString(page), `unknown name spnd`) {
		t.Error("the status page does not show why the swap was rejected")
	}

	// The next good swap is loaded and clears the error.
	cm.swap("..2026_11_27_04.1", fmt.Sprintf(stopLossYAML, ""))
	d.eventually("the fixed swap is loaded", func(r rulesJSON) bool { return r.Reload.OK && !r.has("watch/huge-spend") })
}

func TestReloadOnSignal(t *testing.T) {
	d := newWorld(t)
	d.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	d.start(false) // no file watch: only the signal can reload
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend", "spend > 1000000"))
	// Nothing reloads on its own.
	time.Sleep(100 * time.Millisecond)
	if d.rules().has("watch/huge-spend") {
		t.Fatal("the rules changed without a reload")
	}
	select {
	case d.reload <- struct{}{}:
	case <-time.After(waitFor):
		t.Fatal("the daemon took no reload within 10s")
	}
	d.eventually("SIGHUP reloads", func(r rulesJSON) bool { return r.has("watch/huge-spend") })
	if d.logs.FilterMessage("reloaded").FilterField(zap.String("trigger", "signal")).Len() != 1 {
		t.Errorf("the log does not say the signal reloaded: %v", d.logs.FilterMessage("reloaded").All())
	}

	// A broken file on SIGHUP is refused like any other reload.
	d.write("rules/watch.yaml", brokenWatchYAML)
	d.reload <- struct{}{}
	d.eventually("SIGHUP reports the broken file", func(r rulesJSON) bool { return !r.Reload.OK })
	d.wantBrokenReported()
}

// TestReloadKeepsStateOfUnchangedGroups: a for: pending entry survives a reload that
// changes another group, and is reset by one that changes its own rule's condition
// (SPEC 4.1).
func TestReloadKeepsStateOfUnchangedGroups(t *testing.T) {
	d := newWorld(t)
	stopLoss := func(when string) string {
		s := fmt.Sprintf(stopLossYAML, "    for: 30m\n")
		if when != "" {
			s = strings.Replace(s, "impressions > 1000", when, 1)
		}
		return s
	}
	d.write("rules/stop-loss.yaml", stopLoss(""))
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend", "spend > 1000000"))
	d.start(false)
	reload := func() {
		t.Helper()
		if code, body := d.do("POST", "/-/reload"); code != http.StatusOK {
			t.Fatalf("POST /-/reload: %d %s", code, body)
		}
	}
	pending := func(runs []engine.AccountRun) int {
		n := 0
		for _, r := range runs {
			if s := r.Stats["pause-spend-without-purchase"]; r.Group == "stop-loss" && s != nil {
				n += s.Pending
			}
		}
		return n
	}

	// t0: the spender matches and waits for its for:.
	if n := pending(d.runAt(reloadT0, 2)); n != 1 || len(d.writes()) != 0 {
		t.Fatalf("at t0: %d pending, writes %v; want 1 pending, no write", n, d.writes())
	}
	// Changing the stop-loss condition resets its pending state: at +30m the match
	// starts waiting again.
	d.write("rules/stop-loss.yaml", stopLoss("impressions > 999"))
	reload()
	if n := pending(d.runAt(reloadT0.Add(30*time.Minute), 2)); n != 1 || len(d.writes()) != 0 {
		t.Fatalf("at +30m after changing the rule: %d pending, writes %v; want 1 pending, no write", n, d.writes())
	}
	// Changing only the other group keeps it: at +60m the for: has held 30m.
	d.write("rules/watch.yaml", fmt.Sprintf(watchYAML, "huge-spend", "spend > 2000000"))
	reload()
	loaded := false
	for _, g := range d.rules().Groups {
		loaded = loaded || (g.Name == "watch" && len(g.Rules) == 1 && g.Rules[0].When == "spend > 2000000")
	}
	if !loaded {
		t.Fatal("the change of the other group is not loaded")
	}
	d.runAt(reloadT0.Add(60*time.Minute), 2)
	if got, want := strings.Join(d.writes(), ","), d.spender+" status ACTIVE->PAUSED"; got != want {
		t.Errorf("at +60m writes = %q, want %q (the pending entry should survive the other group's reload)", got, want)
	}
}
