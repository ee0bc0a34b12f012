package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// ExplainOptions select the rule and object `rulesd explain` takes apart.
type ExplainOptions struct {
	ConfigPath string
	Rule       string // NAME or GROUP/NAME
	Object     string // the id of a campaign, ad set or ad at the rule's level
	Account    string // optional: only look in this account
	Logger     *zap.Logger
	Now        func() time.Time
}

// ExplainResult is one rule taken apart for one object, now.
type ExplainResult struct {
	Group, Rule string
	Level       string
	Window      string
	AccountID   string
	Currency    string
	// At is the evaluation time (what hour, weekday and the windows derive from).
	At     time.Time
	Object insights.Object
	// Explanation holds every sub-expression of where and when with its value, and the
	// rule's verdict (in scope, match).
	Explanation rules.Explanation
	// Decisions are what the engine would record now for this rule and object, with
	// the guards applied (cooldown, conflicts, caps, pacing, manual hold, blast
	// radius, ...); empty when the rule does not act on it.
	Decisions []ExplainDecision
	// Skipped lists accounts that were passed over because reading them failed.
	Skipped []string
}

// ExplainDecision is what the engine would do with the object.
type ExplainDecision struct {
	Kind     string
	Field    string // status, daily_budget, ...; empty for notify
	Before   any    // major units, or "ACTIVE"/"PAUSED"; nil when nothing is written
	After    any
	CappedBy string
	// Result is would_apply, pending, dry_run, skipped_cooldown, blocked_guard, ...
	Result string
	// Reason is the guard's reason (Decision.Error), when there is one.
	Reason string
	// PendingSince is when the condition started holding (rules with for:).
	PendingSince time.Time
	// Restore marks the unpause a pause with restore_after makes, not a match.
	Restore bool
}

// ErrNotFound is wrapped by the errors of Explain for a rule, account or object that
// does not exist.
var ErrNotFound = errors.New("not found")

// Explain reads the accounts of the rule's group (only opts.Account when given), finds
// the object in the first account holding it, and evaluates the rule on it: every
// sub-expression's value, and the decision the engine would record now. It writes
// nothing to the API or the store.
func Explain(ctx context.Context, opts ExplainOptions) (*ExplainResult, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Rule == "" || opts.Object == "" {
		return nil, errors.New("explain needs a rule and an object")
	}
	cfg, set, _, err := Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	g, r, err := findRule(set, opts.Rule)
	if err != nil {
		return nil, err
	}
	accts, err := explainAccounts(cfg, g, opts.Account)
	if err != nil {
		return nil, err
	}
	store, err := openForPreview(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	gc, err := newGraph(cfg, nil, log, graphOptions{})
	if err != nil {
		return nil, err
	}
	reader, err := insights.NewReader(insights.Options{Graph: gc, Config: cfg, Logger: log})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Config: cfg, Rules: set, Reader: reader, Store: store, Logger: log, Now: now, Concurrency: cfg.Graph.MaxInFlight})
	if err != nil {
		return nil, err
	}
	at := now().Truncate(time.Second)
	var skipped, failures []string
	for _, a := range accts {
		// The whole group is read and planned: conflicts and the blast-radius guard
		// depend on its other rules and objects.
		snap, err := reader.Read(ctx, a, at, g.Rules)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if opts.Account != "" {
				return nil, fmt.Errorf("read account %s: %w", a.ID, err)
			}
			skipped = append(skipped, a.ID)
			failures = append(failures, fmt.Sprintf("%s: %v", a.ID, err))
			log.Warn("explain: reading an account failed", zap.String("account", a.ID), zap.Error(err))
			continue
		}
		t := snap.Tables[r.Level]
		if t == nil {
			continue
		}
		i, ok := t.Index(opts.Object)
		if !ok {
			continue
		}
		// Plan first: it fills in what comes from the store (paused_by_rulesd,
		// hours_since_change), so the explanation sees what the rule saw.
		ds, err := eng.Preview(ctx, g, a, snap)
		if err != nil {
			return nil, fmt.Errorf("evaluate group %s for %s: %w", g.Name, a.ID, err)
		}
		res := &ExplainResult{
			Group: g.Name, Rule: r.Name, Level: r.Level.String(), Window: r.Window.String(), AccountID: a.ID, Currency: snap.Account.Currency,
			At: snap.At, Object: t.Objects[i], Explanation: r.Explain(&t.Rows[i]), Skipped: skipped,
		}
		for _, d := range ds {
			if d.Rule != r || d.Object.ID != opts.Object {
				continue
			}
			res.Decisions = append(res.Decisions, explainDecision(d, res.Currency))
		}
		return res, nil
	}
	where := "the accounts of group " + g.Name
	if opts.Account != "" {
		where = "account " + opts.Account
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("%w: no %s %s in %s that could be read; reading failed for %s", ErrNotFound, r.Level, opts.Object, where, strings.Join(failures, "; "))
	}
	return nil, fmt.Errorf("%w: no %s %s in %s", ErrNotFound, r.Level, opts.Object, where)
}

func explainDecision(d *engine.Decision, currency string) ExplainDecision {
	x := ExplainDecision{Kind: d.Kind().String(), Field: d.Change.Field, CappedBy: d.Change.CappedBy, Result: d.Result,
		Reason: d.Error, PendingSince: d.PendingSince, Restore: d.Kind() != d.Rule.Action.Kind}
	if d.IsWrite() || d.Result == state.ResultFailed {
		x.Before, x.After = engine.Major(engine.Before(d), currency), engine.Major(engine.After(d), currency)
	}
	return x
}

// findRule finds a rule by NAME or GROUP/NAME; a NAME used in several groups must be
// qualified.
func findRule(set *rules.Set, name string) (*rules.Group, *rules.Rule, error) {
	var found []*rules.Rule
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			if ruleMatches(g, r, name) {
				found = append(found, r)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, fmt.Errorf("%w: no rule %q in the rule files", ErrNotFound, name)
	case 1:
		return found[0].Group, found[0], nil
	}
	var names []string
	for _, r := range found {
		names = append(names, r.Group.Name+"/"+r.Name)
	}
	return nil, nil, fmt.Errorf("rule %q is in several groups; name one of %s", name, strings.Join(names, ", "))
}

// explainAccounts lists the accounts the group runs for, or only the one asked for.
func explainAccounts(cfg *config.Config, g *rules.Group, only string) ([]config.Account, error) {
	if only != "" {
		a, ok := cfg.Account(only)
		if !ok {
			return nil, fmt.Errorf("%w: account %s is not in the config", ErrNotFound, only)
		}
		if !g.Selects(*a) {
			return nil, fmt.Errorf("%w: group %s does not run for account %s", ErrNotFound, g.Name, only)
		}
		return []config.Account{*a}, nil
	}
	var out []config.Account
	for _, a := range cfg.Accounts {
		if g.Selects(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: group %s runs for no account of the config", ErrNotFound, g.Name)
	}
	return out, nil
}
