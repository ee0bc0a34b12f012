package rules

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

// Explain shows why a rule does or does not match one object (`rulesd explain`): every
// sub-expression of where and when with its source text and its value for the object.
// Each sub-expression is compiled by the same compiler as the rule itself, so the
// values are exactly those the rule sees, missing values and three-valued logic
// included.

// ValueKind is the kind of a sub-expression's value.
type ValueKind uint8

// The kinds of values.
const (
	KindNumber    ValueKind = iota // a number; NaN when missing
	KindText                       // text
	KindCondition                  // true, false or unknown
)

func (k ValueKind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindText:
		return "text"
	}
	return "condition"
}

// Term is one sub-expression of a rule's where or when and its value for one object.
type Term struct {
	// Source is the sub-expression exactly as written, a substring of the rule's
	// Where or When; From and To are its rune offsets there.
	Source   string
	From, To int
	Kind     ValueKind
	Num      float64 // KindNumber; NaN when missing
	Text     string  // KindText
	Truth    Tri     // KindCondition
	// Why says why a missing number or an unknown condition is so, when it can be
	// told: "purchases is 0", "cpa is missing: purchases is 0".
	Why string
	// Terms are the sub-expressions, in evaluation (left to right) order. Constants
	// are left out, and chains of one logical operator (a && b && c) are flattened.
	Terms []*Term

	name bool // a name (spend, campaign.objective, last_7d.cpa), not an operation
}

// Missing reports whether the value is a missing number or an unknown condition.
func (t *Term) Missing() bool {
	switch t.Kind {
	case KindNumber:
		return math.IsNaN(t.Num)
	case KindCondition:
		return t.Truth == Unknown
	}
	return t.Text == missingText // a ?: with text branches and an unknown condition
}

// Value returns the value as a float64, a string or a bool; nil when it is a missing
// number or an unknown condition.
func (t *Term) Value() any {
	switch {
	case t.Missing():
		return nil
	case t.Kind == KindNumber:
		return t.Num
	case t.Kind == KindText:
		return t.Text
	}
	return t.Truth == True
}

// ValueString renders the value: 61.5, "ACTIVE", true, false, unknown or missing.
func (t *Term) ValueString() string {
	switch t.Kind {
	case KindNumber:
		if math.IsNaN(t.Num) {
			return "missing"
		}
		return FormatNumber(t.Num)
	case KindText:
		if t.Missing() {
			return "missing"
		}
		return strconv.Quote(t.Text)
	}
	return t.Truth.String()
}

// FormatNumber renders a number for people: as short as it is exact, rounded to six
// decimals (so 0.1+0.2 shows as 0.3).
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "missing"
	case math.IsInf(v, 0) || math.Abs(v) >= 1e15 || (v != 0 && math.Abs(v) < 1e-4):
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	r := math.Round(v*1e6) / 1e6
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// MetricValue is a custom metric (from a metrics: block) a rule uses, as written
// (aov, last_7d.aov), with its value for the object; NaN when missing.
type MetricValue struct {
	Name  string
	Value float64
}

// Explanation is a rule's where and when taken apart for one object.
type Explanation struct {
	// Where is nil when the rule has no where (every object is in scope).
	Where, When *Term
	// InScope and Match are the rule's verdict (Rule.Match): in scope when where is
	// true; a match when where and when are both true.
	InScope, Match bool
	// Metrics are the custom metrics the expressions use, in order of appearance.
	Metrics []MetricValue
	// Err is set when the rule could not be taken apart; Where and When may then be
	// nil, but InScope and Match still hold.
	Err error
}

// Explain evaluates every sub-expression of the rule's where and when for the object
// in row. It only reads the rule and its Layout, so it may run while the rule set is
// in use.
func (r *Rule) Explain(row *Row) Explanation {
	var e Explanation
	e.InScope, e.Match = r.Match(row)
	x, err := r.explainer()
	if err != nil {
		e.Err = err
		return e
	}
	if r.whereNode != nil {
		if e.Where, err = x.explain(r.whereNode, r.Where, row); err != nil {
			e.Err = fmt.Errorf("where: %w", err)
			return e
		}
	}
	if r.whenNode != nil {
		if e.When, err = x.explain(r.whenNode, r.When, row); err != nil {
			e.Err = fmt.Errorf("when: %w", err)
			return e
		}
	}
	for _, cm := range x.customs {
		e.Metrics = append(e.Metrics, MetricValue{Name: cm.written, Value: cm.num(row)})
	}
	return e
}

// explainer compiles sub-expressions of one rule.
type explainer struct {
	rule    *Rule
	comp    *exprCompiler
	layout  *Layout // the rule set's, never changed
	customs []customRef
}

// customRef is a use of a custom metric, with its value as the rule computes it.
type customRef struct {
	written string // as written: aov, last_7d.aov
	name    string
	window  Window
	num     numFn
}

// explainer sets up a compiler like the rule set's: on a copy of the Layout (a
// sub-expression of the rule needs no slot the rule does not have, and the copy makes
// sure Explain never changes the Layout), and with each custom metric the rule uses
// standing for the value the rule computed for it, since a Rule does not keep the
// metric definitions.
func (r *Rule) explainer() (*explainer, error) {
	if r.Group == nil || r.Group.layout == nil {
		return nil, fmt.Errorf("rule %s has no layout: it was not loaded by this package", r.Name)
	}
	l := r.Group.layout
	x := &explainer{rule: r, layout: l, comp: &exprCompiler{layout: cloneLayout(l), metrics: map[string]*customMetric{}}}
	get := map[string]func(*Row) any{}
	for _, v := range r.Values {
		get[v.Name] = v.get
	}
	var walkErr error
	seen := map[string]bool{}
	for _, root := range []ast.Node{r.whereNode, r.whenNode} {
		if root == nil {
			continue
		}
		ast.Find(root, func(n ast.Node) bool {
			if walkErr != nil {
				return false
			}
			switch n.(type) {
			case *ast.IdentifierNode, *ast.MemberNode:
			default:
				return false
			}
			path, perr := memberPath(n)
			if perr != nil || len(path) == 0 {
				return false
			}
			written, name, w, ok := r.customMetricRef(path)
			if !ok || seen[written] {
				return false
			}
			seen[written] = true
			g := get[written]
			if g == nil {
				walkErr = fmt.Errorf("custom metric %s: the rule recorded no value for it", written)
				return false
			}
			num := func(row *Row) float64 {
				if f, ok := g(row).(float64); ok {
					return f
				}
				return math.NaN()
			}
			x.customs = append(x.customs, customRef{written: written, name: name, window: w, num: num})
			cm := x.comp.metrics[name]
			if cm == nil {
				cm = &customMetric{name: name, byWin: map[Window]*compiledMetric{}}
				x.comp.metrics[name] = cm
			}
			cm.byWin[w] = &compiledMetric{v: numVal(num), reads: NewReads()}
			return false
		})
	}
	if walkErr != nil {
		return nil, walkErr
	}
	return x, nil
}

// customMetricRef reports whether a name path (aov, last_7d.aov) names a custom
// metric: in a rule that compiled, every name that is not built in is one.
func (r *Rule) customMetricRef(path []string) (written, name string, w Window, ok bool) {
	w, prefix := r.Window, ""
	if win, isWin := ParseWindow(path[0]); isWin && len(path) == 2 {
		w, prefix, path = win, path[0]+".", path[1:]
	}
	if len(path) != 1 || isBuiltinName(path[0]) {
		return "", "", 0, false
	}
	return prefix + path[0], path[0], w, true
}

func cloneLayout(l *Layout) *Layout {
	return &Layout{num: maps.Clone(l.num), str: maps.Clone(l.str), numKey: slices.Clone(l.numKey), strKey: slices.Clone(l.strKey)}
}

// exprView is one expression's source with its tokens, for exact source spans.
type exprView struct {
	src    []rune
	tokens []lexer.Token
	match  []int // index of the matching bracket of each bracket token, else -1
}

func newExprView(src string) (*exprView, error) {
	toks, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return nil, err
	}
	v := &exprView{src: []rune(src), tokens: toks, match: make([]int, len(toks))}
	var stack []int
	for i, t := range toks {
		v.match[i] = -1
		if t.Kind != lexer.Bracket {
			continue
		}
		switch t.Value {
		case "(", "[", "{":
			stack = append(stack, i)
		case ")", "]", "}":
			if n := len(stack); n > 0 {
				v.match[i], v.match[stack[n-1]] = stack[n-1], i
				stack = stack[:n-1]
			}
		}
	}
	return v, nil
}

// span returns the rune offsets of the source of n: from its first to its last token,
// widened to take in brackets it opens or closes (the ")" of a call, the "]" of an
// index, the "(" of !( ... )), but not parentheses around the whole of it.
func (v *exprView) span(n ast.Node) (from, to int) {
	lo, hi := math.MaxInt, -1
	ast.Walk(&n, visitFunc(func(x *ast.Node) {
		if _, ok := (*x).(*ast.ConditionalNode); ok {
			return // placed at the token after it; its operands cover it
		}
		loc := (*x).Location()
		if loc.To <= loc.From {
			return
		}
		lo, hi = min(lo, loc.From), max(hi, loc.To)
	}))
	if hi < 0 {
		return 0, 0
	}
	i, j := -1, -1
	for k, t := range v.tokens {
		if t.Kind == lexer.EOF {
			continue
		}
		if i < 0 && t.From >= lo {
			i = k
		}
		if t.To <= hi {
			j = k
		}
	}
	if i < 0 || j < i {
		return lo, hi
	}
	for changed := true; changed; {
		changed = false
		for k := i; k <= j; k++ {
			m := v.match[k]
			if m < 0 {
				continue
			}
			if m < i {
				i, changed = m, true
			}
			if m > j {
				j, changed = m, true
			}
		}
	}
	return v.tokens[i].From, v.tokens[j].To
}

// parenthesized reports whether the source [from, to) is wrapped in parentheses.
func (v *exprView) parenthesized(from, to int) bool {
	for k, t := range v.tokens {
		if t.To == from && t.Kind == lexer.Bracket && t.Value == "(" {
			m := v.match[k]
			return m > 0 && v.tokens[m].From == to
		}
	}
	return false
}

func (v *exprView) text(from, to int) string {
	from, to = max(from, 0), min(to, len(v.src))
	if from >= to {
		return ""
	}
	return string(v.src[from:to])
}

type visitFunc func(*ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

// explain builds the term tree of one expression.
func (x *explainer) explain(root ast.Node, src string, row *Row) (*Term, error) {
	v, err := newExprView(src)
	if err != nil {
		return nil, err
	}
	t, err := x.term(v, root, row)
	if err != nil {
		return nil, err
	}
	// The whole expression as written, comments and outer parentheses included.
	lead := len([]rune(src)) - len([]rune(strings.TrimLeft(src, " \t\r\n")))
	trail := len([]rune(strings.TrimRight(src, " \t\r\n")))
	if lead < trail {
		t.From, t.To, t.Source = lead, trail, v.text(lead, trail)
	}
	return t, nil
}

func (x *explainer) term(v *exprView, n ast.Node, row *Row) (*Term, error) {
	s := &scope{level: x.rule.Level, window: x.rule.Window, reads: NewReads()}
	c, cerr := x.comp.compile(n, s)
	if cerr != nil {
		return nil, fmt.Errorf("%s: %s", v.text(v.span(n)), cerr.msg)
	}
	if len(x.comp.layout.numKey) != len(x.layout.numKey) || len(x.comp.layout.strKey) != len(x.layout.strKey) {
		// The copy grew: the rule set's rows have no slot for this value.
		x.comp.layout = cloneLayout(x.layout)
		return nil, fmt.Errorf("%s reads a value the rule set does not load", v.text(v.span(n)))
	}
	t := &Term{}
	t.From, t.To = v.span(n)
	t.Source = v.text(t.From, t.To)
	switch c.t {
	case tNum:
		t.Kind, t.Num = KindNumber, c.num(row)
	case tStr:
		t.Kind, t.Text = KindText, c.str(row)
	default:
		t.Kind, t.Truth = KindCondition, c.tri(row)
	}
	children, negated := x.children(v, n)
	if negated {
		// "x not in [...]": the parser puts not around "x in [...]"; it is one term.
		children = nil
		b := n.(*ast.UnaryNode).Node.(*ast.BinaryNode)
		children = append(children, b.Left, b.Right)
	}
	for _, ch := range children {
		if !hasName(ch) {
			continue // a constant shows its value as written
		}
		ct, err := x.term(v, ch, row)
		if err != nil {
			return nil, err
		}
		if sameChain(n, ch) && !v.parenthesized(ct.From, ct.To) {
			t.Terms = append(t.Terms, ct.Terms...)
			continue
		}
		t.Terms = append(t.Terms, ct)
	}
	switch n.(type) {
	case *ast.IdentifierNode, *ast.MemberNode:
		t.name = true
	}
	if t.Missing() {
		t.Why = x.why(t, n, row)
	}
	return t, nil
}

// children lists the operands of n; negated is set for "x not in [...]" and the like.
func (x *explainer) children(v *exprView, n ast.Node) (children []ast.Node, negated bool) {
	switch n := n.(type) {
	case *ast.UnaryNode:
		if b, ok := n.Node.(*ast.BinaryNode); ok && (n.Operator == "not" || n.Operator == "!") {
			if bf, _ := v.span(b); n.Location().From > bf {
				return nil, true
			}
		}
		return []ast.Node{n.Node}, false
	case *ast.BinaryNode:
		if n.Operator == "in" || n.Operator == "not in" {
			return []ast.Node{n.Left}, false
		}
		return []ast.Node{n.Left, n.Right}, false
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}, false
	case *ast.CallNode:
		return n.Arguments, false
	case *ast.BuiltinNode:
		return n.Arguments, false
	}
	return nil, false
}

// sameChain reports whether child continues parent's chain of one logical operator.
func sameChain(parent, child ast.Node) bool {
	p, ok1 := parent.(*ast.BinaryNode)
	c, ok2 := child.(*ast.BinaryNode)
	if !ok1 || !ok2 {
		return false
	}
	norm := func(op string) string {
		switch op {
		case "and":
			return "&&"
		case "or":
			return "||"
		}
		return op
	}
	op := norm(p.Operator)
	return (op == "&&" || op == "||") && norm(c.Operator) == op
}

// hasName reports whether n reads any name; otherwise it is a constant.
func hasName(n ast.Node) bool {
	return ast.Find(n, func(x ast.Node) bool {
		switch x.(type) {
		case *ast.IdentifierNode, *ast.MemberNode:
			return true
		}
		return false
	}) != nil
}

// why tells why t (a missing number or unknown condition) is so.
func (x *explainer) why(t *Term, n ast.Node, row *Row) string {
	if t.name {
		return x.whyName(n, row)
	}
	var reasons []string
	add := func(s string) {
		if s != "" && !slices.Contains(reasons, s) {
			reasons = append(reasons, s)
		}
	}
	for _, c := range t.Terms {
		if !c.Missing() {
			continue
		}
		switch {
		case c.name && c.Why != "":
			add(c.Source + " is " + c.ValueString() + ": " + c.Why)
		case c.name:
			add(c.Source + " is " + c.ValueString())
		default:
			add(c.Why)
		}
	}
	if len(reasons) == 0 {
		// Nothing below is missing: a division by 0 made it so.
		if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "/" || b.Operator == "%") {
			if k := len(t.Terms); k > 0 {
				if c := t.Terms[k-1]; c.Kind == KindNumber && c.Num == 0 && strings.HasSuffix(t.Source, c.Source) {
					return c.Source + " is 0"
				}
			}
			return "division by 0"
		}
		if call, ok := n.(*ast.CallNode); ok {
			if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Value == "pct_change" && len(t.Terms) == 2 && t.Terms[1].Num == 0 {
				return t.Terms[1].Source + " is 0"
			}
		}
	}
	return strings.Join(reasons, "; ")
}

// whyName tells why a name's value is missing.
func (x *explainer) whyName(n ast.Node, row *Row) string {
	path, err := memberPath(n)
	if err != nil || len(path) == 0 {
		return ""
	}
	w, prefix := x.rule.Window, ""
	if win, ok := ParseWindow(path[0]); ok && len(path) == 2 {
		w, prefix, path = win, path[0]+".", path[1:]
	}
	head := path[0]
	if d, ok := derivedByName(head); ok {
		if i, ok := x.layout.Num(Key{Kind: KeyMetric, Window: w, Metric: d.denom}); ok && row.Num[i] == 0 {
			return prefix + d.denom.String() + " is 0"
		}
		return ""
	}
	if _, ok := x.comp.metrics[head]; ok && len(path) == 1 {
		return "a value it is computed from is missing or divides by 0"
	}
	switch head {
	case "daily_budget", "lifetime_budget", "budget_remaining", "bid_amount":
		return "not set"
	case "hours_since_change":
		return "rulesd has not changed this object"
	case "account":
		if len(path) == 3 && path[1] == "vars" {
			return "the account has no var " + path[2]
		}
	}
	return "not known"
}

// String renders the explanation as an indented listing, one sub-expression a line:
//
//	when: spend > 50 && purchases == 0   → true
//	  spend > 50   → true
//	    spend   → 61.5
//	  purchases == 0   → true
//	    purchases   → 0
func (e Explanation) String() string {
	var b strings.Builder
	if e.Where != nil {
		writeTerm(&b, "where: ", e.Where, 0)
	} else if e.Err == nil {
		b.WriteString("where: (none: every object is in scope)\n")
	}
	if e.When != nil {
		writeTerm(&b, "when: ", e.When, 0)
	}
	if len(e.Metrics) > 0 {
		b.WriteString("custom metrics:\n")
		for _, m := range e.Metrics {
			fmt.Fprintf(&b, "  %s   → %s\n", m.Name, FormatNumber(m.Value))
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, "cannot show the sub-expressions: %v\n", e.Err)
	}
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(&b, "in scope: %s; matches: %s\n", yes[e.InScope], yes[e.Match])
	return b.String()
}

func writeTerm(b *strings.Builder, label string, t *Term, depth int) {
	b.WriteString(strings.Repeat("  ", depth))
	b.WriteString(label)
	b.WriteString(oneLine(t.Source))
	b.WriteString("   → ")
	b.WriteString(t.ValueString())
	if t.Why != "" {
		b.WriteString(" (" + t.Why + ")")
	}
	b.WriteByte('\n')
	for _, c := range t.Terms {
		writeTerm(b, "", c, depth+1)
	}
}

// oneLine joins the lines of a multi-line expression for the listing.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), " ")
}
