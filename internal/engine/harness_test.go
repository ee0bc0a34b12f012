package engine

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// The harness: a simulated Marketing API on httptest, the real graph client,
// insights reader and executor, a SQLite store in t.TempDir() and an Engine, all on
// one fake clock that the test advances.

// t0 is the first scheduled time of every test: a */30 tick, mid-afternoon in UTC
// (the accounts' time zone), so that a few hours of runs stay within one day.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const acctID = "act_1001"

type world struct {
	t      *testing.T
	mu     sync.Mutex
	now    time.Time
	fake   *fakegraph.Server
	client *graph.Client
	reader *insights.Reader
	exec   *actions.Executor
	dbPath string
	store  *state.SQLite
	cfg    *config.Config
	set    *rules.Set
	reg    *prometheus.Registry
	eng    *Engine
	dryRun bool
}

// defaultConfig is a config with the one USD account every world has.
const defaultConfig = "accounts: [act_1001]\n"

// newWorld starts a world with an empty USD account act_1001 (time zone UTC), the
// given config (YAML) and rule files (YAML), and an Engine over them.
func newWorld(t *testing.T, cfgYAML, rulesYAML string) *world {
	t.Helper()
	w := &world{t: t, now: t0}
	w.fake = fakegraph.New(fakegraph.Options{Now: w.Now})
	srv := httptest.NewServer(w.fake)
	t.Cleanup(srv.Close)
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	c, err := graph.New(graph.Options{BaseURL: srv.URL, APIVersion: "v27.0", Token: graph.NewSecret(fakegraph.DefaultToken),
		Retry: graph.RetryPolicy{MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	w.client = c
	w.exec = actions.NewExecutor(c, nil)
	w.must(w.fake.AddAccount(fakegraph.Account{ID: acctID, Currency: "USD", TimezoneName: "UTC"}))
	w.cfg = parseConfig(t, cfgYAML)
	w.set = loadRules(t, w.cfg, rulesYAML)
	w.reader, err = insights.NewReader(insights.Options{Graph: c, Config: w.cfg, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	w.dbPath = filepath.Join(t.TempDir(), "rulesd.db")
	w.restart()
	t.Cleanup(func() { w.store.Close() })
	return w
}

func parseConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse("rulesd.yaml", []byte(src))
	if cfg == nil {
		t.Fatalf("config: %v", diags)
	}
	return cfg
}

func loadRules(t *testing.T, cfg *config.Config, src string) *rules.Set {
	t.Helper()
	set, diags := rules.Load([]rules.Source{{Name: "rules.yaml", Data: []byte(src)}}, rules.Options{Config: cfg})
	if diags.HasErrors() || set == nil {
		t.Fatalf("rules: %v", diags)
	}
	return set
}

// restart simulates a new process: the store is closed and opened again from its
// file, and a new Engine (with a new metrics registry) runs on it.
func (w *world) restart() {
	w.t.Helper()
	if w.store != nil {
		if err := w.store.Close(); err != nil {
			w.t.Fatal(err)
		}
	}
	st, err := state.OpenSQLite(context.Background(), w.dbPath+"?_synchronous=OFF")
	if err != nil {
		w.t.Fatal(err)
	}
	w.store = st
	w.newEngine()
}

// newEngine replaces the Engine (same store), e.g. to change Options.DryRun.
func (w *world) newEngine() {
	w.t.Helper()
	w.reg = prometheus.NewRegistry()
	m, err := metrics.New(w.reg)
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: w.reader, Executor: w.exec, Store: w.store,
		Metrics: m, DryRun: w.dryRun, Now: w.Now, Owner: "test"})
	if err != nil {
		w.t.Fatal(err)
	}
	w.eng = e
}

// reload swaps in a new config and rules, as a reload does.
func (w *world) reload(cfgYAML, rulesYAML string) {
	w.t.Helper()
	w.cfg = parseConfig(w.t, cfgYAML)
	w.set = loadRules(w.t, w.cfg, rulesYAML)
	w.reader.Update(w.cfg)
	w.eng.Update(w.cfg, w.set)
}

func (w *world) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

// at sets the clock to t0+d.
func (w *world) at(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = t0.Add(d)
}

func (w *world) must(v any, err error) any {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) check(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// Objects.

func (w *world) campaign(c fakegraph.Campaign) string {
	w.t.Helper()
	if c.AccountID == "" {
		c.AccountID = acctID
	}
	if c.CreatedTime.IsZero() {
		c.CreatedTime = t0.Add(-30 * 24 * time.Hour)
	}
	id, err := w.fake.AddCampaign(c)
	w.check(err)
	return id
}

func (w *world) adset(a fakegraph.AdSet) string {
	w.t.Helper()
	if a.CreatedTime.IsZero() {
		a.CreatedTime = t0.Add(-30 * 24 * time.Hour)
	}
	id, err := w.fake.AddAdSet(a)
	w.check(err)
	return id
}

func (w *world) ad(a fakegraph.Ad) string {
	w.t.Helper()
	if a.CreatedTime.IsZero() {
		a.CreatedTime = t0.Add(-30 * 24 * time.Hour)
	}
	id, err := w.fake.AddAd(a)
	w.check(err)
	return id
}

// adsetWithBudget adds a campaign and an ad set with a daily budget (minor units).
func (w *world) adsetWithBudget(name string, daily int64) string {
	w.t.Helper()
	c := w.campaign(fakegraph.Campaign{Name: name + " campaign"})
	return w.adset(fakegraph.AdSet{CampaignID: c, Name: name, DailyBudget: daily})
}

// ads adds n active ads named prefix-i in one ad set, and returns their ids.
func (w *world) ads(prefix string, n int) []string {
	w.t.Helper()
	as := w.adsetWithBudget(prefix+" adset", 5000)
	var ids []string
	for i := range n {
		ids = append(ids, w.ad(fakegraph.Ad{AdSetID: as, Name: prefix + "-" + string(rune('a'+i))}))
	}
	return ids
}

// spendToday sets an ad's spend today (major units).
func (w *world) spendToday(ad string, spend float64) {
	w.t.Helper()
	m := fakegraph.DayMetrics{Spend: spend}
	if spend > 0 {
		m.Impressions = int64(spend * 100)
	}
	w.check(w.fake.SetDaily(ad, w.fake.Day(acctID, 0), m))
}

func (w *world) object(id string) fakegraph.ObjectState {
	w.t.Helper()
	o, ok := w.fake.Object(id)
	if !ok {
		w.t.Fatalf("no object %s", id)
	}
	return o
}

// writes returns the API writes the simulated API applied to obj (every field but
// name), oldest first.
func (w *world) writes(obj string) []fakegraph.WriteRecord {
	var out []fakegraph.WriteRecord
	for _, wr := range w.fake.Writes() {
		if wr.ObjectID == obj && wr.Field != "name" {
			out = append(out, wr)
		}
	}
	return out
}

// posts counts the POSTs that reached the API for obj (applied or not).
func (w *world) posts(obj string) int {
	n := 0
	for _, r := range w.fake.Requests() {
		if r.Method == "POST" && strings.Trim(strings.TrimPrefix(r.Path, "/v27.0"), "/") == obj {
			n++
		}
	}
	return n
}

// Running.

// runAll runs a group at the current time for every account it selects.
func (w *world) runAll(group string) *GroupRun {
	w.t.Helper()
	gr, err := w.eng.RunGroup(context.Background(), group, w.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return gr
}

// run runs a group at the current time for its one account and returns the run.
func (w *world) run(group string) *AccountRun {
	w.t.Helper()
	gr := w.runAll(group)
	if len(gr.Accounts) != 1 {
		w.t.Fatalf("group %s ran for %d accounts, want 1", group, len(gr.Accounts))
	}
	return &gr.Accounts[0]
}

// runOK runs a group and fails the test unless the account run succeeded (or was
// partial: some action failed or a guard tripped).
func (w *world) runOK(group string) *AccountRun {
	w.t.Helper()
	ar := w.run(group)
	if ar.Result != "success" && ar.Result != "partial" {
		w.t.Fatalf("run of %s at %s: %s: %v", group, w.Now().Format("15:04"), ar.Result, ar.Err)
	}
	return ar
}

// decision returns the run's decision of rule on obj, or nil.
func (ar *AccountRun) decision(rule, obj string) *Decision {
	for _, d := range ar.Decisions {
		if d.Rule.Name == rule && d.Object.ID == obj {
			return d
		}
	}
	return nil
}

// result is the run's result for (rule, obj), "" when the rule did not match it.
func (ar *AccountRun) result(rule, obj string) string {
	if d := ar.decision(rule, obj); d != nil {
		return d.Result
	}
	return ""
}

// Audit log.

// audit returns the audit records of rule on obj ("" for any), oldest first.
func (w *world) audit(rule, obj string) []state.AuditRecord {
	w.t.Helper()
	recs, err := w.store.QueryAudit(context.Background(), state.AuditQuery{Rule: rule, ObjectID: obj, Limit: 10000})
	if err != nil {
		w.t.Fatal(err)
	}
	slices.Reverse(recs)
	return recs
}

// auditResults lists the results of the audit records of rule on obj, oldest first,
// comma-separated.
func (w *world) auditResults(rule, obj string) string {
	w.t.Helper()
	var out []string
	for _, r := range w.audit(rule, obj) {
		out = append(out, r.Result)
	}
	return strings.Join(out, ",")
}

// last returns the newest audit record of rule on obj.
func (w *world) last(rule, obj string) state.AuditRecord {
	w.t.Helper()
	recs := w.audit(rule, obj)
	if len(recs) == 0 {
		w.t.Fatalf("no audit record of %s on %s", rule, obj)
	}
	return recs[len(recs)-1]
}

// Metrics.

// counter sums the series of a metric whose labels include want.
func (w *world) counter(name string, want map[string]string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func (w *world) actionsTotal(rule, result string) float64 {
	w.t.Helper()
	return w.counter("rulesd_actions_total", map[string]string{"rule": rule, "result": result})
}

// State.

func (w *world) pending(group, rule string, obj string) (state.Pending, bool) {
	w.t.Helper()
	m, err := w.store.GetPending(context.Background(), state.RuleScope{Group: group, Rule: rule, AccountID: acctID}, []string{obj})
	if err != nil {
		w.t.Fatal(err)
	}
	p, ok := m[obj]
	return p, ok
}

func (w *world) cooldown(group, rule string, dry bool, obj string) (time.Time, bool) {
	w.t.Helper()
	m, err := w.store.ActiveCooldowns(context.Background(), group, rule, dry, []string{obj}, w.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	u, ok := m[obj]
	return u, ok
}

func (w *world) unfinished() []state.Intent {
	w.t.Helper()
	in, err := w.store.UnfinishedIntents(context.Background(), "")
	if err != nil {
		w.t.Fatal(err)
	}
	return in
}

// mins is n minutes.
func mins(n int) time.Duration { return time.Duration(n) * time.Minute }

// hrs is n hours.
func hrs(n int) time.Duration { return time.Duration(n) * time.Hour }
