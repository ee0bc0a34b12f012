package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/server"
)

// AdminTokenEnv holds the bearer token the mutating endpoints require, when set.
const AdminTokenEnv = "RULESD_ADMIN_TOKEN"

// serveHTTP serves the HTTP endpoints until ctx is done.
func (d *Daemon) serveHTTP(ctx context.Context, ln net.Listener) error {
	srv := server.New(server.Options{
		Registry: d.reg, Source: d, Reloader: d, Audit: d.store, Kill: d.store,
		Ready:        func(ctx context.Context) error { return d.store.Ping(ctx) },
		AdminToken:   os.Getenv(AdminTokenEnv),
		Logger:       d.log.Named("http"),
		OnKillSwitch: func() { _ = d.updateKillGauge(context.Background()) },
		Now:          d.opts.Now,
	})
	return srv.Serve(ctx, ln)
}

// maxMatchesShown bounds the matches the status page lists per rule.
const maxMatchesShown = 200

// Status implements server.Source.
func (d *Daemon) Status(ctx context.Context) server.Status {
	d.mu.Lock()
	cfg, set := d.cfg, d.set
	st := server.Status{Reload: server.ReloadStatus{OK: d.reloadOK, Time: d.reloadAt, Errors: append([]string(nil), d.reloadEr...)}}
	d.mu.Unlock()
	st.Currencies = map[string]string{}
	for _, g := range set.Groups {
		gv := server.GroupView{Name: g.Name, Schedule: g.Schedule, DryRun: g.DryRun || cfg.DryRun || d.opts.DryRun}
		if d.opts.Tick == nil {
			gv.NextRun = d.sched.Next(g.Name)
		}
		for _, a := range cfg.Accounts {
			if g.Selects(a) {
				gv.Accounts = append(gv.Accounts, a.ID)
			}
		}
		run := d.engine.LastRun(g.Name)
		if run != nil {
			rv := &server.RunView{ID: run.ID, Start: run.Start, End: run.End, Result: run.Result(), Accounts: map[string]string{}}
			for _, a := range run.Accounts {
				rv.Accounts[a.AccountID] = a.Result
				if a.Err != nil {
					rv.Errors = append(rv.Errors, a.AccountID+": "+a.Err.Error())
				}
				if a.Currency != "" {
					st.Currencies[a.AccountID] = a.Currency
				}
			}
			gv.LastRun = rv
		}
		for _, r := range g.Rules {
			gv.Rules = append(gv.Rules, ruleView(g, r, run))
		}
		st.Groups = append(st.Groups, gv)
	}
	return st
}

func ruleView(g *rules.Group, r *rules.Rule, run *engine.GroupRun) server.RuleView {
	rv := server.RuleView{
		Name: r.Name, Group: g.Name, Description: r.Description, Level: r.Level.String(), Window: r.Window.String(),
		Where: r.Where, When: r.When, ActionKind: r.Action.Kind.String(), Action: ActionSummary(r),
		DryRun: r.DryRun || g.DryRun, Labels: r.Labels, Cooldown: shortDuration(r.Cooldown),
	}
	if r.For > 0 {
		rv.For = shortDuration(r.For)
	}
	if run == nil {
		return rv
	}
	for _, a := range run.Accounts {
		if s := a.Stats[r.Name]; s != nil {
			rv.InScope += s.InScope
			rv.Matches += s.Matches
			rv.Pending += s.Pending
		}
		for _, dec := range a.Decisions {
			if dec.Rule.Name != r.Name || len(rv.LastMatches) >= maxMatchesShown {
				continue
			}
			m := server.MatchView{AccountID: a.AccountID, ObjectID: dec.Object.ID, ObjectName: dec.Object.Name, Result: dec.Result, Values: dec.Values}
			if dec.IsWrite() {
				m.Before = fmt.Sprint(show(engine.Major(engine.Before(dec), a.Currency)))
				m.After = fmt.Sprint(show(engine.Major(engine.After(dec), a.Currency)))
			}
			if m.Result == "" {
				m.Result = "to apply"
			}
			rv.LastMatches = append(rv.LastMatches, m)
		}
	}
	sort.SliceStable(rv.LastMatches, func(i, j int) bool { return rv.LastMatches[i].AccountID < rv.LastMatches[j].AccountID })
	return rv
}

func show(v any) any {
	if v == nil {
		return "—"
	}
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.2f", f)
	}
	return v
}

// ActionSummary describes a rule's action in a few words, for people.
func ActionSummary(r *rules.Rule) string {
	a := r.Action
	var parts []string
	switch a.Kind {
	case rules.Pause:
		parts = append(parts, "pause")
		if a.RestoreAfter > 0 {
			parts = append(parts, "restore after "+a.RestoreAfter.String())
		}
	case rules.Unpause:
		parts = append(parts, "unpause")
	case rules.SetBudget, rules.SetBid:
		what := "budget"
		if a.Kind == rules.SetBid {
			what = "bid"
		}
		if a.Budget != "" {
			what = a.Budget + " " + what
		}
		parts = append(parts, "set "+what+" to "+a.Amount.Src)
	case rules.ChangeBudget, rules.ChangeBid:
		what := "budget"
		if a.Kind == rules.ChangeBid {
			what = "bid"
		}
		if a.Budget != "" {
			what = a.Budget + " " + what
		}
		parts = append(parts, "change "+what+" by "+a.By.Src)
		if a.Min != nil {
			parts = append(parts, "min "+a.Min.Src)
		}
		if a.Max != nil {
			parts = append(parts, "max "+a.Max.Src)
		}
	case rules.Notify:
		if len(r.Notify) == 0 {
			return "notify"
		}
		return "notify " + strings.Join(r.Notify, ", ")
	}
	s := strings.Join(parts, ", ")
	if len(r.Notify) > 0 {
		s += "; notify " + strings.Join(r.Notify, ", ")
	}
	return s
}

// shortDuration writes 24h, 90m or 1h30m rather than Go's 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
