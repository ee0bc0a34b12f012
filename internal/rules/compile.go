package rules

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// Expressions are parsed by expr's own parser, so the language is exactly expr's, and
// then compiled here into a tree of typed closures over a Row instead of running on
// expr's VM: the VM keeps values as interfaces, which costs an allocation for nearly
// every number, and rules evaluate tens of millions of times a run. The closures give
// the three-valued logic of SPEC 3.2 directly, with names resolved to Row slots once.

type vtype uint8

const (
	tNum vtype = iota
	tStr
	tBool
)

func (t vtype) String() string {
	switch t {
	case tNum:
		return "a number"
	case tStr:
		return "text"
	}
	return "a condition (true/false)"
}

type (
	numFn func(*Row) float64
	strFn func(*Row) string
	triFn func(*Row) Tri
)

// cval is a compiled sub-expression. slot >= 0 marks a plain load of Row.Num[slot],
// and isConst a constant, so comparisons can specialise on them. strMiss marks text
// that can be missing (see missingText): only then do text operations check for it.
type cval struct {
	t       vtype
	num     numFn
	str     strFn
	tri     triFn
	slot    int
	isConst bool
	cnum    float64
	cstr    string
	strMiss bool
}

// missingText is the text value that cannot be computed: a ?: with text branches
// whose condition is UNKNOWN. Attributes are never missing text, so operations on
// text test for it only when an operand may be one (cval.strMiss); a comparison
// with it is UNKNOWN, as for a missing number (SPEC 3.2).
const missingText = "\x00rulesd:missing\x00"

func numConst(v float64) cval {
	return cval{t: tNum, num: func(*Row) float64 { return v }, slot: -1, isConst: true, cnum: v}
}

func strConst(v string) cval {
	return cval{t: tStr, str: func(*Row) string { return v }, slot: -1, isConst: true, cstr: v}
}

func numLoad(slot int) cval {
	return cval{t: tNum, num: func(r *Row) float64 { return r.Num[slot] }, slot: slot}
}

func numVal(f numFn) cval { return cval{t: tNum, num: f, slot: -1} }
func strVal(f strFn) cval { return cval{t: tStr, str: f, slot: -1} }
func triVal(f triFn) cval { return cval{t: tBool, tri: f, slot: -1} }

// Value is one name a rule's expressions read, with how to get it for an object: the
// audit log and preview show these so anyone can see why a rule fired.
type Value struct {
	Name string
	get  func(*Row) any
}

// Get returns the value for r: a float64, a string, a bool, or nil when missing.
func (v Value) Get(r *Row) any { return v.get(r) }

// scope is what an expression may read and what its compilation records.
type scope struct {
	level  Level
	window Window
	// metric is set while compiling a custom metric: only metrics may be used.
	metric string
	reads  *Reads
	values *[]Value
	seen   map[string]bool
	// for the lint: the first ratio metric read, and whether a volume metric was.
	ratioName string
	ratioPos  int
	volume    bool
}

func (s *scope) record(name string, get func(*Row) any) {
	if s.values == nil || s.seen[name] {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[name] = true
	*s.values = append(*s.values, Value{Name: name, get: get})
}

// compileErr is an error at a rune offset inside an expression.
type compileErr struct {
	off int
	msg string
}

func (e *compileErr) Error() string { return e.msg }

func errAt(n ast.Node, format string, args ...any) *compileErr {
	return &compileErr{off: n.Location().From, msg: fmt.Sprintf(format, args...)}
}

// exprCompiler compiles the expressions of one rule set; it owns the Layout.
type exprCompiler struct {
	layout  *Layout
	metrics map[string]*customMetric
	// vars and labels are the account variable and label names of the config; nil
	// when no config was given, and then any name is accepted.
	vars, labels []string
}

// parse parses src with expr's parser, refusing what SPEC 3.2 refuses.
func parseExpr(src string) (ast.Node, *compileErr) {
	tree, err := parser.Parse(src)
	if err != nil {
		if fe, ok := err.(*file.Error); ok {
			return nil, &compileErr{off: fe.From, msg: "syntax error: " + fe.Message}
		}
		return nil, &compileErr{msg: "syntax error: " + err.Error()}
	}
	return tree.Node, nil
}

// compileSource parses and compiles src in scope s, expecting type want.
func (c *exprCompiler) compileSource(src string, s *scope, want vtype) (cval, ast.Node, *compileErr) {
	node, perr := parseExpr(src)
	if perr != nil {
		return cval{}, nil, perr
	}
	v, err := c.compile(node, s)
	if err != nil {
		return cval{}, node, err
	}
	if v.t != want {
		return cval{}, node, &compileErr{off: -1, msg: fmt.Sprintf("must be %s, but this expression is %s", want, v.t)}
	}
	return v, node, nil
}

// report turns a compile error into a diagnostic at its position in the file.
func report(d *yamlx.Decoder, s yamlx.Scalar, key string, err *compileErr) {
	pos := s.Pos
	if err.off >= 0 {
		pos = d.OffsetPos(s.Node, err.off)
	}
	d.Diags.Errorf(pos, "%s: %s", key, err.msg)
}

func (c *exprCompiler) compile(n ast.Node, s *scope) (cval, *compileErr) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return numConst(float64(n.Value)), nil
	case *ast.FloatNode:
		return numConst(n.Value), nil
	case *ast.StringNode:
		return strConst(n.Value), nil
	case *ast.BoolNode:
		t := triOf(n.Value)
		return triVal(func(*Row) Tri { return t }), nil
	case *ast.NilNode:
		return cval{}, errAt(n, "nil is not available in rules: a value that cannot be computed is missing; test it with has(x) or replace it with default(x, 0)")
	case *ast.IdentifierNode, *ast.MemberNode:
		path, err := memberPath(n)
		if err != nil {
			return cval{}, err
		}
		return c.resolve(n, path, s)
	case *ast.ChainNode:
		return cval{}, errAt(n, "?. is not available in rules: every name always exists, and a value that cannot be computed is missing; use has(x) or default(x, d)")
	case *ast.UnaryNode:
		return c.unary(n, s)
	case *ast.BinaryNode:
		return c.binary(n, s)
	case *ast.ConditionalNode:
		return c.conditional(n, s)
	case *ast.CallNode:
		return c.call(n, s)
	case *ast.BuiltinNode:
		return c.builtin(n, s)
	}
	return cval{}, errAt(n, "this kind of expression is not supported in rules (%s)", nodeKind(n))
}

func nodeKind(n ast.Node) string {
	return strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", n), "*ast."), "Node")
}

// memberPath flattens a.b["c"] into [a b c]; every part must be a plain name.
func memberPath(n ast.Node) ([]string, *compileErr) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return []string{n.Value}, nil
	case *ast.MemberNode:
		if n.Optional {
			return nil, errAt(n, "?. is not available in rules")
		}
		base, err := memberPath(n.Node)
		if err != nil {
			return nil, err
		}
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			return nil, errAt(n.Property, "an index must be a quoted name, like actions[\"link_click\"]")
		}
		return append(base, prop.Value), nil
	case *ast.ChainNode:
		return nil, errAt(n, "?. is not available in rules")
	}
	return nil, errAt(n, "only names can be indexed here")
}

func (c *exprCompiler) unary(n *ast.UnaryNode, s *scope) (cval, *compileErr) {
	x, err := c.compile(n.Node, s)
	if err != nil {
		return cval{}, err
	}
	switch n.Operator {
	case "!", "not":
		if x.t != tBool {
			return cval{}, errAt(n, "%s needs a condition (true/false), but its operand is %s", n.Operator, x.t)
		}
		f := x.tri
		return triVal(func(r *Row) Tri { return triNot(f(r)) }), nil
	case "-", "+":
		if x.t != tNum {
			return cval{}, errAt(n, "%s needs a number, but its operand is %s", n.Operator, x.t)
		}
		if n.Operator == "+" {
			return x, nil
		}
		if x.isConst {
			return numConst(-x.cnum), nil
		}
		f := x.num
		return numVal(func(r *Row) float64 { return -f(r) }), nil
	}
	return cval{}, errAt(n, "operator %s is not supported in rules", n.Operator)
}

func (c *exprCompiler) binary(n *ast.BinaryNode, s *scope) (cval, *compileErr) {
	switch n.Operator {
	case "??":
		return cval{}, errAt(n, "?? is not available in rules: use default(x, d) for a missing value")
	case "in", "not in":
		return c.in(n, s)
	case "..":
		return cval{}, errAt(n, "ranges (..) are not supported in rules")
	}
	l, err := c.compile(n.Left, s)
	if err != nil {
		return cval{}, err
	}
	r, err := c.compile(n.Right, s)
	if err != nil {
		return cval{}, err
	}
	switch n.Operator {
	case "&&", "and", "||", "or":
		if l.t != tBool || r.t != tBool {
			bad, side := l, "left"
			if l.t == tBool {
				bad, side = r, "right"
			}
			return cval{}, errAt(n, "%s joins conditions (true/false), but its %s side is %s", n.Operator, side, bad.t)
		}
		if n.Operator == "&&" || n.Operator == "and" {
			return triVal(and(l.tri, r.tri)), nil
		}
		return triVal(or(l.tri, r.tri)), nil
	case "==", "!=", "<", "<=", ">", ">=":
		return compare(n, l, r)
	case "+", "-", "*", "/", "%", "**", "^":
		if l.t != tNum || r.t != tNum {
			return cval{}, errAt(n, "%s needs numbers on both sides, but got %s and %s", n.Operator, l.t, r.t)
		}
		return arith(n.Operator, l, r), nil
	case "contains", "startsWith", "endsWith", "matches":
		if l.t != tStr || r.t != tStr {
			return cval{}, errAt(n, "%s needs text on both sides, but got %s and %s", n.Operator, l.t, r.t)
		}
		return textOp(n, l, r)
	}
	return cval{}, errAt(n, "operator %s is not supported in rules", n.Operator)
}

func and(a, b triFn) triFn {
	return func(r *Row) Tri {
		x := a(r)
		if x == False {
			return False
		}
		y := b(r)
		if y == False {
			return False
		}
		if x == True && y == True {
			return True
		}
		return Unknown
	}
}

func or(a, b triFn) triFn {
	return func(r *Row) Tri {
		x := a(r)
		if x == True {
			return True
		}
		y := b(r)
		if y == True {
			return True
		}
		if x == False && y == False {
			return False
		}
		return Unknown
	}
}

func arith(op string, l, r cval) cval {
	if l.isConst && r.isConst {
		return numConst(arithOp(op)(l.cnum, r.cnum))
	}
	a, b := l.num, r.num
	switch op {
	case "+":
		return numVal(func(r *Row) float64 { return a(r) + b(r) })
	case "-":
		return numVal(func(r *Row) float64 { return a(r) - b(r) })
	case "*":
		return numVal(func(r *Row) float64 { return a(r) * b(r) })
	case "/":
		return numVal(func(r *Row) float64 { return div(a(r), b(r)) })
	}
	f := arithOp(op)
	return numVal(func(r *Row) float64 { return f(a(r), b(r)) })
}

func arithOp(op string) func(a, b float64) float64 {
	switch op {
	case "+":
		return func(a, b float64) float64 { return a + b }
	case "-":
		return func(a, b float64) float64 { return a - b }
	case "*":
		return func(a, b float64) float64 { return a * b }
	case "/":
		return div
	case "%":
		return func(a, b float64) float64 {
			if b == 0 {
				return math.NaN()
			}
			return math.Mod(a, b)
		}
	}
	return pow
}

// pow is ** and ^: missing when either side is (math.Pow gives 1 for NaN ** 0 and
// 1 ** NaN), and missing for 0 to a negative power, which divides by zero.
func pow(a, b float64) float64 {
	if a != a || b != b || (a == 0 && b < 0) {
		return math.NaN()
	}
	return math.Pow(a, b)
}

// div is division where a zero denominator makes the value missing, never infinite.
func div(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func compare(n *ast.BinaryNode, l, r cval) (cval, *compileErr) {
	op := n.Operator
	if l.t != r.t {
		return cval{}, errAt(n, "cannot compare %s with %s using %s", l.t, r.t, op)
	}
	switch l.t {
	case tNum:
		return triVal(numCompare(op, l, r)), nil
	case tStr:
		a, b := l.str, r.str
		if l.strMiss || r.strMiss {
			return triVal(func(r *Row) Tri {
				x, y := a(r), b(r)
				if x == missingText || y == missingText {
					return Unknown
				}
				return triOf(strCmp(op, x, y))
			}), nil
		}
		if r.isConst && (op == "==" || op == "!=") {
			k, eq := r.cstr, op == "=="
			return triVal(func(r *Row) Tri { return triOf((a(r) == k) == eq) }), nil
		}
		return triVal(func(r *Row) Tri { return triOf(strCmp(op, a(r), b(r))) }), nil
	}
	if op != "==" && op != "!=" {
		return cval{}, errAt(n, "conditions can only be compared with == or !=")
	}
	a, b, eq := l.tri, r.tri, op == "=="
	return triVal(func(r *Row) Tri {
		x, y := a(r), b(r)
		if x == Unknown || y == Unknown {
			return Unknown
		}
		return triOf((x == y) == eq)
	}), nil
}

func strCmp(op string, a, b string) bool {
	switch op {
	case "==":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a >= b
}

// numCompare compiles a numeric comparison; a missing (NaN) side makes it Unknown.
// The common "name op constant" form gets a closure of its own, with no further call.
func numCompare(op string, l, r cval) triFn {
	if l.slot >= 0 && r.isConst {
		i, k := l.slot, r.cnum
		switch op {
		case ">":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v > k)
			}
		case ">=":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v >= k)
			}
		case "<":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v < k)
			}
		case "<=":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v <= k)
			}
		case "==":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v == k)
			}
		case "!=":
			return func(r *Row) Tri {
				v := r.Num[i]
				if v != v {
					return Unknown
				}
				return triOf(v != k)
			}
		}
	}
	a, b := l.num, r.num
	cmp := numCmpOp(op)
	return func(r *Row) Tri {
		x, y := a(r), b(r)
		if x != x || y != y {
			return Unknown
		}
		return triOf(cmp(x, y))
	}
}

func numCmpOp(op string) func(a, b float64) bool {
	switch op {
	case ">":
		return func(a, b float64) bool { return a > b }
	case ">=":
		return func(a, b float64) bool { return a >= b }
	case "<":
		return func(a, b float64) bool { return a < b }
	case "<=":
		return func(a, b float64) bool { return a <= b }
	case "==":
		return func(a, b float64) bool { return a == b }
	}
	return func(a, b float64) bool { return a != b }
}

func textOp(n *ast.BinaryNode, l, r cval) (cval, *compileErr) {
	a, b := l.str, r.str
	var op func(x, y string) bool
	switch n.Operator {
	case "contains":
		op = strings.Contains
	case "startsWith":
		op = strings.HasPrefix
	case "endsWith":
		op = strings.HasSuffix
	default:
		if !r.isConst {
			return cval{}, errAt(n.Right, "matches needs a quoted pattern")
		}
		re, err := regexp.Compile(r.cstr)
		if err != nil {
			return cval{}, errAt(n.Right, "invalid pattern: %v", err)
		}
		op = func(x, _ string) bool { return re.MatchString(x) }
	}
	if l.strMiss || r.strMiss {
		return triVal(func(r *Row) Tri {
			x, y := a(r), b(r)
			if x == missingText || y == missingText {
				return Unknown
			}
			return triOf(op(x, y))
		}), nil
	}
	return triVal(func(r *Row) Tri { return triOf(op(a(r), b(r))) }), nil
}

func (c *exprCompiler) in(n *ast.BinaryNode, s *scope) (cval, *compileErr) {
	l, err := c.compile(n.Left, s)
	if err != nil {
		return cval{}, err
	}
	arr, ok := n.Right.(*ast.ArrayNode)
	if !ok {
		return cval{}, errAt(n.Right, "in needs a list of values, like [\"OUTCOME_SALES\", \"OUTCOME_LEADS\"]")
	}
	negate := n.Operator == "not in"
	var strs []string
	var nums []float64
	for _, item := range arr.Nodes {
		v, err := c.compile(item, s)
		if err != nil {
			return cval{}, err
		}
		if !v.isConst || v.t != l.t {
			return cval{}, errAt(item, "the list after in must hold constant values of the same kind as %s", "the left side")
		}
		strs, nums = append(strs, v.cstr), append(nums, v.cnum)
	}
	switch l.t {
	case tStr:
		set := make(map[string]struct{}, len(strs))
		for _, v := range strs {
			set[v] = struct{}{}
		}
		f, miss := l.str, l.strMiss
		return triVal(func(r *Row) Tri {
			x := f(r)
			if miss && x == missingText {
				return Unknown
			}
			_, ok := set[x]
			return triOf(ok != negate)
		}), nil
	case tNum:
		f := l.num
		return triVal(func(r *Row) Tri {
			x := f(r)
			if x != x {
				return Unknown
			}
			for _, v := range nums {
				if x == v {
					return triOf(!negate)
				}
			}
			return triOf(negate)
		}), nil
	}
	return cval{}, errAt(n, "in needs a number or text on its left side")
}

func (c *exprCompiler) conditional(n *ast.ConditionalNode, s *scope) (cval, *compileErr) {
	cond, err := c.compile(n.Cond, s)
	if err != nil {
		return cval{}, err
	}
	if cond.t != tBool {
		return cval{}, errAt(n.Cond, "the condition of ?: must be true/false, but it is %s", cond.t)
	}
	a, err := c.compile(n.Exp1, s)
	if err != nil {
		return cval{}, err
	}
	b, err := c.compile(n.Exp2, s)
	if err != nil {
		return cval{}, err
	}
	if a.t != b.t {
		return cval{}, errAt(n, "both branches of ?: must be of one kind, but they are %s and %s", a.t, b.t)
	}
	cf := cond.tri
	switch a.t {
	case tNum:
		x, y := a.num, b.num
		return numVal(func(r *Row) float64 {
			switch cf(r) {
			case True:
				return x(r)
			case False:
				return y(r)
			}
			return math.NaN()
		}), nil
	case tStr:
		x, y := a.str, b.str
		v := strVal(func(r *Row) string {
			switch cf(r) {
			case True:
				return x(r)
			case False:
				return y(r)
			}
			return missingText
		})
		v.strMiss = true
		return v, nil
	}
	x, y := a.tri, b.tri
	return triVal(func(r *Row) Tri {
		switch cf(r) {
		case True:
			return x(r)
		case False:
			return y(r)
		}
		return Unknown
	}), nil
}

func (c *exprCompiler) args(n ast.Node, nodes []ast.Node, s *scope, name string, want int) ([]cval, *compileErr) {
	if len(nodes) != want {
		return nil, errAt(n, "%s takes %d argument(s), not %d", name, want, len(nodes))
	}
	out := make([]cval, len(nodes))
	for i, a := range nodes {
		v, err := c.compile(a, s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (c *exprCompiler) call(n *ast.CallNode, s *scope) (cval, *compileErr) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		// now().Hour() and the like: name the refused function, not the call.
		if b, found := ast.Find(n.Callee, func(x ast.Node) bool { _, ok := x.(*ast.BuiltinNode); return ok }).(*ast.BuiltinNode); found {
			return c.builtin(b, s)
		}
		return cval{}, errAt(n, "only the functions pct_change, has, default, min, max and abs can be called")
	}
	switch id.Value {
	case "pct_change":
		a, err := c.args(n, n.Arguments, s, "pct_change(new, old)", 2)
		if err != nil {
			return cval{}, err
		}
		if a[0].t != tNum || a[1].t != tNum {
			return cval{}, errAt(n, "pct_change(new, old) needs two numbers")
		}
		x, y := a[0].num, a[1].num
		return numVal(func(r *Row) float64 {
			old := y(r)
			return div(x(r)-old, old) * 100
		}), nil
	case "has":
		a, err := c.args(n, n.Arguments, s, "has(x)", 1)
		if err != nil {
			return cval{}, err
		}
		switch a[0].t {
		case tNum:
			f := a[0].num
			return triVal(func(r *Row) Tri { v := f(r); return triOf(v == v) }), nil
		case tBool:
			f := a[0].tri
			return triVal(func(r *Row) Tri { return triOf(f(r) != Unknown) }), nil
		}
		if a[0].strMiss {
			f := a[0].str
			return triVal(func(r *Row) Tri { return triOf(f(r) != missingText) }), nil
		}
		return triVal(func(*Row) Tri { return True }), nil // an attribute's text is never missing
	case "default":
		a, err := c.args(n, n.Arguments, s, "default(x, d)", 2)
		if err != nil {
			return cval{}, err
		}
		if a[0].t != a[1].t {
			return cval{}, errAt(n, "default(x, d) needs x and d of one kind, but they are %s and %s", a[0].t, a[1].t)
		}
		switch a[0].t {
		case tNum:
			x, d := a[0].num, a[1].num
			return numVal(func(r *Row) float64 {
				if v := x(r); v == v {
					return v
				}
				return d(r)
			}), nil
		case tBool:
			x, d := a[0].tri, a[1].tri
			return triVal(func(r *Row) Tri {
				if v := x(r); v != Unknown {
					return v
				}
				return d(r)
			}), nil
		}
		if !a[0].strMiss {
			return a[0], nil
		}
		x, d := a[0].str, a[1].str
		v := strVal(func(r *Row) string {
			if v := x(r); v != missingText {
				return v
			}
			return d(r)
		})
		v.strMiss = a[1].strMiss
		return v, nil
	}
	return cval{}, errAt(n, "unknown function %s%s", id.Value, diag.DidYouMean(id.Value, functionNames))
}

var functionNames = []string{"pct_change", "has", "default", "min", "max", "abs", "lower", "upper"}

func (c *exprCompiler) builtin(n *ast.BuiltinNode, s *scope) (cval, *compileErr) {
	switch n.Name {
	case "now", "date", "duration":
		return cval{}, errAt(n, "%s() is not available in rules: time comes from hour, weekday and age_hours, so that a run means the same whenever it is replayed", n.Name)
	case "abs":
		a, err := c.args(n, n.Arguments, s, "abs(x)", 1)
		if err != nil {
			return cval{}, err
		}
		if a[0].t != tNum {
			return cval{}, errAt(n, "abs(x) needs a number")
		}
		f := a[0].num
		return numVal(func(r *Row) float64 { return math.Abs(f(r)) }), nil
	case "min", "max":
		if len(n.Arguments) < 2 {
			return cval{}, errAt(n, "%s needs at least two numbers", n.Name)
		}
		a, err := c.args(n, n.Arguments, s, n.Name, len(n.Arguments))
		if err != nil {
			return cval{}, err
		}
		fns := make([]numFn, len(a))
		for i, v := range a {
			if v.t != tNum {
				return cval{}, errAt(n.Arguments[i], "%s needs numbers, but this is %s", n.Name, v.t)
			}
			fns[i] = v.num
		}
		// math.Min and math.Max return NaN when either is NaN: missing propagates.
		pick := math.Min
		if n.Name == "max" {
			pick = math.Max
		}
		return numVal(func(r *Row) float64 {
			v := fns[0](r)
			for _, f := range fns[1:] {
				v = pick(v, f(r))
			}
			return v
		}), nil
	case "lower", "upper":
		a, err := c.args(n, n.Arguments, s, n.Name, 1)
		if err != nil {
			return cval{}, err
		}
		if a[0].t != tStr {
			return cval{}, errAt(n, "%s needs text", n.Name)
		}
		f, conv := a[0].str, strings.ToLower
		if n.Name == "upper" {
			conv = strings.ToUpper
		}
		if a[0].strMiss {
			v := strVal(func(r *Row) string {
				if x := f(r); x != missingText {
					return conv(x)
				}
				return missingText
			})
			v.strMiss = true
			return v, nil
		}
		return strVal(func(r *Row) string { return conv(f(r)) }), nil
	}
	return cval{}, errAt(n, "function %s is not available in rules (available: %s)", n.Name, strings.Join(functionNames, ", "))
}
