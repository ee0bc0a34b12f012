package rules

import (
	"math"
	"sort"
)

// KeyKind says what a slot of a Row holds.
type KeyKind uint8

// Kinds of slots.
const (
	// KeyAttr is an object, parent or account attribute: "status",
	// "campaign.objective", "daily_budget", "account.vars.target_cpa".
	KeyAttr KeyKind = iota
	// KeyMetric is a base metric in a window.
	KeyMetric
	// KeyAction is the count of one action type in a window (actions["x"]).
	KeyAction
	// KeyActionValue is the value of one action type in a window (action_values["x"]).
	KeyActionValue
)

// Key names one value a rule set reads.
type Key struct {
	Kind       KeyKind
	Attr       string // KeyAttr
	Window     Window // the others
	Metric     Metric // KeyMetric
	ActionType string // KeyAction, KeyActionValue
}

// Layout gives every value the compiled rules read a dense slot in a Row, so that
// evaluation indexes a slice instead of looking names up. Numbers and booleans live in
// Row.Num (a boolean as 0 or 1), strings in Row.Str. A Layout is built while rules
// compile and is read-only afterwards.
type Layout struct {
	num    map[Key]int
	str    map[Key]int
	numKey []Key
	strKey []Key
}

func newLayout() *Layout {
	return &Layout{num: map[Key]int{}, str: map[Key]int{}}
}

func (l *Layout) numSlot(k Key) int {
	if i, ok := l.num[k]; ok {
		return i
	}
	l.num[k] = len(l.numKey)
	l.numKey = append(l.numKey, k)
	return len(l.numKey) - 1
}

func (l *Layout) strSlot(k Key) int {
	if i, ok := l.str[k]; ok {
		return i
	}
	l.str[k] = len(l.strKey)
	l.strKey = append(l.strKey, k)
	return len(l.strKey) - 1
}

// Num returns the Row.Num slot of k, if any rule reads it.
func (l *Layout) Num(k Key) (int, bool) { i, ok := l.num[k]; return i, ok }

// Str returns the Row.Str slot of k, if any rule reads it.
func (l *Layout) Str(k Key) (int, bool) { i, ok := l.str[k]; return i, ok }

// NumKeys lists the keys of Row.Num in slot order.
func (l *Layout) NumKeys() []Key { return l.numKey }

// StrKeys lists the keys of Row.Str in slot order.
func (l *Layout) StrKeys() []Key { return l.strKey }

// Row is one object's values, in the slots of a Layout. Missing numbers are NaN.
type Row struct {
	Num []float64
	Str []string
}

// NewRows allocates n rows in two shared slabs (one allocation each, whatever n), with
// every count at 0 and every attribute missing until the reader fills it: an object
// with no insights row in a window has 0 for every count.
func (l *Layout) NewRows(n int) []Row {
	nn, ns := len(l.numKey), len(l.strKey)
	nums := make([]float64, n*nn)
	strs := make([]string, n*ns)
	template := make([]float64, nn)
	for i, k := range l.numKey {
		if k.Kind == KeyAttr {
			template[i] = math.NaN()
		}
	}
	rows := make([]Row, n)
	for i := range rows {
		rows[i].Num = nums[i*nn : (i+1)*nn : (i+1)*nn]
		rows[i].Str = strs[i*ns : (i+1)*ns : (i+1)*ns]
		copy(rows[i].Num, template)
	}
	return rows
}

// SetAttr sets a numeric or boolean attribute of the row when a rule reads it; a NaN
// value means missing.
func (l *Layout) SetAttr(r *Row, name string, v float64) {
	if i, ok := l.num[Key{Kind: KeyAttr, Attr: name}]; ok {
		r.Num[i] = v
	}
}

// SetBool sets a boolean attribute of the row when a rule reads it.
func (l *Layout) SetBool(r *Row, name string, v bool) {
	f := 0.0
	if v {
		f = 1
	}
	l.SetAttr(r, name, f)
}

// SetString sets a string attribute of the row when a rule reads it.
func (l *Layout) SetString(r *Row, name, v string) {
	if i, ok := l.str[Key{Kind: KeyAttr, Attr: name}]; ok {
		r.Str[i] = v
	}
}

// SetMetric sets a base metric in a window when a rule reads it.
func (l *Layout) SetMetric(r *Row, w Window, m Metric, v float64) {
	if i, ok := l.num[Key{Kind: KeyMetric, Window: w, Metric: m}]; ok {
		r.Num[i] = v
	}
}

// AttrNames lists the attribute names any rule reads, numeric and string, sorted.
func (l *Layout) AttrNames() []string {
	var out []string
	for _, k := range l.numKey {
		if k.Kind == KeyAttr {
			out = append(out, k.Attr)
		}
	}
	for _, k := range l.strKey {
		out = append(out, k.Attr)
	}
	sort.Strings(out)
	return out
}
