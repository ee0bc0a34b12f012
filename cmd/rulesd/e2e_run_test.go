package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// End-to-end tests of `rulesd run` (issue 4, item 7): the built binary runs once
// against the simulated Marketing API on a loopback port; what it did is checked on
// the server's side (the fake's write log and objects) and in the state file.

// t0 is the scheduled time of the first run in these tests: a fixed weekday
// afternoon, far from midnight in the accounts' time zones, so that a run 30 minutes
// later reads the same days.
var t0 = time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)

// runTimeout bounds one run of the binary.
const runTimeout = 60 * time.Second

// clock is the simulated API's clock, moved by the test along with --now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// runWorld is an e2e world whose clock the test moves and whose HTTP handler a test
// may intercept.
type runWorld struct {
	*e2e
	clock *clock
	cfg   string

	mu        sync.Mutex
	intercept func(http.ResponseWriter, *http.Request) bool // true: handled
}

func newRunWorld(t *testing.T) *runWorld {
	t.Helper()
	c := &clock{t: t0}
	fake := fakegraph.New(fakegraph.Options{Now: c.Now})
	w := &runWorld{clock: c}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		f := w.intercept
		w.mu.Unlock()
		if f != nil && f(rw, r) {
			return
		}
		fake.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.e2e = &e2e{t: t, fake: fake, srv: srv, dir: t.TempDir(), now: t0}
	return w
}

func (w *runWorld) setIntercept(f func(http.ResponseWriter, *http.Request) bool) {
	w.mu.Lock()
	w.intercept = f
	w.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe to read while the process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running rulesd.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	out, err syncBuffer
	started  time.Time
	done     chan struct{}
	code     int
}

// start starts the binary; it is killed at the end of the test if still running.
func (w *runWorld) start(args ...string) *proc {
	w.t.Helper()
	p := &proc{t: w.t, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = w.dir
	p.cmd.Env = append(cleanEnv(), "RULESD_ACCESS_TOKEN=")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	p.started = time.Now()
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			p.code = -2
		}
		close(p.done)
	}()
	w.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
			}
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("rulesd did not finish within %s\nstdout: %s\nstderr: %s", d, p.out.String(), p.err.String())
		return 0
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// noToken fails the test when the access token appears in the binary's output.
func (p *proc) noToken() {
	p.t.Helper()
	if strings.Contains(p.out.String()+p.err.String(), fakegraph.DefaultToken) {
		p.t.Errorf("the access token appears in rulesd's output")
	}
}

// cleanEnv is the environment without a token from the developer's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RULESD_") {
			env = append(env, kv)
		}
	}
	return env
}

// runArgs are the arguments of `rulesd run --once` scheduled at at.
func (w *runWorld) runArgs(at time.Time, extra ...string) []string {
	return append([]string{"run", "--config", w.cfg, "--once", "--now", at.Format(time.RFC3339)}, extra...)
}

// runAt moves the simulated API's clock to at and runs `rulesd run --once --now at`
// to its end: stdout, stderr and the exit code.
func (w *runWorld) runAt(at time.Time, extra ...string) (string, string, int) {
	w.t.Helper()
	w.clock.Set(at)
	p := w.start(w.runArgs(at, extra...)...)
	code := p.wait(runTimeout)
	p.noToken()
	return p.out.String(), p.err.String(), code
}

// mustRun is runAt expecting the exit code want.
func (w *runWorld) mustRun(at time.Time, want int, extra ...string) string {
	w.t.Helper()
	stdout, stderr, code := w.runAt(at, extra...)
	if code != want {
		w.t.Fatalf("rulesd run at %s: exit %d, want %d\nstdout: %s\nstderr: %s", at.Format(time.RFC3339), code, want, stdout, stderr)
	}
	return stderr
}

// store opens the state file the binary left behind.
func (w *runWorld) store() *state.SQLite {
	w.t.Helper()
	s, err := state.OpenSQLite(context.Background(), filepath.Join(w.dir, "state.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = s.Close() })
	return s
}

// audit returns the audit records matching q, oldest first.
func (w *runWorld) audit(q state.AuditQuery) []state.AuditRecord {
	w.t.Helper()
	s, err := state.OpenSQLite(context.Background(), filepath.Join(w.dir, "state.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer s.Close()
	q.Limit = 10000
	recs, err := s.QueryAudit(context.Background(), q)
	if err != nil {
		w.t.Fatal(err)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs
}

// writes renders the fake's write log as "object field old->new", sorted.
func (w *runWorld) writes() []string {
	var out []string
	for _, wr := range w.fake.Writes() {
		out = append(out, fmt.Sprintf("%s %s %s->%s", wr.ObjectID, wr.Field, wr.Old, wr.New))
	}
	sort.Strings(out)
	return out
}

func (w *runWorld) wantWrites(want ...string) {
	w.t.Helper()
	sort.Strings(want)
	if got := w.writes(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Fatalf("writes on the API:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// summary renders audit records as "object:result", sorted.
func summary(recs []state.AuditRecord) string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ObjectID+":"+r.Result)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (w *runWorld) status(id string) string {
	w.t.Helper()
	o, ok := w.fake.Object(id)
	if !ok {
		w.t.Fatalf("no object %s", id)
	}
	return o.Status
}

func (w *runWorld) dailyBudget(id string) int64 {
	w.t.Helper()
	o, ok := w.fake.Object(id)
	if !ok {
		w.t.Fatalf("no object %s", id)
	}
	return o.DailyBudget
}

// spender gives an ad 7 days of spend without purchases (matches stopLossRules).
func (w *runWorld) spender(acct, ad string) {
	for d := -7; d <= -1; d++ {
		w.must(w.fake.SetDaily(ad, w.fake.Day(acct, d), fakegraph.DayMetrics{Spend: 10, Impressions: 1000, Reach: 700, Clicks: 12}))
	}
}

// stopLossRun is the world of the stop-loss tests: stopLossWorld's ads (spender,
// buyer, paused-spender, quiet), plus a spender named [rulesd:off] in the same ad
// set and a spender in a traffic campaign, which the rule's where excludes.
func (w *runWorld) stopLossRun(extra string) (string, map[string]string) {
	acct, ids := w.stopLossWorld()
	f := w.fake
	o, ok := f.Object(ids["spender"])
	if !ok {
		w.t.Fatal("no spender")
	}
	sales := o.AdSetID
	ids["off"] = fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: sales, Name: "spender [rulesd:off]"}))
	w.spender(acct, ids["off"])
	traffic := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct, Objective: "OUTCOME_TRAFFIC"}))
	tas := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: traffic, DailyBudget: 3000}))
	ids["traffic"] = fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: tas, Name: "traffic-spender"}))
	w.spender(acct, ids["traffic"])
	w.write("rules/stop-loss.yaml", stopLossRules)
	w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), extra)
	return acct, ids
}

func TestRunPausesExactlyTheRightAds(t *testing.T) {
	w := newRunWorld(t)
	acct, ids := w.stopLossRun("")
	w.mustRun(t0, 0)

	w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
	for name, want := range map[string]string{"spender": "PAUSED", "buyer": "ACTIVE", "paused-spender": "PAUSED",
		"quiet": "ACTIVE", "off": "ACTIVE", "traffic": "ACTIVE"} {
		if got := w.status(ids[name]); got != want {
			t.Errorf("%s: status %s, want %s", name, got, want)
		}
	}
	recs := w.audit(state.AuditQuery{})
	// The paused spender matches but pausing it changes nothing; [rulesd:off] is never
	// touched; the buyer, the quiet ad and the traffic ad do not match.
	if got, want := summary(recs), summary([]state.AuditRecord{
		{ObjectID: ids["spender"], Result: state.ResultApplied},
		{ObjectID: ids["paused-spender"], Result: state.ResultSkippedNoop},
	}); got != want {
		t.Fatalf("audit log: %s, want %s", got, want)
	}
	for _, r := range recs {
		if r.Result != state.ResultApplied {
			continue
		}
		if r.Group != "stop-loss" || r.Rule != "pause-spend-without-purchase" || r.AccountID != acct || r.Level != "ad" ||
			r.ObjectName != "spender" || r.Kind != "pause" || r.Field != state.FieldStatus || r.DryRun ||
			r.Before != state.Status("ACTIVE") || r.After != state.Status("PAUSED") || r.RunID == "" || !r.Time.Equal(t0) {
			t.Errorf("applied record: %+v", r)
		}
		if spend, _ := r.Values["spend"].Number(); spend != 70 {
			t.Errorf("the values the rule saw: %v", r.Values)
		}
		if p, ok := r.Values["purchases"].Number(); !ok || p != 0 {
			t.Errorf("the values the rule saw: %v", r.Values)
		}
	}
	// The only POSTs were one write batch.
	posts := 0
	for _, r := range w.fake.Requests() {
		if r.Method == "POST" && r.Batch {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d write operations sent, want 1", posts)
	}
}

// budgetRules grow ad sets named grow* by 20% up to account.vars.max_budget, and set
// ad sets named set* to account.vars.set_to.
const budgetRules = `
groups:
- name: budgets
  rules:
  - name: grow
    level: adset
    window: last_7d
    where: name startsWith "grow"
    when: daily_budget > 0
    action: {kind: change_budget, by: "+20%", max: account.vars.max_budget}
  - name: set
    level: adset
    window: last_7d
    where: name startsWith "set"
    when: daily_budget > 0
    action: {kind: set_budget, amount: account.vars.set_to}
`

func TestRunBudgetInMinorUnitsUSDAndJPYThenCooldown(t *testing.T) {
	w := newRunWorld(t)
	f := w.fake
	usd := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	jpy := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_2002", Currency: "JPY", TimezoneName: "Asia/Tokyo"}))
	adset := func(acct, name string, budget int64) string {
		c := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct}))
		return fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: c, Name: name, DailyBudget: budget}))
	}
	ids := map[string]string{
		"usd-capped": adset(usd, "grow-capped", 5000), // $50.00 +20% = $60.00, capped at $55.00
		"usd-round":  adset(usd, "grow-round", 4001),  // $40.01 +20% = $48.012: 4801 cents
		"usd-set":    adset(usd, "set-usd", 5000),     // set to $60: 6000 cents
		"jpy-grow":   adset(jpy, "grow-yen", 5555),    // ¥5555 +20% = ¥6666 (no minor unit)
		"jpy-round":  adset(jpy, "grow-yen-2", 5556),  // ¥5556 +20% = ¥6667.2: rounds down to 6667
		"jpy-set":    adset(jpy, "set-yen", 4500),     // set to ¥5000: 5000, not 500000
		"usd-other":  adset(usd, "other", 5000),       // no rule
	}
	w.write("rules/budgets.yaml", budgetRules)
	w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {max_budget: 55, set_to: 60}}\n- {id: %s, vars: {max_budget: 100000, set_to: 5000}}", usd, jpy), "")
	w.mustRun(t0, 0)

	want := map[string]int64{"usd-capped": 5500, "usd-round": 4801, "usd-set": 6000, "jpy-grow": 6666, "jpy-round": 6667, "jpy-set": 5000, "usd-other": 5000}
	for name, v := range want {
		if got := w.dailyBudget(ids[name]); got != v {
			t.Errorf("%s: daily_budget %d, want %d", name, got, v)
		}
	}
	w.wantWrites(
		ids["usd-capped"]+" daily_budget 5000->5500",
		ids["usd-round"]+" daily_budget 4001->4801",
		ids["usd-set"]+" daily_budget 5000->6000",
		ids["jpy-grow"]+" daily_budget 5555->6666",
		ids["jpy-round"]+" daily_budget 5556->6667",
		ids["jpy-set"]+" daily_budget 4500->5000",
	)
	recs := w.audit(state.AuditQuery{Result: state.ResultApplied})
	if len(recs) != 6 {
		t.Fatalf("%d applied records, want 6: %s", len(recs), summary(recs))
	}
	for _, r := range recs {
		if r.ObjectID == ids["usd-capped"] {
			if r.CappedBy != "max" || r.Before != state.Amount(5000) || r.After != state.Amount(5500) {
				t.Errorf("capped record: capped_by %q, %s -> %s", r.CappedBy, r.Before, r.After)
			}
		} else if r.CappedBy != "" {
			t.Errorf("%s: capped_by %q", r.ObjectName, r.CappedBy)
		}
	}

	// 10 minutes later the rules still match (grow would add another 20%), but every
	// object is in its 24h cooldown or already at its target: nothing is written.
	before := len(f.Writes())
	w.mustRun(t0.Add(10*time.Minute), 0)
	if n := len(f.Writes()); n != before {
		t.Fatalf("the run within the cooldown wrote %d changes: %v", n-before, w.writes())
	}
	for _, r := range f.Requests() {
		if r.Method == "POST" && r.Batch && r.Time.After(t0) {
			t.Errorf("a write was sent within the cooldown: %s %v", r.Path, r.Params)
		}
	}
	cool := w.audit(state.AuditQuery{Result: state.ResultSkippedCooldown})
	if got, want := summary(cool), summary([]state.AuditRecord{
		{ObjectID: ids["usd-capped"], Result: state.ResultSkippedCooldown},
		{ObjectID: ids["usd-round"], Result: state.ResultSkippedCooldown},
		{ObjectID: ids["usd-set"], Result: state.ResultSkippedCooldown},
		{ObjectID: ids["jpy-grow"], Result: state.ResultSkippedCooldown},
		{ObjectID: ids["jpy-round"], Result: state.ResultSkippedCooldown},
		{ObjectID: ids["jpy-set"], Result: state.ResultSkippedCooldown},
	}); got != want {
		t.Errorf("cooldown records: %s, want %s", got, want)
	}
	// A skip repeated on every tick is recorded once per cooldown period.
	w.mustRun(t0.Add(40*time.Minute), 0)
	if n := len(f.Writes()); n != before {
		t.Fatalf("the second run within the cooldown wrote %d changes", n-before)
	}
	if again := w.audit(state.AuditQuery{Result: state.ResultSkippedCooldown}); summary(again) != summary(cool) {
		t.Errorf("cooldown records after another run: %s, want them once: %s", summary(again), summary(cool))
	}
}

func TestRunDryRunWritesNothing(t *testing.T) {
	check := func(t *testing.T, w *runWorld, ids map[string]string) {
		t.Helper()
		w.wantWrites()
		for _, r := range w.fake.Requests() {
			if r.Method == "POST" {
				t.Errorf("a dry run sent a POST: %s", r.Path)
			}
		}
		recs := w.audit(state.AuditQuery{})
		if got, want := summary(recs), summary([]state.AuditRecord{
			{ObjectID: ids["spender"], Result: state.ResultDryRun},
			{ObjectID: ids["paused-spender"], Result: state.ResultSkippedNoop},
		}); got != want {
			t.Fatalf("audit log: %s, want %s", got, want)
		}
		for _, r := range recs {
			if !r.DryRun {
				t.Errorf("record not marked dry run: %+v", r)
			}
			if r.Result == state.ResultDryRun && (r.Before != state.Status("ACTIVE") || r.After != state.Status("PAUSED")) {
				t.Errorf("dry-run record: %s -> %s", r.Before, r.After)
			}
		}
	}
	t.Run("flag", func(t *testing.T) {
		w := newRunWorld(t)
		_, ids := w.stopLossRun("")
		w.mustRun(t0, 0, "--dry-run")
		check(t, w, ids)
		// A dry run never changes what a live run does: no dry-run cooldown holds it.
		w.mustRun(t0.Add(10*time.Minute), 0)
		w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
	})
	t.Run("config", func(t *testing.T) {
		w := newRunWorld(t)
		_, ids := w.stopLossRun("dry_run: true\n")
		w.mustRun(t0, 0)
		check(t, w, ids)
	})
}

func TestRunBlastRadiusGuardBlocksPausingEverything(t *testing.T) {
	w := newRunWorld(t)
	f := w.fake
	acct := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
	camp := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct}))
	as := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	var ads []string
	for i := range 8 {
		id := fakegraph.Must(f.AddAd(fakegraph.Ad{AdSetID: as, Name: fmt.Sprintf("ad-%d", i)}))
		w.spender(acct, id)
		ads = append(ads, id)
	}
	w.write("rules/stop-loss.yaml", stopLossRules)
	w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), "")
	stderr := w.mustRun(t0, 1) // a guard tripped
	w.wantWrites()
	for _, id := range ads {
		if got := w.status(id); got != "ACTIVE" {
			t.Errorf("ad %s is %s", id, got)
		}
	}
	recs := w.audit(state.AuditQuery{})
	if len(recs) != 8 {
		t.Fatalf("%d audit records, want 8: %s", len(recs), summary(recs))
	}
	for _, r := range recs {
		if r.Result != state.ResultBlockedGuard || !strings.Contains(r.Error, "blast-radius") {
			t.Errorf("record %s: %s %q", r.ObjectID, r.Result, r.Error)
		}
	}
	if !strings.Contains(stderr, "blast-radius guard tripped") {
		t.Errorf("the log does not say the guard tripped:\n%s", stderr)
	}
}

func TestRunForActsOnlyAfterItHeldAcrossRestarts(t *testing.T) {
	w := newRunWorld(t)
	acct, ids := w.stopLossWorld()
	w.write("rules/stop-loss.yaml", strings.Replace(stopLossRules, "    action: {kind: pause}", "    for: 30m\n    action: {kind: pause}", 1))
	w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), "")
	scope := state.RuleScope{Group: "stop-loss", Rule: "pause-spend-without-purchase", AccountID: acct}

	// Each step is a separate process: pending state must survive the restart.
	for _, step := range []time.Duration{0, 15 * time.Minute} {
		w.mustRun(t0.Add(step), 0)
		w.wantWrites()
		if got := w.status(ids["spender"]); got != "ACTIVE" {
			t.Fatalf("after the run at +%s the spender is %s", step, got)
		}
		s, err := state.OpenSQLite(context.Background(), filepath.Join(w.dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.GetPending(context.Background(), scope, []string{ids["spender"]})
		_ = s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := p[ids["spender"]]; !got.Since.Equal(t0) {
			t.Fatalf("after the run at +%s: pending since %v, want %v", step, got.Since, t0)
		}
		if recs := w.audit(state.AuditQuery{Result: state.ResultApplied}); len(recs) != 0 {
			t.Fatalf("applied before for: held: %s", summary(recs))
		}
	}
	w.mustRun(t0.Add(30*time.Minute), 0)
	w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
	recs := w.audit(state.AuditQuery{Result: state.ResultApplied})
	if len(recs) != 1 || recs[0].ObjectID != ids["spender"] || !recs[0].Time.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("applied records: %+v", recs)
	}
}

// TestRunKilledBetweenIntentAndWrite kills rulesd (SIGKILL) while its write batch is
// on its way, lets the API apply it or not, and restarts rulesd: the change must end
// up applied exactly once.
func TestRunKilledBetweenIntentAndWrite(t *testing.T) {
	for _, applied := range []bool{true, false} {
		name := "applied-before-crash"
		if !applied {
			name = "never-applied"
		}
		t.Run(name, func(t *testing.T) {
			w := newRunWorld(t)
			f := w.fake
			acct := fakegraph.Must(f.AddAccount(fakegraph.Account{ID: "act_1001", Currency: "USD", TimezoneName: "America/New_York"}))
			camp := fakegraph.Must(f.AddCampaign(fakegraph.Campaign{AccountID: acct}))
			as := fakegraph.Must(f.AddAdSet(fakegraph.AdSet{CampaignID: camp, Name: "grow-me", DailyBudget: 5000}))
			w.write("rules/budgets.yaml", budgetRules)
			w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {max_budget: 1000, set_to: 1}}", acct), "")

			arrived := make(chan struct{})
			release := make(chan struct{})
			served := make(chan struct{})
			var once sync.Once
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release)
				}
			})
			w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPost {
					return false
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					return false
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				form, _ := url.ParseQuery(string(body))
				if !strings.Contains(form.Get("batch"), `"method":"POST"`) {
					return false
				}
				first := false
				once.Do(func() { first = true })
				if !first {
					return false
				}
				close(arrived)
				select {
				case <-release:
				case <-time.After(runTimeout):
				}
				if applied {
					// The request reached Meta before rulesd died: it is applied, and
					// the answer goes nowhere.
					r.ContentLength = int64(len(body))
					r.Body = io.NopCloser(bytes.NewReader(body))
					f.ServeHTTP(rw, r.WithContext(context.Background()))
				}
				close(served)
				return true
			})

			w.clock.Set(t0)
			p := w.start(w.runArgs(t0)...)
			select {
			case <-arrived:
			case <-p.done:
				t.Fatalf("rulesd exited (%d) before its write reached the API\nstderr: %s", p.code, p.err.String())
			case <-time.After(runTimeout):
				t.Fatal("the write batch never reached the API")
			}
			// The intent is stored before the batch is sent.
			s := w.store()
			unfinished, err := s.UnfinishedIntents(context.Background(), acct)
			_ = s.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(unfinished) != 1 || unfinished[0].ObjectID != as || unfinished[0].Target != state.Amount(6000) {
				t.Fatalf("unfinished intents while the write is in flight: %+v", unfinished)
			}
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			p.wait(10 * time.Second)
			p.noToken()
			close(release)
			select {
			case <-served:
			case <-time.After(10 * time.Second):
				t.Fatal("the intercepted request did not finish")
			}
			if applied {
				w.wantWrites(as + " daily_budget 5000->6000")
			} else {
				w.wantWrites()
			}

			// Restart: start-up reconciliation settles the intent; the run that follows
			// must not change the budget a second time.
			stdout, stderr, code := w.runAt(t0.Add(time.Minute))
			if code != 0 {
				t.Fatalf("restart: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if got := w.dailyBudget(as); got != 6000 {
				t.Errorf("daily_budget %d after the restart, want 6000", got)
			}
			s = w.store()
			unfinished, err = s.UnfinishedIntents(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(unfinished) != 0 {
				t.Errorf("intents still unfinished after the restart: %+v", unfinished)
			}
			recs := w.audit(state.AuditQuery{ObjectID: as, Result: state.ResultApplied})
			if len(recs) != 1 || recs[0].Before != state.Amount(5000) || recs[0].After != state.Amount(6000) || recs[0].Rule != "grow" {
				t.Errorf("applied records: %s", summary(recs))
			}
			w.wantWrites(as + " daily_budget 5000->6000")
		})
	}
}

// hasLogLine reports whether the JSON log has a line with message msg that mentions
// every one of words.
func hasLogLine(log, msg string, words ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"msg":"`+msg+`"`) {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// TestRunThrottledAccountDoesNotDelayOthers: one account is throttled, the other's
// pause goes out at once.
func TestRunThrottledAccountDoesNotDelayOthers(t *testing.T) {
	setup := func(t *testing.T, throttle time.Duration) (*runWorld, string, map[string]string, string) {
		w := newRunWorld(t)
		acct, ids := w.stopLossWorld()
		thr := fakegraph.Must(w.fake.AddAccount(fakegraph.Account{ID: "act_3003", Currency: "USD", TimezoneName: "America/New_York"}))
		camp := fakegraph.Must(w.fake.AddCampaign(fakegraph.Campaign{AccountID: thr}))
		as := fakegraph.Must(w.fake.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
		ids["throttled"] = fakegraph.Must(w.fake.AddAd(fakegraph.Ad{AdSetID: as, Name: "throttled-spender"}))
		w.spender(thr, ids["throttled"])
		w.fake.ThrottleAccount(thr, throttle)
		w.write("rules/stop-loss.yaml", stopLossRules)
		// The throttled account comes first in the config.
		w.cfg = w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}\n- {id: %s, vars: {target_cpa: 25}}", thr, acct), "")
		return w, acct, ids, thr
	}
	throttledCalls := func(w *runWorld, thr string) int {
		n := 0
		for _, r := range w.fake.Requests() {
			if r.Account == thr && r.Code == 80004 {
				n++
			}
		}
		return n
	}

	// Throttled for longer than the client would wait (MaxThrottleWait, 5 minutes as
	// the app configures it): that account fails at once, the other is paused, and
	// the run ends promptly with exit 1 (an account failed).
	t.Run("longer-than-max-wait", func(t *testing.T) {
		w, acct, ids, thr := setup(t, time.Hour)
		startT := time.Now()
		stdout, stderr, code := w.runAt(t0)
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if d := time.Since(startT); d > 30*time.Second {
			t.Errorf("the run took %s", d)
		}
		w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
		if got := w.status(ids["throttled"]); got != "ACTIVE" {
			t.Errorf("throttled account's ad is %s", got)
		}
		if throttledCalls(w, thr) == 0 {
			t.Error("the throttled account was never called")
		}
		if !hasLogLine(stderr, "account run did not complete", thr, "80004") {
			t.Errorf("the log does not say why the throttled account's run failed:\n%s", stderr)
		}
		runs, err := w.store().LastRuns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range runs {
			got[r.AccountID] = r.Result
		}
		if got[thr] != "failed" || got[acct] != "success" {
			t.Errorf("run results: %v", got)
		}
	})

	// Throttled for 2 minutes: within MaxThrottleWait, so that account waits (the run
	// lasts minutes). The healthy account's pause must not wait for it.
	t.Run("within-max-wait", func(t *testing.T) {
		w, _, ids, thr := setup(t, 2*time.Minute)
		w.clock.Set(t0)
		p := w.start(w.runArgs(t0)...)
		deadline := time.After(20 * time.Second)
		for len(w.fake.Writes()) == 0 {
			select {
			case <-deadline:
				t.Fatalf("the healthy account's pause was not applied within 20s\nstderr: %s", p.err.String())
			case <-p.done:
				t.Fatalf("rulesd exited (%d) before the healthy account's pause\nstderr: %s", p.code, p.err.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		took := time.Since(p.started)
		w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
		// The throttled account was told to wait 2 minutes and does: its wait ends long
		// after the healthy account's write.
		for !hasLogLine(p.err.String(), "graph request waits for the rate limit", thr) {
			select {
			case <-deadline:
				t.Fatalf("the throttled account does not wait\nstderr: %s", p.err.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if throttledCalls(w, thr) == 0 {
			t.Error("the throttled account was never called")
		}
		if took > time.Minute {
			t.Errorf("the healthy account's pause came %s after start, after the throttled account's wait", took)
		}
		if p.exited() {
			t.Fatalf("rulesd already exited (%d): the throttled account did not wait\nstderr: %s", p.code, p.err.String())
		}
		t.Logf("healthy account's pause applied %s after start, while the throttled account waits", took)
		// SIGTERM ends the wait promptly.
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(20 * time.Second); code != 1 {
			t.Errorf("exit %d after SIGTERM, want 1 (the throttled account's run failed)", code)
		}
		p.noToken()
		w.wantWrites(ids["spender"] + " status ACTIVE->PAUSED")
	})
}
