package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// PreviewOptions select what a preview evaluates.
type PreviewOptions struct {
	ConfigPath string
	Rule       string // only print this rule (group/rule or rule); its group is still evaluated
	Account    string // only this account
	Logger     *zap.Logger
	Now        func() time.Time
}

// PreviewMatch is one matched object in the JSON of SPEC section 6.
type PreviewMatch struct {
	Group     string         `json:"group"`
	Rule      string         `json:"rule"`
	AccountID string         `json:"account_id"`
	Level     string         `json:"level"`
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Action    PreviewAction  `json:"action"`
	Result    string         `json:"result"`
	Reason    string         `json:"reason,omitempty"`
	Values    map[string]any `json:"values"`
}

// PreviewAction is what would happen to the object.
type PreviewAction struct {
	Kind     string `json:"kind"`
	Field    string `json:"field"`
	Before   any    `json:"before"`
	After    any    `json:"after"`
	CappedBy string `json:"capped_by,omitempty"`
}

// PreviewError is a failure for one account, group, rule or object.
type PreviewError struct {
	AccountID string `json:"account_id"`
	Group     string `json:"group"`
	Rule      string `json:"rule"`
	ObjectID  string `json:"object_id"`
	Stage     string `json:"stage"`
	Message   string `json:"message"`
}

// PreviewResult is the JSON of `rulesd preview -o json`.
type PreviewResult struct {
	Matches []PreviewMatch `json:"matches"`
	Errors  []PreviewError `json:"errors"`
	// Requests counts the Graph API calls the preview made.
	Requests int `json:"-"`
	// Currencies of the accounts, for the table.
	Currencies map[string]string `json:"-"`
}

// Preview reads every account once, evaluates every rule and reports what would
// happen, writing nothing to the API or the store.
func Preview(ctx context.Context, opts PreviewOptions) (*PreviewResult, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cfg, set, _, err := Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.Rule != "" && !hasRule(set, opts.Rule) {
		return nil, fmt.Errorf("no rule %q in the rule files", opts.Rule)
	}
	store, err := openForPreview(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	g, err := newGraph(cfg, nil, log, graphOptions{})
	if err != nil {
		return nil, err
	}
	reader, err := insights.NewReader(insights.Options{Graph: g, Config: cfg, Logger: log})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Config: cfg, Rules: set, Reader: reader, Store: store, Logger: log, Now: now, Concurrency: cfg.Graph.MaxInFlight})
	if err != nil {
		return nil, err
	}
	var accts []config.Account
	for _, a := range cfg.Accounts {
		if opts.Account == "" || a.ID == opts.Account {
			accts = append(accts, a)
		}
	}
	if opts.Account != "" && len(accts) == 0 {
		return nil, fmt.Errorf("account %s is not in the config", opts.Account)
	}
	res := &PreviewResult{Matches: []PreviewMatch{}, Errors: []PreviewError{}, Currencies: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Accounts in parallel, as many as requests may be in flight: a read is a chain of
	// dependent requests, so fewer accounts would leave the client idle.
	sem := make(chan struct{}, cfg.Graph.MaxInFlight)
	at := now().Truncate(time.Second)
	for _, a := range accts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			matches, errs, calls, cur := previewAccount(ctx, eng, reader, set, a, at, opts.Rule)
			mu.Lock()
			res.Matches = append(res.Matches, matches...)
			res.Errors = append(res.Errors, errs...)
			res.Requests += calls
			res.Currencies[a.ID] = cur
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.SliceStable(res.Matches, func(i, j int) bool {
		a, b := res.Matches[i], res.Matches[j]
		if a.AccountID != b.AccountID {
			return a.AccountID < b.AccountID
		}
		return false // keep group and rule file order within an account
	})
	sort.SliceStable(res.Errors, func(i, j int) bool { return res.Errors[i].AccountID < res.Errors[j].AccountID })
	return res, nil
}

func hasRule(set *rules.Set, name string) bool {
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			if ruleMatches(g, r, name) {
				return true
			}
		}
	}
	return false
}

func ruleMatches(g *rules.Group, r *rules.Rule, name string) bool {
	return name == "" || r.Name == name || g.Name+"/"+r.Name == name
}

func previewAccount(ctx context.Context, eng *engine.Engine, reader *insights.Reader, set *rules.Set, a config.Account, at time.Time, only string) ([]PreviewMatch, []PreviewError, int, string) {
	var groups []*rules.Group
	var rs []*rules.Rule
	for _, g := range set.Groups {
		if g.Selects(a) {
			groups = append(groups, g)
			rs = append(rs, g.Rules...)
		}
	}
	if len(rs) == 0 {
		return nil, nil, 0, ""
	}
	snap, err := reader.Read(ctx, a, at, rs)
	if err != nil {
		return nil, []PreviewError{{AccountID: a.ID, Stage: "read", Message: err.Error()}}, 0, ""
	}
	var matches []PreviewMatch
	var errs []PreviewError
	cur := snap.Account.Currency
	for _, g := range groups {
		ds, err := eng.Preview(ctx, g, a, snap)
		if err != nil {
			errs = append(errs, PreviewError{AccountID: a.ID, Group: g.Name, Stage: "eval", Message: err.Error()})
			continue
		}
		for _, d := range ds {
			if !ruleMatches(g, d.Rule, only) {
				continue
			}
			m := PreviewMatch{Group: g.Name, Rule: d.Rule.Name, AccountID: a.ID, Level: d.Rule.Level.String(),
				ID: d.Object.ID, Name: d.Object.Name, Result: d.Result, Reason: d.Error, Values: map[string]any{}}
			m.Action = PreviewAction{Kind: d.Rule.Action.Kind.String(), Field: d.Change.Field, CappedBy: d.Change.CappedBy}
			if d.IsWrite() || d.Result == state.ResultFailed {
				m.Action.Before, m.Action.After = engine.Major(engine.Before(d), cur), engine.Major(engine.After(d), cur)
			}
			for k, v := range d.Values {
				m.Values[k] = engine.ScalarAny(v)
			}
			matches = append(matches, m)
			if d.Result == state.ResultFailed && d.Change.Result == actions.ResultFailed {
				errs = append(errs, PreviewError{AccountID: a.ID, Group: g.Name, Rule: d.Rule.Name, ObjectID: d.Object.ID, Stage: "action", Message: d.Error})
			}
		}
	}
	return matches, errs, snap.Requests, cur
}

// openForPreview opens the configured store to see cooldowns and pending state, or an
// empty in-memory one when the database does not exist yet (a preview creates nothing).
func openForPreview(ctx context.Context, cfg *config.Config) (state.Store, error) {
	if cfg.State.Driver == "sqlite" {
		dsn := cfg.Resolve(cfg.State.DSN)
		if _, err := os.Stat(dsn); errors.Is(err, os.ErrNotExist) {
			return state.OpenSQLite(ctx, ":memory:")
		}
		return state.OpenSQLite(ctx, dsn)
	}
	return state.Open(ctx, cfg.State.Driver, cfg.State.DSN)
}
