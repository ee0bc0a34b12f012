// Package engine runs rule groups: for each account it reads a snapshot, evaluates
// the rules, applies the guards of SPEC section 4, records intents, executes the
// writes, and records everything in the audit log, the metrics and the logs.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// SnapshotReader reads what a group's rules need for one account.
type SnapshotReader interface {
	Read(ctx context.Context, acct config.Account, at time.Time, rs []*rules.Rule) (*insights.Snapshot, error)
}

// Executor sends writes and settles unfinished intents.
type Executor interface {
	Apply(ctx context.Context, writes []actions.Write) []actions.Result
	Reconcile(ctx context.Context, intents []state.Intent, maxAge time.Duration, now time.Time) []actions.Result
}

// accountLocker is implemented by stores that several replicas share: it serialises
// one account's runs across them.
type accountLocker interface {
	LockAccount(ctx context.Context, accountID string) (unlock func(), err error)
}

// Options configure an Engine.
type Options struct {
	Config   *config.Config
	Rules    *rules.Set
	Reader   SnapshotReader
	Executor Executor
	Store    state.Store
	// Notify sends digests; nil sends none.
	Notify  *notify.Dispatcher
	Metrics *metrics.Engine
	Logger  *zap.Logger
	// DryRun is the --dry-run flag: every run is dry.
	DryRun bool
	// Owner names this replica in leases.
	Owner string
	// Concurrency bounds the accounts a group runs in parallel; default 4.
	Concurrency int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnRun, when set, receives every finished account run (the demo prints them).
	OnRun func(AccountRun)
}

// Engine runs groups. It is safe for concurrent use: runs of different groups may
// overlap, runs for one account are serialised, and a (group, account) never runs
// twice at once.
type Engine struct {
	opts    Options
	loaded  atomic.Pointer[loaded]
	mu      sync.Mutex
	running map[string]bool
	acctSem map[string]chan struct{}
	last    map[string]*GroupRun
	// authBad holds the tokens Meta refused (190, 102), by tokenOf: writes with them
	// stop until a read with them succeeds (SPEC 4.13).
	authMu  sync.Mutex
	authBad map[string]bool
}

// tokenOf names the token an account's calls use: its access_token_file, or "" for
// the default token.
func tokenOf(a config.Account) string { return a.AccessTokenFile }

// authBadFor reports whether writes with the account's token are stopped.
func (e *Engine) authBadFor(a config.Account) bool {
	e.authMu.Lock()
	defer e.authMu.Unlock()
	return e.authBad[tokenOf(a)]
}

// setAuth records whether the account's token works and reports whether that changed.
func (e *Engine) setAuth(a config.Account, ok bool) bool {
	e.authMu.Lock()
	defer e.authMu.Unlock()
	k := tokenOf(a)
	if e.authBad[k] == !ok {
		return false
	}
	if ok {
		delete(e.authBad, k)
	} else {
		e.authBad[k] = true
	}
	return true
}

// account returns the loaded config's account, or one with only the id when a reload
// removed it.
func (e *Engine) account(id string) config.Account {
	if a, ok := e.loaded.Load().cfg.Account(id); ok {
		return *a
	}
	return config.Account{ID: id}
}

type loaded struct {
	cfg *config.Config
	set *rules.Set
}

// New returns an Engine.
func New(opts Options) (*Engine, error) {
	if opts.Config == nil || opts.Rules == nil || opts.Reader == nil || opts.Store == nil {
		return nil, errors.New("engine: config, rules, reader and store are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		m, err := metrics.New(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Owner == "" {
		opts.Owner = "rulesd-" + randomID()
	}
	e := &Engine{opts: opts, running: map[string]bool{}, acctSem: map[string]chan struct{}{}, last: map[string]*GroupRun{}, authBad: map[string]bool{}}
	e.Update(opts.Config, opts.Rules)
	return e, nil
}

// Update swaps in a new config and rule set (a reload). Runs in flight finish with
// the set they started with.
func (e *Engine) Update(cfg *config.Config, set *rules.Set) {
	if old := e.loaded.Swap(&loaded{cfg: cfg, set: set}); old != nil {
		e.dropMetrics(old.set, set)
	}
	e.initMetrics(cfg, set)
}

// dropMetrics deletes the series of groups that a reload removed, so that alerts on
// "group not running" do not fire for them.
func (e *Engine) dropMetrics(old, cur *rules.Set) {
	live := map[string]bool{}
	for _, g := range cur.Groups {
		live[g.Name] = true
	}
	m := e.opts.Metrics
	for _, g := range old.Groups {
		if live[g.Name] {
			continue
		}
		l := prometheus.Labels{"group": g.Name}
		m.GroupRuns.DeletePartialMatch(l)
		m.GroupLastRun.DeletePartialMatch(l)
		m.GroupLastRunDuration.DeletePartialMatch(l)
		m.GroupRunDuration.DeletePartialMatch(l)
		m.RuleEvaluations.DeletePartialMatch(l)
		m.RuleEvaluationErrors.DeletePartialMatch(l)
		m.RuleObjectsInScope.DeletePartialMatch(l)
		m.RuleMatches.DeletePartialMatch(l)
		m.RulePending.DeletePartialMatch(l)
		m.Actions.DeletePartialMatch(l)
		e.mu.Lock()
		delete(e.last, g.Name)
		e.mu.Unlock()
	}
}

// Rules returns the rule set in use.
func (e *Engine) Rules() *rules.Set { return e.loaded.Load().set }

// Config returns the config in use.
func (e *Engine) Config() *config.Config { return e.loaded.Load().cfg }

// initMetrics creates the series whose labels are known in advance at 0, so that
// alerts on them work from the first scrape (SPEC 8).
func (e *Engine) initMetrics(cfg *config.Config, set *rules.Set) {
	m := e.opts.Metrics
	for _, g := range set.Groups {
		for _, a := range cfg.Accounts {
			if !g.Selects(a) {
				continue
			}
			for _, res := range metrics.RunResults {
				m.GroupRuns.WithLabelValues(g.Name, a.ID, res)
			}
			for _, r := range g.Rules {
				for _, res := range []string{state.ResultApplied, state.ResultFailed, state.ResultBlockedGuard, state.ResultBlockedFlapping} {
					m.Actions.WithLabelValues(g.Name, r.Name, a.ID, r.Action.Kind.String(), res)
				}
			}
		}
		for _, r := range g.Rules {
			m.RuleEvaluations.WithLabelValues(g.Name, r.Name)
			m.RuleEvaluationErrors.WithLabelValues(g.Name, r.Name)
			m.RuleObjectsInScope.WithLabelValues(g.Name, r.Name)
			m.RuleMatches.WithLabelValues(g.Name, r.Name)
			m.RulePending.WithLabelValues(g.Name, r.Name)
		}
		m.GroupLastRun.WithLabelValues(g.Name)
		m.GroupLastRunDuration.WithLabelValues(g.Name)
	}
}

// GroupRun summarises one tick of a group over its accounts.
type GroupRun struct {
	ID        string
	Group     string
	Scheduled time.Time
	Start     time.Time
	End       time.Time
	Accounts  []AccountRun
}

// Result is the worst account result: failed > partial > skipped > success.
func (g *GroupRun) Result() string {
	rank := map[string]int{"success": 0, "skipped": 1, "partial": 2, "failed": 3}
	res := "success"
	for _, a := range g.Accounts {
		if rank[a.Result] > rank[res] {
			res = a.Result
		}
	}
	return res
}

// AccountRun is one run of a group for one account.
type AccountRun struct {
	RunID     string
	Group     string
	AccountID string
	Scheduled time.Time
	Result    string // success, partial, failed, skipped
	Err       error
	Decisions []*Decision
	// Currency of the account, to show money in major units.
	Currency string
	// Stats per rule name.
	Stats map[string]*RuleStats
	// GuardTripped is set when the blast-radius guard blocked a rule.
	GuardTripped bool
}

// RuleStats are a rule's counts in one account run.
type RuleStats struct {
	Evaluated, InScope, Matches, Pending int
}

// LastRun returns the last finished run of the group, or nil.
func (e *Engine) LastRun(group string) *GroupRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last[group]
}

// RunGroup runs a group for every account it selects, in parallel up to the
// configured concurrency, as scheduled at at.
func (e *Engine) RunGroup(ctx context.Context, name string, at time.Time) (*GroupRun, error) {
	return e.runGroupFiltered(ctx, name, at, nil)
}

// runGroupFiltered runs a group for the accounts in only (all when nil).
func (e *Engine) runGroupFiltered(ctx context.Context, name string, at time.Time, only map[string]bool) (*GroupRun, error) {
	l := e.loaded.Load()
	var g *rules.Group
	for _, x := range l.set.Groups {
		if x.Name == name {
			g = x
		}
	}
	if g == nil {
		return nil, fmt.Errorf("no group %q", name)
	}
	run := &GroupRun{ID: newRunID(at), Group: name, Scheduled: at, Start: e.opts.Now()}
	var accts []config.Account
	for _, a := range l.cfg.Accounts {
		if g.Selects(a) && (only == nil || only[a.ID]) {
			accts = append(accts, a)
		}
	}
	results := make([]AccountRun, len(accts))
	sem := make(chan struct{}, e.opts.Concurrency)
	var wg sync.WaitGroup
	for i, a := range accts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = e.runAccount(ctx, l, g, a, at, run.ID)
		}()
	}
	wg.Wait()
	run.Accounts = results
	run.End = e.opts.Now()
	d := run.End.Sub(run.Start).Seconds()
	m := e.opts.Metrics
	m.GroupLastRun.WithLabelValues(name).Set(float64(run.End.Unix()))
	m.GroupLastRunDuration.WithLabelValues(name).Set(d)
	m.GroupRunDuration.WithLabelValues(name).Observe(d)
	e.recordRuleGauges(g, results)
	e.mu.Lock()
	e.last[name] = run
	e.mu.Unlock()
	counts := map[string]int{}
	for _, a := range results {
		counts[a.Result]++
		for _, dec := range a.Decisions {
			counts["decision_"+resultName(dec.Result)]++
		}
	}
	e.opts.Logger.Info("group run",
		zap.String("group", name), zap.String("run_id", run.ID), zap.Time("scheduled", at),
		zap.Int("accounts", len(results)), zap.String("result", run.Result()),
		zap.Any("counts", counts), zap.Float64("duration_seconds", d))
	return run, nil
}

func resultName(r string) string {
	if r == resultToApply {
		return "to_apply"
	}
	return r
}

func (e *Engine) recordRuleGauges(g *rules.Group, results []AccountRun) {
	m := e.opts.Metrics
	for _, r := range g.Rules {
		var s RuleStats
		for _, a := range results {
			if a.Stats == nil {
				continue
			}
			if x := a.Stats[r.Name]; x != nil {
				s.InScope += x.InScope
				s.Matches += x.Matches
				s.Pending += x.Pending
			}
		}
		m.RuleObjectsInScope.WithLabelValues(g.Name, r.Name).Set(float64(s.InScope))
		m.RuleMatches.WithLabelValues(g.Name, r.Name).Set(float64(s.Matches))
		m.RulePending.WithLabelValues(g.Name, r.Name).Set(float64(s.Pending))
	}
}

// runAccount runs one group for one account: never two at once for the same
// (group, account), one account at a time across groups.
func (e *Engine) runAccount(ctx context.Context, l *loaded, g *rules.Group, acct config.Account, at time.Time, runID string) AccountRun {
	out := AccountRun{RunID: runID, Group: g.Name, AccountID: acct.ID, Scheduled: at}
	key := g.Name + "\x00" + acct.ID
	e.mu.Lock()
	if e.running[key] {
		e.mu.Unlock()
		out.Result = "skipped"
		out.Err = errors.New("the previous run of this group for this account is still running")
		return e.finish(ctx, out, time.Time{})
	}
	e.running[key] = true
	sem, ok := e.acctSem[acct.ID]
	if !ok {
		sem = make(chan struct{}, 1)
		e.acctSem[acct.ID] = sem
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, key)
		e.mu.Unlock()
	}()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		out.Result, out.Err = "failed", ctx.Err()
		return e.finish(ctx, out, time.Time{})
	}
	defer func() { <-sem }()
	// Several replicas on one database serialise an account's runs there too.
	if l, ok := e.opts.Store.(accountLocker); ok {
		unlock, err := l.LockAccount(ctx, acct.ID)
		if err != nil {
			out.Result, out.Err = "failed", err
			return e.finish(ctx, out, time.Time{})
		}
		defer unlock()
	}
	started := e.opts.Now()
	got, err := e.opts.Store.TryAcquire(ctx, g.Name, acct.ID, at, e.opts.Owner)
	if err != nil {
		out.Result, out.Err = "failed", fmt.Errorf("acquire the run lease: %w", err)
		return e.finish(ctx, out, started)
	}
	if !got {
		out.Result, out.Err = "skipped", errors.New("another replica runs this tick")
		return e.finish(ctx, out, started)
	}
	if err := e.reconcile(ctx, acct.ID); err != nil {
		e.opts.Logger.Warn("reconcile intents", zap.String("account", acct.ID), zap.Error(err))
	}
	snap, err := e.opts.Reader.Read(ctx, acct, at, g.Rules)
	if err != nil {
		// Never evaluate on partial data; pending state survives (SPEC 4.1).
		out.Result, out.Err = "failed", err
		return e.finish(ctx, out, started)
	}
	// A read with the token succeeded: writes with it may go on (SPEC 4.13).
	if e.setAuth(acct, true) {
		e.opts.Logger.Info("the access token works again; writes with it resume", zap.String("account", acct.ID))
	}
	out.Currency = snap.Account.Currency
	if err := e.decideAndAct(ctx, l, g, acct, snap, &out); err != nil {
		out.Result, out.Err = "failed", err
		return e.finish(ctx, out, started)
	}
	out.Result = "success"
	for _, d := range out.Decisions {
		if d.Result == state.ResultFailed {
			out.Result = "partial"
		}
	}
	if out.GuardTripped {
		out.Result = "partial"
	}
	return e.finish(ctx, out, started)
}

// finish records the run's result in the metrics, the run log and the log.
func (e *Engine) finish(ctx context.Context, out AccountRun, started time.Time) AccountRun {
	e.opts.Metrics.GroupRuns.WithLabelValues(out.Group, out.AccountID, out.Result).Inc()
	rec := state.RunRecord{Group: out.Group, AccountID: out.AccountID, RunID: out.RunID, Scheduled: out.Scheduled,
		Started: started, Ended: e.opts.Now(), Result: out.Result, Counts: map[string]int64{}}
	if started.IsZero() {
		rec.Started = rec.Ended
	}
	if out.Err != nil {
		rec.Error = out.Err.Error()
	}
	for _, d := range out.Decisions {
		rec.Counts[resultName(d.Result)]++
	}
	if out.Result != "skipped" {
		// A fresh context: a run cancelled by shutdown still records how it ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := e.opts.Store.RecordRun(rctx, rec); err != nil {
			e.opts.Logger.Warn("record run", zap.Error(err))
		}
		cancel()
	}
	if out.Err != nil {
		lvl := e.opts.Logger.Error
		if out.Result == "skipped" || ctx.Err() != nil {
			lvl = e.opts.Logger.Warn
		}
		lvl("account run did not complete", zap.String("group", out.Group), zap.String("account", out.AccountID),
			zap.String("run_id", out.RunID), zap.String("result", out.Result), zap.Error(out.Err))
	}
	if e.opts.OnRun != nil {
		e.opts.OnRun(out)
	}
	return out
}

func newRunID(at time.Time) string {
	return at.UTC().Format("20060102T150405Z") + "-" + randomID()
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
