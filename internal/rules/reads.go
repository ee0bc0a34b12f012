package rules

import "sort"

// Reads is what a rule reads, found by static analysis of its expressions, actions and
// templates: the insights reader fetches exactly this and nothing more.
type Reads struct {
	windows [numWindows]windowReads
	attrs   map[string]bool
}

type windowReads struct {
	used         bool
	metrics      [numMetrics]bool
	actions      map[string]bool
	actionValues map[string]bool
}

// NewReads returns an empty Reads, to merge others into.
func NewReads() *Reads { return &Reads{attrs: map[string]bool{}} }

func (r *Reads) addAttr(name string) { r.attrs[name] = true }

func (r *Reads) addMetric(w Window, m Metric) {
	r.windows[w].used = true
	r.windows[w].metrics[m] = true
}

func (r *Reads) addAction(w Window, kind KeyKind, typ string) {
	wr := &r.windows[w]
	wr.used = true
	set := &wr.actions
	if kind == KeyActionValue {
		set = &wr.actionValues
	}
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[typ] = true
}

// Merge adds everything o reads to r.
func (r *Reads) Merge(o *Reads) {
	for a := range o.attrs {
		r.attrs[a] = true
	}
	for w := range o.windows {
		ow := &o.windows[w]
		if !ow.used {
			continue
		}
		r.windows[w].used = true
		for m, ok := range ow.metrics {
			if ok {
				r.windows[w].metrics[m] = true
			}
		}
		for t := range ow.actions {
			r.addAction(Window(w), KeyAction, t)
		}
		for t := range ow.actionValues {
			r.addAction(Window(w), KeyActionValue, t)
		}
	}
}

// Windows lists the windows read, in order.
func (r *Reads) Windows() []Window {
	var out []Window
	for w := range r.windows {
		if r.windows[w].used {
			out = append(out, Window(w))
		}
	}
	return out
}

// Metrics lists the base metrics read in window w.
func (r *Reads) Metrics(w Window) []Metric {
	var out []Metric
	for m, ok := range r.windows[w].metrics {
		if ok {
			out = append(out, Metric(m))
		}
	}
	return out
}

// ActionTypes lists the action types read with actions["x"] in window w, sorted.
func (r *Reads) ActionTypes(w Window) []string { return sortedKeys(r.windows[w].actions) }

// ActionValueTypes lists the action types read with action_values["x"] in window w.
func (r *Reads) ActionValueTypes(w Window) []string { return sortedKeys(r.windows[w].actionValues) }

// Attrs lists the attributes read, by their names in expressions
// ("status", "campaign.objective", "account.vars.target_cpa"), sorted.
func (r *Reads) Attrs() []string { return sortedKeys(r.attrs) }

// HasAttr reports whether the attribute is read.
func (r *Reads) HasAttr(name string) bool { return r.attrs[name] }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
