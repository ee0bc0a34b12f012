package ruletest

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// Result is the outcome of one test.
type Result struct {
	File  string
	Name  string
	Pos   diag.Pos
	Steps int
	// Err is set when the test could not run (the state store, a group run that
	// failed to complete).
	Err error
	// Failure describes the first step whose actions differ from the expected ones;
	// the test stops there, since later steps build on it.
	Failure *StepFailure
}

// Passed reports whether the test passed.
func (r *Result) Passed() bool { return r.Err == nil && r.Failure == nil }

// StepFailure is a step whose actions were not the expected ones.
type StepFailure struct {
	Step int // from 1
	At   time.Time
	Pos  diag.Pos
	// Expected and Actual list the actions, one line each; Other the step's other
	// decisions (pending, skipped, failed), for context.
	Expected, Actual, Other []string
	// Missing are the expected actions that did not happen, each with what the rule
	// decided or saw; Unexpected the actions that happened but were not expected.
	Missing, Unexpected []Detail
	// Err is set when a group run failed during the step.
	Err error
}

// Detail is one action, or one expected action that did not happen, with the
// values the rule saw on the object.
type Detail struct {
	Text   string
	Values string
}

// Run runs the tests whose names match (all when match is nil), each with its own
// in-memory state store and engine.
func (f *File) Run(ctx context.Context, match func(name string) bool) []*Result {
	var out []*Result
	for _, t := range f.Tests {
		if match != nil && !match(t.Name) {
			continue
		}
		out = append(out, f.run(ctx, t))
	}
	return out
}

func (f *File) run(ctx context.Context, t *Test) *Result {
	res := &Result{File: f.Path, Name: t.Name, Pos: t.Pos, Steps: len(t.steps)}
	cfg := *f.cfg
	cfg.Accounts = []config.Account{t.cfgAcct}
	w := newWorld(t, &cfg)
	st, err := state.OpenSQLite(ctx, ":memory:")
	if err != nil {
		res.Err = fmt.Errorf("open the in-memory state store: %w", err)
		return res
	}
	defer st.Close()
	var now atomic.Pointer[time.Time]
	now.Store(&t.steps[0].at)
	eng, err := engine.New(engine.Options{Config: &cfg, Rules: f.set, Reader: w, Executor: w, Store: st,
		Owner: "rulesd-test", Concurrency: 1, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		res.Err = err
		return res
	}
	for i, s := range t.steps {
		at := s.at
		now.Store(&at)
		w.apply(s)
		var ds []*engine.Decision
		var runErr error
		for _, g := range f.set.Groups {
			gr, err := eng.RunGroup(ctx, g.Name, at)
			if err != nil {
				runErr = err
				break
			}
			for _, a := range gr.Accounts {
				if a.Result != "success" && a.Result != "partial" {
					runErr = fmt.Errorf("group %s did not run (%s): %v", g.Name, a.Result, a.Err)
				}
				ds = append(ds, a.Decisions...)
			}
		}
		if fail := f.compare(w, t, s, ds); fail != nil || runErr != nil {
			if fail == nil {
				fail = &StepFailure{}
			}
			fail.Step, fail.At, fail.Pos, fail.Err = i+1, at, s.pos, runErr
			if fail.Expected == nil {
				fail.Expected = describeExpected(s)
				fail.Actual, fail.Other = describeActual(t, ds)
			}
			res.Failure = fail
			return res
		}
	}
	return res
}

// acting reports whether a decision is an action that happened: applied, or
// decided in a dry run.
func acting(d *engine.Decision) bool {
	return d.Result == state.ResultApplied || d.Result == state.ResultDryRun
}

func resultOf(d *engine.Decision) string {
	if d.Result == engine.ResultPending {
		return "pending"
	}
	return d.Result
}

// compare checks a step's decisions against its expectations: every expected action
// happened (with the expected result and after value), and no other action did.
func (f *File) compare(w *world, t *Test, s *step, ds []*engine.Decision) *StepFailure {
	used := map[*engine.Decision]bool{}
	var missing []Detail
	for _, e := range s.expect {
		var d *engine.Decision
		for _, x := range ds {
			if x.Rule == e.rule && x.Object.ID == e.object && !used[x] {
				d = x
				break
			}
		}
		if d != nil {
			resultOK := (e.result == "" && acting(d)) || e.result == resultOf(d)
			afterOK := e.after == nil || (d.IsWrite() && d.Change.Field != "status" && d.Change.After == *e.after)
			if resultOK && afterOK {
				used[d] = true
				continue
			}
		}
		missing = append(missing, f.whyNot(w, t, e, d))
	}
	var unexpected []Detail
	for _, d := range ds {
		if acting(d) && !used[d] {
			unexpected = append(unexpected, Detail{Text: describe(t, d), Values: formatValues(d.Rule, d.Values)})
		}
	}
	if len(missing) == 0 && len(unexpected) == 0 {
		return nil
	}
	fail := &StepFailure{Expected: describeExpected(s), Missing: missing, Unexpected: unexpected}
	fail.Actual, fail.Other = describeActual(t, ds)
	return fail
}

// whyNot explains an expected action that did not happen: what the rule decided on
// the object, or why it did not match it, with the values it saw.
func (f *File) whyNot(w *world, t *Test, e expectation, d *engine.Decision) Detail {
	out := Detail{Text: e.String()}
	if d != nil {
		out.Text += ": the rule's decision was " + outcome(d)
		if d.IsWrite() && d.Change.Field != "status" {
			cur := t.account.Currency
			out.Text += fmt.Sprintf(", %s %s → %s", d.Change.Field, formatNumber(money.ToMajor(d.Change.Before, cur)), formatNumber(money.ToMajor(d.Change.After, cur)))
		}
		out.Values = formatValues(d.Rule, d.Values)
		return out
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	snap := w.snaps[e.rule.Group.Name]
	if snap == nil {
		out.Text += ": the group did not run for " + t.account.ID
		return out
	}
	tab := snap.Tables[e.rule.Level]
	i, ok := -1, false
	if tab != nil {
		i, ok = tab.Index(e.object)
	}
	if !ok {
		out.Text += ": the object was not read (DELETED or ARCHIVED)"
		return out
	}
	row := &tab.Rows[i]
	in, _ := e.rule.Match(row)
	switch {
	case !in:
		out.Text += ": the object is not in the rule's scope (where is not true)"
	default:
		out.Text += ": the rule's condition (when) is not true"
	}
	vals := map[string]state.Scalar{}
	for _, v := range e.rule.Values {
		switch x := v.Get(row).(type) {
		case float64:
			vals[v.Name] = state.Number(x)
		case string:
			vals[v.Name] = state.Text(x)
		case bool:
			vals[v.Name] = state.Number(map[bool]float64{false: 0, true: 1}[x])
		default:
			vals[v.Name] = state.Null()
		}
	}
	out.Values = formatValues(e.rule, vals)
	return out
}

func describeExpected(s *step) []string {
	var out []string
	for _, e := range s.expect {
		out = append(out, e.String())
	}
	return out
}

// describeActual lists the actions that happened, and the other decisions of the
// step (pending, skipped, failed).
func describeActual(t *Test, ds []*engine.Decision) (acts, others []string) {
	for _, d := range ds {
		if acting(d) {
			acts = append(acts, describe(t, d))
		} else {
			others = append(others, describe(t, d))
		}
	}
	return acts, others
}

// describe is one decision on one line: rule, object, action, result and reason.
func describe(t *Test, d *engine.Decision) string {
	s := fmt.Sprintf("%s/%s on %s", d.Rule.Group.Name, d.Rule.Name, d.Object.ID)
	if d.Object.Name != "" {
		s += fmt.Sprintf(" %q", d.Object.Name)
	}
	s += ": " + d.Rule.Action.Kind.String()
	if d.IsWrite() && d.Change.Field != "status" {
		cur := t.account.Currency
		s += fmt.Sprintf(" %s %s → %s", d.Change.Field, formatNumber(money.ToMajor(d.Change.Before, cur)), formatNumber(money.ToMajor(d.Change.After, cur)))
		if d.Change.CappedBy != "" {
			s += " (capped by " + d.Change.CappedBy + ")"
		}
	}
	return s + " (" + outcome(d) + ")"
}

// outcome is a decision's result with its reason.
func outcome(d *engine.Decision) string {
	s := resultOf(d)
	if d.Result == engine.ResultPending && !d.PendingSince.IsZero() {
		s += " since " + d.PendingSince.UTC().Format(time.RFC3339) + ", for: " + formatDuration(d.Rule.For)
	}
	if d.Error != "" {
		s += ": " + d.Error
	}
	return s
}

// formatDuration writes 1h, 90m, 2h30m rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatValues lists the values a rule saw, in the order its expressions name them.
func formatValues(r *rules.Rule, vals map[string]state.Scalar) string {
	var parts []string
	seen := map[string]bool{}
	add := func(name string, v state.Scalar) {
		if seen[name] {
			return
		}
		seen[name] = true
		switch {
		case v.IsNull():
			parts = append(parts, name+"=missing")
		default:
			if n, ok := v.Number(); ok {
				parts = append(parts, name+"="+formatNumber(n))
			} else if s, ok := v.Text(); ok {
				parts = append(parts, name+"="+strconv.Quote(s))
			}
		}
	}
	for _, v := range r.Values {
		if x, ok := vals[v.Name]; ok {
			add(v.Name, x)
		}
	}
	rest := make([]string, 0, len(vals))
	for k := range vals {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		add(k, vals[k])
	}
	return strings.Join(parts, " ")
}

func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', 10, 64)
}

// Format writes a failed test for people: the test, the step, the expected and the
// actual actions, and the values the rules saw.
func (r *Result) Format(w io.Writer) {
	fmt.Fprintf(w, "FAIL %s: %s\n", r.Pos, r.Name)
	if r.Err != nil {
		fmt.Fprintf(w, "    error: %v\n", r.Err)
	}
	fl := r.Failure
	if fl == nil {
		return
	}
	fmt.Fprintf(w, "    step %d at %s (%s)\n", fl.Step, fl.At.Format(time.RFC3339), fl.Pos)
	if fl.Err != nil {
		fmt.Fprintf(w, "    error: %v\n", fl.Err)
	}
	list := func(title string, lines []string) {
		fmt.Fprintf(w, "    %s:\n", title)
		if len(lines) == 0 {
			fmt.Fprintln(w, "        none")
		}
		for _, l := range lines {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
	list("expected", fl.Expected)
	list("actual", fl.Actual)
	if len(fl.Other) > 0 {
		list("other decisions (not actions)", fl.Other)
	}
	details := func(title string, ds []Detail) {
		if len(ds) == 0 {
			return
		}
		fmt.Fprintf(w, "    %s:\n", title)
		for _, d := range ds {
			fmt.Fprintf(w, "        %s\n", d.Text)
			if d.Values != "" {
				fmt.Fprintf(w, "            values the rule saw: %s\n", d.Values)
			}
		}
	}
	details("missing", fl.Missing)
	details("unexpected", fl.Unexpected)
}
