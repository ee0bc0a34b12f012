package rules

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/rulesd/rulesd/internal/diag"
)

// lint warns about rules that load but probably do not mean what their author wants.
// (Ratio metrics without a volume condition and increases without max are found
// while compiling; this finds pairs of rules that would flap, SPEC 4 item 9.)
func lint(set *Set, l *diag.List) {
	type side struct {
		rule *Rule
		dir  int // +1 unpause / increase, -1 pause / decrease
		c    constraints
	}
	byField := map[string][]side{} // level/field -> rules writing it
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			dir := direction(r.Action)
			if dir == 0 {
				continue
			}
			c, ok := ruleConstraints(r)
			if !ok {
				continue
			}
			key := r.Level.String() + "/" + r.Action.Kind.Field()
			byField[key] = append(byField[key], side{rule: r, dir: dir, c: c})
		}
	}
	keys := make([]string, 0, len(byField))
	for k := range byField {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sides := byField[k]
		for i, a := range sides {
			for _, b := range sides[i+1:] {
				if a.dir == b.dir || !a.c.compatible(b.c) {
					continue
				}
				l.Warnf(b.rule.Pos, "rules %s (%s) and %s (%s) at level %s can both match the same object, so they would reverse each other on every run; make their conditions exclusive",
					qualified(a.rule), verb(a.rule.Action), qualified(b.rule), verb(b.rule.Action), b.rule.Level)
			}
		}
	}
}

func qualified(r *Rule) string { return r.Group.Name + "/" + r.Name }

func direction(a Action) int {
	switch a.Kind {
	case Pause:
		return -1
	case Unpause:
		return 1
	case ChangeBudget, ChangeBid:
		if a.By == nil {
			return 0
		}
		if a.By.Delta > 0 {
			return 1
		}
		return -1
	}
	return 0
}

func verb(a Action) string {
	switch a.Kind {
	case Pause, Unpause:
		return a.Kind.String()
	}
	if a.By != nil && a.By.Delta > 0 {
		return "increase"
	}
	return "decrease"
}

// interval is the set of values one name may take under a rule's conditions.
type interval struct {
	lo, hi         float64
	loOpen, hiOpen bool
	eq             string // a string name compared with ==
	isStr          bool
}

type constraints map[string]*interval

func (c constraints) get(name string) *interval {
	if iv, ok := c[name]; ok {
		return iv
	}
	iv := &interval{lo: math.Inf(-1), hi: math.Inf(1)}
	c[name] = iv
	return iv
}

// compatible reports whether some object could satisfy both sets of constraints.
func (c constraints) compatible(o constraints) bool {
	for name, a := range c {
		b, ok := o[name]
		if !ok {
			continue
		}
		if a.isStr || b.isStr {
			if a.eq != "" && b.eq != "" && a.eq != b.eq {
				return false
			}
			continue
		}
		lo, loOpen := a.lo, a.loOpen
		if b.lo > lo || (b.lo == lo && b.loOpen) {
			lo, loOpen = b.lo, b.loOpen
		}
		hi, hiOpen := a.hi, a.hiOpen
		if b.hi < hi || (b.hi == hi && b.hiOpen) {
			hi, hiOpen = b.hi, b.hiOpen
		}
		if lo > hi || (lo == hi && (loOpen || hiOpen)) {
			return false
		}
	}
	return true
}

// ruleConstraints reads a rule's where and when as a conjunction of "name op
// constant"; conjuncts of any other form are ignored, so the check errs towards a
// warning. ok is false when the conditions are not conjunctions at all.
func ruleConstraints(r *Rule) (constraints, bool) {
	c := constraints{}
	// Conditions on what the action itself changes do not keep two rules apart: a
	// pause "where status is ACTIVE" and an unpause "where status is PAUSED" undo
	// each other on every run.
	own := map[string]bool{}
	switch r.Action.Kind.Field() {
	case "status":
		own["status"], own["effective_status"], own["paused_by_rulesd"] = true, true, true
	case "budget":
		own["daily_budget"], own["lifetime_budget"], own["budget_remaining"] = true, true, true
	case "bid":
		own["bid_amount"] = true
	}
	defer func() {
		for name := range own {
			delete(c, name)
		}
	}()
	for _, n := range []ast.Node{r.whereNode, r.whenNode} {
		if n == nil {
			continue
		}
		for _, atom := range conjuncts(n) {
			if b, ok := atom.(*ast.BinaryNode); ok && (b.Operator == "||" || b.Operator == "or") {
				return nil, false
			}
			addAtom(c, r, atom)
		}
	}
	return c, true
}

func conjuncts(n ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		return append(conjuncts(b.Left), conjuncts(b.Right)...)
	}
	return []ast.Node{n}
}

var flipped = map[string]string{">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}

func addAtom(c constraints, r *Rule, n ast.Node) {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		if path, err := memberPath(n); err == nil && len(path) == 1 {
			// a bare boolean name such as paused_by_rulesd
			iv := c.get(normalName(r, path))
			iv.lo, iv.hi = math.Max(iv.lo, 1), math.Min(iv.hi, 1)
		}
		if u, ok := n.(*ast.UnaryNode); ok && (u.Operator == "!" || u.Operator == "not") {
			if path, err := memberPath(u.Node); err == nil && len(path) == 1 {
				iv := c.get(normalName(r, path))
				iv.lo, iv.hi = math.Max(iv.lo, 0), math.Min(iv.hi, 0)
			}
		}
		return
	}
	op, ok := flipped[b.Operator]
	if !ok {
		return
	}
	name, k := b.Left, b.Right
	if _, err := memberPath(name); err != nil {
		name, k = b.Right, b.Left
		b = &ast.BinaryNode{Operator: op}
	}
	path, err := memberPath(name)
	if err != nil {
		return
	}
	key := normalName(r, path)
	switch k := k.(type) {
	case *ast.StringNode:
		if b.Operator == "==" {
			iv := c.get(key)
			iv.isStr = true
			if iv.eq != "" && iv.eq != k.Value {
				iv.eq = "\x00impossible"
			} else {
				iv.eq = k.Value
			}
		}
	case *ast.IntegerNode:
		narrow(c.get(key), b.Operator, float64(k.Value))
	case *ast.FloatNode:
		narrow(c.get(key), b.Operator, k.Value)
	}
}

func narrow(iv *interval, op string, k float64) {
	switch op {
	case ">", ">=":
		if k > iv.lo || (k == iv.lo && op == ">") {
			iv.lo, iv.loOpen = k, op == ">"
		}
	case "<", "<=":
		if k < iv.hi || (k == iv.hi && op == "<") {
			iv.hi, iv.hiOpen = k, op == "<"
		}
	case "==":
		narrow(iv, ">=", k)
		narrow(iv, "<=", k)
	}
}

// normalName qualifies metric names with the rule's window, so that spend in a
// last_7d rule and last_7d.spend in another are the same value.
func normalName(r *Rule, path []string) string {
	head := path[0]
	if _, ok := metricByName(head); ok || head == "actions" || head == "action_values" {
		return fmt.Sprintf("%s.%s", r.Window, strings.Join(path, "."))
	}
	if _, ok := derivedByName(head); ok {
		return fmt.Sprintf("%s.%s", r.Window, strings.Join(path, "."))
	}
	return strings.Join(path, ".")
}
